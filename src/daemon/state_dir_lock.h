#pragma once
/// StateDirLock: one `mailhook run` per state_dir. Two daemons on one state_dir
/// would both deliver every event (each releases the other's leases at start),
/// so the second must not start.
///
/// The claim is an flock(2) on <state_dir>/mailhook.lock, held for the life of
/// the object: the kernel drops it when the process ends, also on SIGKILL, so
/// a crash never leaves a stale lock. The file holds the holder's pid and host
/// name (for the second daemon's error message), and is opened close-on-exec
/// so no hook inherits the claim. Only `run` takes it: `mailhook deadletters`
/// works beside a running daemon through SQLite's own locking.
///
/// Not thread-safe; made once in RunDaemon, before any lease is touched.

#include <memory>
#include <string>

#include "util/result.h"

namespace mailhook::daemon {

/// The held lock; releasing it is destroying it.
class StateDirLock {
 public:
  /// The lock file's name inside state_dir.
  static constexpr const char* kFileName = "mailhook.lock";

  /// Takes the lock without waiting. Errors: "daemon.state_dir_locked" (another
  /// process holds it; the message names its pid and host and the fix),
  /// "daemon.lock_file" (the file cannot be opened or locked).
  static util::Result<std::unique_ptr<StateDirLock>> Acquire(const std::string& state_dir);

  ~StateDirLock();
  StateDirLock(const StateDirLock&) = delete;
  StateDirLock& operator=(const StateDirLock&) = delete;

 private:
  explicit StateDirLock(int fd) : fd_(fd) {}
  int fd_;
};

}  // namespace mailhook::daemon
