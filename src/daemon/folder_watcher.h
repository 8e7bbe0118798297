#pragma once
/// FolderWatcher: the thread that owns one IMAP session for one (account,
/// folder). connect → login → SELECT → catch up from the stored watermark →
/// IDLE, and around again on every wake. New messages become events that are
/// made durable together with the new watermark in one transaction, so a
/// crash at any point replays and never skips (DESIGN.md "The flow").

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "config/config.h"
#include "daemon/stop_signal.h"
#include "util/result.h"

namespace mailhook::store {
class Store;
}

namespace mailhook::imap {
class Session;
}

namespace mailhook::daemon {

/// Where a watcher is; read by /readyz.
enum class WatchState { kStarting, kConnecting, kCatchingUp, kIdling, kBackoff, kNeedsOperator, kStopped };

/// Name for logs and /readyz.
const char* WatchStateName(WatchState s);

/// One watched folder. Start() spawns the thread; Join() waits for it after
/// the shared StopSignal fired. state() is safe from any thread.
class FolderWatcher {
 public:
  /// `on_committed` is called (from the watcher thread) after new outbox rows
  /// were committed, to wake the dispatcher. The config must outlive this.
  FolderWatcher(const config::Config& config, const config::Account& account, std::string folder,
                const StopSignal& stop, std::function<void()> on_committed);
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
  void Run();
  /// One session's life; returns when the session broke or stop fired.
  util::Status RunSession(store::Store& store);
  /// Performs the on_delivered actions whose events every target received.
  util::Status ApplyPostActions(imap::Session& session, store::Store& store, uint32_t uidvalidity);
  bool HasPostActions() const;

  const config::Config& config_;
  const config::Account& account_;
  std::string folder_;
  const StopSignal& stop_;
  std::function<void()> on_committed_;
  StopSignal wake_;  // reusable: fired by Wake(), cleared by the watcher
  std::atomic<WatchState> state_{WatchState::kStarting};
  bool reached_idle_ = false;  // watcher thread only
  std::thread thread_;
};

}  // namespace mailhook::daemon
