#include "util/metrics_catalog.h"

#include <vector>

namespace mailhook::util {
namespace {

// Delivery attempts end within a target's timeout (default 10 s, hooks 30 s).
const std::vector<double> kSeconds = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};

}  // namespace

// The one list of families: a flat table, each entry name, HELP, labels.
MetricsCatalog::MetricsCatalog()
    : messages_(registry_, "mailhook_messages_total", "Messages turned into events and stored durably.",
                {"account", "folder"}),
      message_failures_(registry_, "mailhook_message_failures_total",
                        "Failed extraction attempts of single messages (each is retried until max_attempts).",
                        {"account", "folder"}),
      unprocessable_(registry_, "mailhook_messages_unprocessable_total",
                     "Messages that failed extraction limits.max_attempts times and were sent as "
                     "message.unprocessable.",
                     {"account", "folder"}),
      watcher_crashes_(registry_, "mailhook_watcher_crashes_total",
                       "Folder watcher sessions ended by an unexpected exception (the watcher "
                       "starts a new one).",
                       {"account", "folder"}),
      imap_reconnects_(registry_, "mailhook_imap_reconnects_total", "IMAP sessions thrown away and reconnected.",
                       {"account", "folder"}),
      imap_connected_(registry_, "mailhook_imap_connected",
                      "Watched folders whose IMAP session is connected (1) or not (0).", {"account", "folder"}),
      folder_polled_(registry_, "mailhook_imap_folder_polled",
                     "Watched folders checked by STATUS polling (1) rather than IDLE or NOTIFY (0): beyond the "
                     "account's max_connections without NOTIFY.",
                     {"account", "folder"}),
      imap_connections_(registry_, "mailhook_imap_connections", "IMAP connections the account holds.", {"account"}),
      folder_changes_(registry_, "mailhook_imap_folder_changes_total",
                      "Folders the server reported created or deleted while the account was watched.",
                      {"account", "change"}),
      deliveries_(registry_, "mailhook_deliveries_total",
                  "Webhook delivery attempts by webhook name and outcome (success, retry, dead).",
                  {"webhook", "outcome"}),
      delivery_seconds_(registry_, "mailhook_delivery_seconds", "Duration of one webhook delivery attempt in seconds.",
                        {"webhook"}, kSeconds),
      hook_runs_(registry_, "mailhook_hook_runs_total",
                 "Hook command runs by hook name and outcome (success, retry, dead).", {"hook", "outcome"}),
      hook_seconds_(registry_, "mailhook_hook_seconds", "Duration of one hook command run in seconds.", {"hook"},
                    kSeconds),
      smtp_sends_(registry_, "mailhook_smtp_sends_total",
                  "Mail sending attempts of smtp targets by target name and outcome (success, retry, dead).",
                  {"smtp", "outcome"}),
      smtp_seconds_(registry_, "mailhook_smtp_seconds", "Duration of one smtp target attempt in seconds.", {"smtp"},
                    kSeconds),
      http_rejected_(registry_, "mailhook_http_rejected_total",
                     "HTTP requests or connections the endpoint refused or dropped.", {"reason"}),
      config_reloads_(registry_, "mailhook_config_reloads_total",
                      "Config reloads (SIGHUP) by outcome: applied, or failed (the running config kept).", {"outcome"}),
      smtp_skipped_(registry_, "mailhook_smtp_skipped_total",
                    "Replies an smtp target did not send because a loop-protection rule (RFC 3834) fired, by rule.",
                    {"smtp", "rule"}),
      outbox_pending(
          GaugeFamily<0>(registry_, "mailhook_outbox_pending", "Deliveries stored in the outbox and not yet done.", {})
              .With({})),
      deadletters(GaugeFamily<0>(registry_, "mailhook_deadletters",
                                 "Deliveries that exhausted their retries or failed permanently.", {})
                      .With({})),
      worker_restarts(CounterFamily<0>(registry_, "mailhook_dispatcher_worker_restarts_total",
                                       "Delivery workers restarted after an unexpected error", {})
                          .With({})),
      workers_running(
          GaugeFamily<0>(registry_, "mailhook_dispatcher_workers_running", "Delivery workers running their loop", {})
              .With({})),
      cluster_accounts_owned(GaugeFamily<0>(registry_, "mailhook_cluster_accounts_owned",
                                            "Accounts whose lease this replica holds (PostgreSQL store).", {})
                                 .With({})),
      cluster_lease_renewals(CounterFamily<0>(registry_, "mailhook_cluster_lease_renewals_total",
                                              "Account leases renewed by this replica (one per lease per round).", {})
                                 .With({})),
      cluster_lease_losses(CounterFamily<0>(registry_, "mailhook_cluster_lease_losses_total",
                                            "Account leases this replica lost: ended unrenewed (PostgreSQL "
                                            "unreachable, a pause past the TTL) or taken over.",
                                            {})
                               .With({})),
      cluster_store_reachable(GaugeFamily<0>(registry_, "mailhook_cluster_store_reachable",
                                             "Whether the lease keeper's last round reached PostgreSQL (1) or not (0).",
                                             {})
                                  .With({})) {}

FolderMetrics MetricsCatalog::ForFolder(const std::string& account, const std::string& folder) const {
  return FolderMetrics{messages_.With({account, folder}),        message_failures_.With({account, folder}),
                       unprocessable_.With({account, folder}),   watcher_crashes_.With({account, folder}),
                       imap_reconnects_.With({account, folder}), imap_connected_.With({account, folder}),
                       folder_polled_.With({account, folder})};
}

AccountMetrics MetricsCatalog::ForAccount(const std::string& account) const {
  return AccountMetrics{imap_connections_.With({account}), folder_changes_.With({account, "created"}),
                        folder_changes_.With({account, "deleted"})};
}

TargetMetrics MetricsCatalog::ForTarget(const TargetId& target) const {
  const bool hook = target.kind == TargetKind::kHook, smtp = target.kind == TargetKind::kSmtp;
  const CounterFamily<2>& runs = hook ? hook_runs_ : smtp ? smtp_sends_ : deliveries_;
  const HistogramFamily<1>& seconds = hook ? hook_seconds_ : smtp ? smtp_seconds_ : delivery_seconds_;
  return TargetMetrics{runs.With({target.name, "success"}), runs.With({target.name, "retry"}),
                       runs.With({target.name, "dead"}), seconds.With({target.name})};
}

}  // namespace mailhook::util
