#pragma once
/// StopSignal: a level-triggered "please stop" shared by every thread, as an
/// eventfd so that poll()-based waits (IMAP reads, IDLE, backoff sleeps) wake
/// at once. Thread-safe.

#include <chrono>

namespace mailhook::daemon {

/// Once Fire()d, stays fired.
class StopSignal {
 public:
  StopSignal();
  ~StopSignal();
  StopSignal(const StopSignal&) = delete;
  StopSignal& operator=(const StopSignal&) = delete;

  void Fire();
  bool fired() const;
  /// The fd that becomes readable when fired.
  int fd() const { return fd_; }
  /// Un-fires it (for use as a reusable wake-up). Not for the shutdown signal.
  void Clear();
  /// Sleeps up to `d`; returns true when woken by Fire().
  bool WaitFor(std::chrono::milliseconds d) const;

 private:
  int fd_;
};

}  // namespace mailhook::daemon
