#pragma once
/// FolderWatcher: the thread that owns one IMAP session for one (account,
/// folder). connect → login → SELECT → catch up from the stored watermark →
/// IDLE, and around again on every wake. New messages become events that are
/// made durable together with the new watermark in one transaction, so a
/// crash at any point replays and never skips (DESIGN.md "The flow").
///
/// The rules live in pure pieces with their own tests: where a session
/// starts (baseline_planner.h) and when events and the watermark become
/// durable (batch_committer.h); session_work.h is the I/O loop between
/// them. The network and the clock come in through WatcherSeams.

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "config/config.h"
#include "daemon/stop_signal.h"
#include "imap/mailbox.h"
#include "mime/extractor.h"
#include "util/clock.h"
#include "util/metrics_catalog.h"
#include "util/result.h"

namespace mailhook::store {
class Store;
}

namespace mailhook::daemon {

/// Where a watcher is; read by /readyz. kCrashed: the session threw (a bug);
/// the watcher starts a new session after a backoff.
enum class WatchState { kStarting, kConnecting, kCatchingUp, kIdling, kBackoff, kNeedsOperator, kStopped, kCrashed };

/// Name for logs and /readyz.
const char* WatchStateName(WatchState s);

/// What a watcher uses of the outside world besides the store; tests pass
/// a scripted mailbox and a manual clock.
struct WatcherSeams {
  /// Opens each session's mailbox; empty: imap::Session::Open (the network).
  imap::MailboxOpener open_mailbox;
  /// Where backoff and restart waits go; nullptr: util::Clock::Real().
  const util::Clock* clock = nullptr;
};

/// One watched folder. Start() spawns the thread; Join() waits for it after
/// the shared StopSignal fired. state() is safe from any thread.
///
/// Poison messages: every extraction attempt is counted in the store before
/// it starts (a crash counts too); a UID that failed before is retried alone,
/// and after limits.max_attempts it becomes a message.unprocessable event so
/// the folder moves on. No exception ends the thread: a session that throws
/// is logged and replaced after a backoff.
class FolderWatcher {
 public:
  /// `on_committed` is called (from the watcher thread) after new outbox rows
  /// were committed, to wake the dispatcher. The config and `metrics` must
  /// outlive this.
  FolderWatcher(const config::Config& config, const config::Account& account, std::string folder,
                const StopSignal& stop, std::function<void()> on_committed, const util::MetricsCatalog& metrics,
                WatcherSeams seams = {});
  ~FolderWatcher();

  void Start();
  void Join();
  /// Asks the watcher to look at its post-actions now (an event of this
  /// folder was delivered). Thread-safe; cheap.
  void Wake() { wake_.Fire(); }
  WatchState state() const { return state_.load(); }
  const std::string& account() const { return account_.name; }
  const std::string& folder() const { return folder_; }

 private:
  class SessionWork;
  void Run();
  /// Sessions one after another, with backoff, until stop fires.
  void RunSessions();
  /// One session's life; returns when the session broke or stop fired.
  util::Status RunSession(store::Store& store);
  /// RunSession with any exception turned into an error (and kCrashed).
  util::Status RunSessionGuarded(store::Store& store);
  /// Performs the on_delivered actions whose events every target received.
  util::Status ApplyPostActions(imap::Mailbox& session, store::Store& store, uint32_t uidvalidity);
  bool HasPostActions() const;

  const config::Config& config_;
  const config::Account& account_;
  std::string folder_;
  const StopSignal& stop_;
  std::function<void()> on_committed_;
  const util::FolderMetrics metrics_;  // this folder's series, bound once
  imap::MailboxOpener open_mailbox_;
  const util::Clock& clock_;
  StopSignal wake_;  // reusable: fired by Wake(), cleared by the watcher
  std::atomic<WatchState> state_{WatchState::kStarting};
  bool reached_idle_ = false;  // watcher thread only
  /// What every message of this folder is extracted with (the routes that
  /// decide it depend on the folder only) and the account's limits.
  mime::ExtractOptions extract_options_;
  /// Test-only fault point, from the environment: a message whose header
  /// contains MAILHOOK_TEST_FAULT_SUBJECT gets MAILHOOK_TEST_FAULT_ACTION
  /// when it is extracted: "throw" (default), "abort", "sleep:MS", or
  /// "transient_once" (its first extraction fails with a retry-now store error).
  std::string fault_subject_;
  std::string fault_action_;
  bool transient_fault_fired_ = false;  // watcher thread only
  /// Test-only crash point: MAILHOOK_TEST_FAULT_FIRST_PASS_COMMITS=N gives
  /// the N-th commit of a first pass that leaves the watermark unwritten
  /// (a first pass cut short) MAILHOOK_TEST_FAULT_ACTION, after it is stored.
  /// 0: off. Watcher thread only.
  int fault_first_pass_commits_ = 0;
  std::thread thread_;
};

}  // namespace mailhook::daemon
