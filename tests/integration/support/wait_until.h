#pragma once
/// WaitUntil: polls a condition every 100 ms until it holds or the timeout
/// passes — for tests that wait on state they can only read (a daemon's
/// /metrics, a server's process list), never to sleep a fixed time.

#include <chrono>
#include <thread>

namespace mailhook::testsupport {

/// True once `done()` held; false when `timeout` passed first.
template <class F>
bool WaitUntil(F done, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (done()) return true;
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

}  // namespace mailhook::testsupport
