#pragma once
/// IdleWorkers: counts the dispatcher's workers going to sleep with nothing
/// to claim (Dispatcher's idle hook), for tests to wait on instead of sleeping.

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>

namespace mailhook::delivery {

class IdleWorkers {
 public:
  explicit IdleWorkers(std::chrono::milliseconds wait = std::chrono::seconds(10)) : wait_(wait) {}
  std::function<void(int)> Callback() {
    return [this](int) {
      std::lock_guard lock(mu_);
      ++count_;
      cv_.notify_all();
    };
  }
  int count() {
    std::lock_guard lock(mu_);
    return count_;
  }
  /// True once `n` idle looks were counted, false after the wait.
  bool WaitFor(int n) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, wait_, [&] { return count_ >= n; });
  }

 private:
  const std::chrono::milliseconds wait_;
  std::mutex mu_;
  std::condition_variable cv_;
  int count_ = 0;
};

}  // namespace mailhook::delivery
