#include "util/clock.h"

#include <poll.h>

#include <cerrno>

namespace mailhook::util {
namespace {

/// poll(2) on `fd` for up to `timeout_ms`; true when readable.
bool PollReadable(int fd, int timeout_ms) {
  pollfd p{fd, POLLIN, 0};
  return poll(&p, fd >= 0 ? 1 : 0, timeout_ms) > 0;
}

}  // namespace

const Clock& Clock::Real() {
  static const RealClock real;
  return real;
}

bool RealClock::WaitFd(int fd, std::chrono::milliseconds d) const {
  const auto deadline = SteadyNow() + d;
  for (;;) {
    // Rounded up: poll() must not return before the deadline.
    auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - SteadyNow());
    if (left.count() <= 0) return false;
    pollfd p{fd, POLLIN, 0};
    int r = poll(&p, fd >= 0 ? 1 : 0, static_cast<int>(left.count()));
    if (r > 0) return true;
    if (r == 0) return false;
    if (errno != EINTR) return false;
  }
}

bool ManualClock::WaitFd(int fd, std::chrono::milliseconds d) const {
  if (fd >= 0 && PollReadable(fd, 0)) return true;
  std::lock_guard lock(mu_);
  wall_ += d;
  steady_ += d;
  waits_.push_back(d);
  return false;
}

}  // namespace mailhook::util
