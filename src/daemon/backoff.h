#pragma once
/// Backoff: exponential reconnect delays with full jitter, reset on success.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <random>

namespace mailhook::daemon {

/// Delays of base * 2^attempt, capped, with ±20% jitter so that many
/// watchers reconnecting after one outage do not stampede the server.
/// Computes delays only: the caller waits them (on its util::Clock).
class Backoff {
 public:
  Backoff(std::chrono::milliseconds base, std::chrono::milliseconds cap) : Backoff(base, cap, std::random_device{}()) {}
  /// With a fixed jitter seed, for tests.
  Backoff(std::chrono::milliseconds base, std::chrono::milliseconds cap, uint64_t seed)
      : base_(base), cap_(cap), rng_(seed) {}

  /// The delay before the next attempt; grows with every call.
  std::chrono::milliseconds Next() {
    double raw = static_cast<double>(base_.count()) * static_cast<double>(1ULL << std::min(attempt_, 20));
    raw = std::min(raw, static_cast<double>(cap_.count()));
    ++attempt_;
    std::uniform_real_distribution<double> jitter(0.8, 1.2);
    return std::chrono::milliseconds(static_cast<int64_t>(raw * jitter(rng_)));
  }
  void Reset() { attempt_ = 0; }
  int attempts() const { return attempt_; }

 private:
  std::chrono::milliseconds base_, cap_;
  int attempt_ = 0;
  std::mt19937_64 rng_;
};

}  // namespace mailhook::daemon
