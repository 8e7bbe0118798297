#pragma once
/// Clock: where code whose behaviour depends on time (retry due times,
/// backoff waits, IDLE refresh) reads the time and waits, so that tests can
/// drive it. RealClock is the system; ManualClock is a fake that moves only
/// when told to (or by the waits made on it). Log timestamps do not go
/// through here.

#include <chrono>
#include <mutex>
#include <vector>

namespace mailhook::util {

/// The time now, and a wait on a file descriptor bounded by a duration.
/// Implementations are thread-safe.
class Clock {
 public:
  using WallTime = std::chrono::system_clock::time_point;
  using SteadyTime = std::chrono::steady_clock::time_point;

  virtual ~Clock() = default;
  /// Wall-clock time: what is stored and compared with stored times.
  virtual WallTime Now() const = 0;
  /// Monotonic time: for measuring durations and deadlines in a process.
  virtual SteadyTime SteadyNow() const = 0;
  /// Waits until `fd` is readable or `d` has passed; true when `fd` became
  /// readable (a stop or wake signal). fd -1: waits `d`.
  virtual bool WaitFd(int fd, std::chrono::milliseconds d) const = 0;

  /// The process's real clock (lives forever).
  static const Clock& Real();
};

/// The system clocks; waits with poll(2), restarted on EINTR.
class RealClock : public Clock {
 public:
  WallTime Now() const override { return std::chrono::system_clock::now(); }
  SteadyTime SteadyNow() const override { return std::chrono::steady_clock::now(); }
  bool WaitFd(int fd, std::chrono::milliseconds d) const override;
};

/// A fake for tests: time stands still until Advance(), and a WaitFd whose
/// fd is not readable returns at once as if `d` had passed (time moves on by
/// `d` and the wait is recorded), so a backoff of minutes costs nothing.
class ManualClock : public Clock {
 public:
  explicit ManualClock(WallTime start = WallTime(std::chrono::hours(24 * 365 * 50)))
      : wall_(start), steady_(SteadyTime(std::chrono::hours(1))) {}

  WallTime Now() const override {
    std::lock_guard lock(mu_);
    return wall_;
  }
  SteadyTime SteadyNow() const override {
    std::lock_guard lock(mu_);
    return steady_;
  }
  bool WaitFd(int fd, std::chrono::milliseconds d) const override;

  void Advance(std::chrono::milliseconds d) {
    std::lock_guard lock(mu_);
    wall_ += d;
    steady_ += d;
  }
  /// Every WaitFd that ran out, in order (the delays asked for).
  std::vector<std::chrono::milliseconds> waits() const {
    std::lock_guard lock(mu_);
    return waits_;
  }

 private:
  mutable std::mutex mu_;
  mutable WallTime wall_;
  mutable SteadyTime steady_;
  mutable std::vector<std::chrono::milliseconds> waits_;
};

}  // namespace mailhook::util
