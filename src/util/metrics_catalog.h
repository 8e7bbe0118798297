#pragma once
/// MetricsCatalog: every metric family of mailhook, declared in one place
/// (metrics_catalog.cc) — names, HELP, TYPE, label names and buckets — on a
/// registry the catalog owns. Components take a MetricsCatalog& from the
/// daemon and record through handles made once (ForFolder, ForTarget, the
/// unlabelled members), never through a name. A test makes its own catalog
/// and asserts exact values.
///
/// The outside contract (CONTRACT.md, "HTTP endpoints") names
/// mailhook_messages_total, mailhook_deliveries_total{webhook,outcome},
/// mailhook_delivery_seconds, mailhook_imap_reconnects_total,
/// mailhook_imap_connected, mailhook_outbox_pending and mailhook_deadletters;
/// the rest are ours. Every family is rendered (HELP/TYPE) from the start.
///
/// Thread-safety: as Metrics; the catalog is immutable after construction.

#include <functional>
#include <string>
#include <string_view>

#include "util/metrics.h"
#include "util/target_id.h"

namespace mailhook::util {

/// The series of one watched folder (labels account, folder).
struct FolderMetrics {
  Counter messages;          ///< mailhook_messages_total
  Counter message_failures;  ///< mailhook_message_failures_total
  Counter unprocessable;     ///< mailhook_messages_unprocessable_total
  Counter watcher_crashes;   ///< mailhook_watcher_crashes_total
  Counter imap_reconnects;   ///< mailhook_imap_reconnects_total
  Gauge imap_connected;      ///< mailhook_imap_connected
  Gauge polled;              ///< mailhook_imap_folder_polled: 1 when watched by STATUS polling
};

/// The series of one account: its IMAP connections and the folder changes
/// (created, deleted) the server reported while it was watched.
struct AccountMetrics {
  Gauge connections;       ///< mailhook_imap_connections{account}
  Counter folder_created;  ///< mailhook_imap_folder_changes_total{account,change="created"}
  Counter folder_deleted;  ///< mailhook_imap_folder_changes_total{account,change="deleted"}
};

/// The series of one delivery target: attempts by outcome and their duration.
/// Webhooks count under the contract's mailhook_deliveries_total{webhook,outcome}
/// and mailhook_delivery_seconds{webhook}; hook commands under
/// mailhook_hook_runs_total{hook,outcome} and mailhook_hook_seconds{hook}; smtp
/// targets under mailhook_smtp_sends_total{smtp,outcome} and
/// mailhook_smtp_seconds{smtp}, so each family keeps one label set (as
/// Prometheus expects).
struct TargetMetrics {
  Counter success;  ///< outcome="success"
  Counter retry;    ///< outcome="retry": rescheduled
  Counter dead;     ///< outcome="dead": moved to the dead letters
  Histogram seconds;
};

/// The product's metric families on a registry of their own.
class MetricsCatalog {
 public:
  /// Declares every family. Throws std::logic_error on a duplicate name (a bug).
  MetricsCatalog();
  MetricsCatalog(const MetricsCatalog&) = delete;
  MetricsCatalog& operator=(const MetricsCatalog&) = delete;

  /// The exposition for GET /metrics (after the collector, if set).
  std::string Render() const {
    if (collect_) collect_();
    return registry_.Render();
  }
  /// Runs `collect` at each Render, first: it copies values another
  /// component keeps (the lease keeper's counts) into their series. Set once,
  /// before anything renders on another thread; what it reads must outlive
  /// the last Render. The one exception to "immutable after construction".
  void SetCollector(std::function<void()> collect) { collect_ = std::move(collect); }
  const Metrics& registry() const { return registry_; }

  FolderMetrics ForFolder(const std::string& account, const std::string& folder) const;
  TargetMetrics ForTarget(const TargetId& target) const;
  AccountMetrics ForAccount(const std::string& account) const;
  /// mailhook_http_rejected_total{reason}.
  Counter HttpRejected(const std::string& reason) const { return http_rejected_.With({reason}); }
  /// mailhook_config_reloads_total{outcome}: SIGHUP reloads, "applied" or "failed".
  Counter ConfigReloads(const std::string& outcome) const { return config_reloads_.With({outcome}); }
  /// mailhook_smtp_skipped_total{smtp,rule}: replies an smtp target did not
  /// send because a loop-protection rule fired (`smtp` is the target's name,
  /// as in mailhook_smtp_sends_total{smtp,outcome}; `rule` delivery::RuleName:
  /// auto_submitted, precedence, list, null_sender, robot_sender,
  /// own_address, already_answered, rate_limited).
  Counter SmtpSkipped(const std::string& smtp, std::string_view rule) const {
    return smtp_skipped_.With({smtp, std::string(rule)});
  }

 private:
  Metrics registry_;  // first: the families below point into it

  CounterFamily<2> messages_;
  CounterFamily<2> message_failures_;
  CounterFamily<2> unprocessable_;
  CounterFamily<2> watcher_crashes_;
  CounterFamily<2> imap_reconnects_;
  GaugeFamily<2> imap_connected_;
  GaugeFamily<2> folder_polled_;
  GaugeFamily<1> imap_connections_;
  CounterFamily<2> folder_changes_;
  CounterFamily<2> deliveries_;
  HistogramFamily<1> delivery_seconds_;
  CounterFamily<2> hook_runs_;
  HistogramFamily<1> hook_seconds_;
  CounterFamily<2> smtp_sends_;
  HistogramFamily<1> smtp_seconds_;
  CounterFamily<1> http_rejected_;
  CounterFamily<1> config_reloads_;
  CounterFamily<2> smtp_skipped_;
  std::function<void()> collect_;

 public:
  const Gauge outbox_pending;     ///< mailhook_outbox_pending
  const Gauge deadletters;        ///< mailhook_deadletters
  const Counter worker_restarts;  ///< mailhook_dispatcher_worker_restarts_total
  const Gauge workers_running;    ///< mailhook_dispatcher_workers_running
  // A replica on the PostgreSQL store (issue #11); left without series on SQLite.
  const Gauge cluster_accounts_owned;    ///< mailhook_cluster_accounts_owned
  const Counter cluster_lease_renewals;  ///< mailhook_cluster_lease_renewals_total
  const Counter cluster_lease_losses;    ///< mailhook_cluster_lease_losses_total
  const Gauge cluster_store_reachable;   ///< mailhook_cluster_store_reachable
};

}  // namespace mailhook::util
