#pragma once
/// AccountWatcher: every watched folder of one account, with few connections
/// and a fixed number of threads instead of a thread and a connection per
/// folder (1,000 folders cost 1,000 connections; Gmail allows 15).
///
/// - The **worker** connection (a thread of its own) does all the fetching:
///   it syncs each folder marked changed (FolderWatcher::Sync), runs the
///   post-actions, polls the folders that have no watch of their own with
///   STATUS every poll_interval, and resyncs every folder every idle_refresh
///   (notifications are not trusted alone, DESIGN.md).
/// - **Watching** only marks folders changed, so IDLE is never held up by a
///   fetch and a fetch never waits for IDLE:
///   - NOTIFY (RFC 5465) when the server offers it and `notify: auto`: one
///     connection reports new and expunged messages of every folder, and
///     folders created or deleted (logged, counted in /metrics);
///   - else one IDLE connection per folder up to max_connections − 1 (the
///     worker holds one): `idle: true` folders first, then config order; the
///     rest is polled (logged at start-up and in /metrics as
///     mailhook_imap_folder_polled).
/// Connections: 2 with NOTIFY, at most max_connections without. Threads:
/// 1 + the watch connections. Every connection has its own backoff; a watch
/// connection that comes back marks its folders changed, so nothing that
/// arrived meanwhile waits for the next notification.
///
/// Liveness: a proxy or NAT may black-hole a session (TCP stays up, nothing
/// is forwarded), which TCP keepalive never notices. Every connection makes a
/// round trip at least every liveness_interval (DONE + IDLE on a watch
/// connection, NOOP on a waiting worker) and gives its answer
/// min(timeout, 30s) (SessionOptions::answer_deadline); without one the
/// session is replaced (`imap.liveness_failed`) and its folders synced.
///
/// Lifecycle: construct, Start, Wake from any thread, Join after the shared
/// StopSignal fired.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "config/config.h"
#include "daemon/folder_watcher.h"
#include "daemon/recheck_schedule.h"
#include "daemon/stop_signal.h"
#include "daemon/store_pool.h"
#include "delivery/oauth2_token_cache.h"
#include "imap/mailbox.h"
#include "util/clock.h"
#include "util/metrics_catalog.h"
#include "util/mutex.h"
#include "util/result.h"
#include "util/thread_annotations.h"

namespace mailhook::daemon {

/// How a folder's changes are noticed.
enum class FolderWatch { kUndecided, kNotify, kIdle, kPoll };

/// Name for logs: "notify", "idle", "poll".
const char* FolderWatchName(FolderWatch w);

/// Which folders get an IDLE connection without NOTIFY: `idle_budget` of
/// them, the account's `idle_pinned` folders first, then config order. The
/// result is per folder of account.folders: kIdle or kPoll. Pure.
std::vector<FolderWatch> PlanIdleWatches(const config::Account& account, int idle_budget);

class AccountWatcher {
 public:
  /// `on_committed` wakes the dispatcher after new outbox rows were
  /// committed. The config, `metrics` and `stores` must outlive this.
  AccountWatcher(const config::Config& config, const config::Account& account, const StopSignal& stop,
                 std::function<void()> on_committed, const util::MetricsCatalog& metrics, StorePool& stores,
                 WatcherSeams seams = {});
  ~AccountWatcher();
  AccountWatcher(const AccountWatcher&) = delete;
  AccountWatcher& operator=(const AccountWatcher&) = delete;

  void Start();
  void Join();
  /// An event of `folder` was delivered: its post-actions may be due.
  /// Thread-safe; cheap.
  void Wake(const std::string& folder);

  const std::string& name() const { return account_.name; }
  const std::vector<std::unique_ptr<FolderWatcher>>& folders() const { return folders_; }
  /// How folder `i` is watched (kUndecided until the first connection).
  FolderWatch watch(size_t i) const { return watch_[i].load(); }
  /// IMAP connections open now.
  int connections() const { return connections_.load(); }

 private:
  class Connection;
  void RunWorker();
  /// One worker connection's life: returns when it broke or stop fired.
  util::Status WorkerSession();
  /// Syncs the folders marked changed; a folder the server refuses (missing)
  /// is reported and skipped, any other error ends the session.
  util::Status SyncChanged(imap::Mailbox& session);
  /// After a successful sync of `i`: when to look at it again (RecheckSchedule).
  void ScheduleRecheck(size_t i);
  /// Has the next sync of `i` SELECT it again (reselect_).
  void RequireSelect(size_t i);
  /// Whether RequireSelect(i) was called since its last sync; clears it.
  bool TakeReselect(size_t i);
  /// Marks the folders whose recheck is due; true if there was one.
  bool RecheckDue(std::chrono::steady_clock::time_point now);
  /// STATUS of every polled folder; a change marks it.
  util::Status PollFolders(imap::Mailbox& session);
  /// Once, on the first connection: NOTIFY or IDLE + polling, and the watch
  /// threads started.
  void DecideWatches(const imap::Mailbox& first);
  util::Status NotifySession();
  /// A watch connection of `watched` folders broke: they are not ready until
  /// a sync, which the worker does at once.
  void WatchLost(const std::vector<size_t>& watched, const util::Status& why);
  /// A connection `folder` depends on ended with `why`: its state and metrics say so.
  static void ConnectionLost(FolderWatcher& folder, const util::Status& why);
  util::Status IdleSession(size_t folder);
  /// The longest a connection waits without a round trip: liveness_interval
  /// when on and shorter than idle_refresh, else idle_refresh.
  std::chrono::milliseconds LivenessWait() const;
  /// `s` (a DONE or NOOP that went unanswered is a failed liveness round
  /// trip: logged and named so) as the session's end.
  util::Status LivenessChecked(const util::Error& e, const std::string& role) const;
  /// Runs `session` again and again (backoff between, slow for errors an
  /// operator must fix) until stop fires; `role` names it in logs.
  void RunWithBackoff(const std::string& role, const std::function<util::Status()>& session,
                      const std::function<void(const util::Status&)>& on_end);
  util::Result<std::unique_ptr<Connection>> Open();
  /// The password, or with the OAuth2 refresh flow the cached access token.
  util::Result<util::Secret> Credential();
  void MarkChanged(size_t i);
  void MarkAllChanged();
  std::vector<size_t> TakeChanged();
  std::optional<size_t> IndexOf(const std::string& folder) const;
  void OnFolderEvent(const imap::FolderEvent& event);
  /// Reports a folder that went missing (deleted) or came back.
  void ReportMissing(size_t i, bool missing, const std::string& cause);

  const config::Config& config_;
  const config::Account& account_;
  const StopSignal& stop_;
  const util::AccountMetrics metrics_;
  StorePool& stores_;
  imap::MailboxOpener open_mailbox_;
  const util::Clock& clock_;
  /// With `oauth2: { token_url... }`: the access token all connections share.
  std::shared_ptr<delivery::OAuth2TokenCache> tokens_;
  std::vector<std::unique_ptr<FolderWatcher>> folders_;
  /// Per folder; written once by the worker before the watch threads start.
  std::unique_ptr<std::atomic<FolderWatch>[]> watch_;
  util::Mutex mu_;
  std::vector<bool> changed_ GUARDED_BY(mu_);
  std::vector<bool> missing_ GUARDED_BY(mu_);  // reported unavailable
  /// The folder may be another one under the same name (deleted and created
  /// again, or its watch connection broke): its next sync SELECTs, as a NOOP
  /// on the old selection would not show a new UIDVALIDITY (Dovecot 2.3).
  std::vector<bool> reselect_ GUARDED_BY(mu_);
  StopSignal work_;  // fired when a folder is marked: wakes the worker
  std::atomic<int> connections_{0};
  // Worker thread only:
  bool decided_ = false;
  size_t first_ = 0;  // where TakeChanged starts (after a folder that broke the session)
  std::vector<std::optional<imap::FolderStatus>> last_status_;  // polled folders
  /// When to look again at a folder whose last sync found new mail.
  std::vector<RecheckSchedule> rechecks_;
  /// The folder selected on the worker's session by its last successful
  /// sync: its next sync needs no SELECT (FolderWatcher::Sync). Reset with
  /// the session, after a refused folder, and at each idle_refresh resync
  /// (a fresh SELECT now and then, as before).
  std::optional<size_t> selected_;
  std::chrono::steady_clock::time_point selected_at_;  // when selected_ was last SELECTed
  std::vector<std::thread> watch_threads_;             // started and joined by the worker
  std::thread worker_;
};

}  // namespace mailhook::daemon
