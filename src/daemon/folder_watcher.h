#pragma once
/// FolderWatcher: one watched (account, folder): its state, its metrics and
/// the work of bringing it up to date on a connection its AccountWatcher
/// lends it (account_watcher.h owns the connections and threads): SELECT →
/// catch up from the stored watermark → post-actions. New messages become
/// events that are made durable together with the new watermark in one
/// transaction, so a crash at any point replays and never skips (DESIGN.md
/// "The flow").
///
/// The rules live in pure pieces with their own tests: where a folder
/// starts (baseline_planner.h) and when events and the watermark become
/// durable (batch_committer.h); session_work.h is the I/O loop between them.

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "config/config.h"
#include "daemon/router.h"
#include "daemon/stop_signal.h"
#include "imap/mailbox.h"
#include "mime/extractor.h"
#include "util/clock.h"
#include "util/metrics_catalog.h"
#include "util/result.h"

namespace mailhook::store {
class Store;
}

namespace mailhook::delivery {
class OAuth2TokenCache;  // delivery/oauth2_token_cache.h
}  // namespace mailhook::delivery

namespace mailhook::daemon {

/// Where a watched folder is; read by /readyz. kIdling: up to date and
/// watched (IDLE, NOTIFY or polling). kCrashed: a sync threw (a bug); the
/// account watcher starts a new session after a backoff.
enum class WatchState { kStarting, kConnecting, kCatchingUp, kIdling, kBackoff, kNeedsOperator, kStopped, kCrashed };

/// Name for logs and /readyz.
const char* WatchStateName(WatchState s);

/// What an account watcher uses of the outside world besides the store;
/// tests pass a scripted mailbox and a manual clock.
struct WatcherSeams {
  /// Opens each connection's mailbox; empty: imap::Session::Open (the network).
  imap::MailboxOpener open_mailbox;
  /// Where backoff and restart waits go; nullptr: util::Clock::Real().
  const util::Clock* clock = nullptr;
  /// Where events are routed; nullptr: the watcher's own config (fixed).
  /// The daemon passes its RouteTable, which a config reload replaces.
  const RouteTable* routes = nullptr;
  /// The account's OAuth2 token cache (AccountSet keeps it across restarts);
  /// nullptr: the watcher makes its own when the account has `oauth2`.
  std::shared_ptr<delivery::OAuth2TokenCache> tokens = nullptr;
};

/// One watched folder. Not a thread: its AccountWatcher calls Sync() on its
/// worker connection whenever the folder may have changed. state() is safe
/// from any thread.
///
/// Poison messages: every extraction attempt is counted in the store before
/// it starts (a crash counts too); a UID that failed before is retried alone,
/// and after limits.max_attempts it becomes a message.unprocessable event so
/// the folder moves on.
class FolderWatcher {
 public:
  /// `on_committed` is called (from the syncing thread) after new outbox rows
  /// were committed, to wake the dispatcher. The config and `metrics` must
  /// outlive this.
  FolderWatcher(const config::Config& config, const config::Account& account, std::string folder,
                const StopSignal& stop, std::function<void()> on_committed, const util::MetricsCatalog& metrics);

  /// Brings the folder up to date on `session` (whatever was selected on it
  /// before): SELECT, catch up by UID from the watermark until a search finds
  /// nothing new, then the post-actions whose events every target received.
  /// An error leaves the watermark where the last commit put it; any
  /// exception becomes an error (kCrashed). One caller at a time.
  ///
  /// `still_selected`: the caller knows this folder is still selected on
  /// `session` since this watcher's last successful Sync on it (nothing else
  /// was selected in between). Then there is no SELECT: the UID SEARCH that
  /// follows shows the messages that came meanwhile (the server syncs the
  /// selected mailbox at every command), and a SELECT is the most expensive
  /// command of a small sync on the server (Dovecot opens the mailbox's
  /// indexes again). UIDVALIDITY cannot change under a selected folder
  /// without the server ending the session (Dovecot disconnects it).
  util::Status Sync(imap::Mailbox& session, store::Store& store, bool still_selected = false);

  /// True when the last successful Sync found new messages.
  bool last_sync_found_new() const { return last_sync_found_new_; }
  WatchState state() const { return state_.load(); }
  void set_state(WatchState s) { state_ = s; }
  /// True while something notices the folder's changes: its NOTIFY or IDLE
  /// connection is up, or it is polled. Set by the account watcher.
  bool watched() const { return watched_.load(); }
  void set_watched(bool w) { watched_ = w; }
  /// Routes through `routes` (WatcherSeams::routes) instead of the config
  /// given at construction. Before the first Sync; `routes` outlives this.
  void set_routes(const RouteTable* routes);
  const std::string& account() const { return account_.name; }
  const std::string& folder() const { return folder_; }
  const util::FolderMetrics& metrics() const { return metrics_; }

 private:
  class SessionWork;
  util::Status SyncUnguarded(imap::Mailbox& session, store::Store& store, bool still_selected);
  /// Performs the on_delivered actions whose events every target received.
  util::Status ApplyPostActions(imap::Mailbox& session, store::Store& store, uint32_t uidvalidity);
  bool HasPostActions() const;
  /// The targets of an event of this folder (content null: before decoding).
  std::vector<Route> Routes(const mime::MessageContent* content) const;
  /// extract_options_ from the routes (at construction and, when routes_
  /// can change, before each sync).
  void UpdateExtractOptions();

  const config::Config& config_;
  const RouteTable* routes_ = nullptr;
  const config::Account& account_;
  std::string folder_;
  const StopSignal& stop_;
  std::function<void()> on_committed_;
  const util::FolderMetrics metrics_;  // this folder's series, bound once
  std::atomic<WatchState> state_{WatchState::kStarting};
  std::atomic<bool> watched_{false};
  bool synced_once_ = false;          // Sync caller only: logs the first sync at info
  bool last_sync_found_new_ = false;  // Sync caller only
  /// What the last SELECT reported; reused by a Sync with still_selected.
  std::optional<imap::MailboxInfo> selected_info_;  // Sync caller only
  /// What every message of this folder is extracted with (the routes that
  /// decide it depend on the folder only) and the account's limits.
  mime::ExtractOptions extract_options_;
  /// Test-only fault point, from the environment: a message whose header
  /// contains MAILHOOK_TEST_FAULT_SUBJECT gets MAILHOOK_TEST_FAULT_ACTION
  /// when it is extracted: "throw" (default), "abort", "sleep:MS", or
  /// "transient_once" (its first extraction fails with a retry-now store error).
  std::string fault_subject_;
  std::string fault_action_;
  bool transient_fault_fired_ = false;  // Sync caller only
  /// Test-only crash point: MAILHOOK_TEST_FAULT_FIRST_PASS_COMMITS=N gives
  /// the N-th commit of a first pass that leaves the watermark unwritten
  /// (a first pass cut short) MAILHOOK_TEST_FAULT_ACTION, after it is stored.
  /// 0: off. Sync caller only.
  int fault_first_pass_commits_ = 0;
  /// Matching a recreated folder (session_fingerprints.cc): UIDs per
  /// Message-ID fetch, halved after a response too large for the budget, and
  /// the UIDs whose fields alone were too large (matched to nothing).
  /// Sync caller only; they outlive the session the error ended.
  size_t match_window_ = 250;
  std::set<uint32_t> unmatchable_;
};

}  // namespace mailhook::daemon
