#pragma once
/// What a delivery attempt's result means, and when to try again.
///
/// Classification (CONTRACT.md "Webhook delivery"): 2xx success; 408, 429, 5xx,
/// timeouts and connection errors retry; every other status (other 4xx, and 3xx
/// because redirects are not followed) is permanent. The wait after the n-th
/// failed attempt is schedule[n-1] with +/-20% jitter; a longer Retry-After wins;
/// when the schedule is exhausted the row goes to the dead letters.
///
/// RetryPolicy is immutable after construction; NextWait takes the caller's RNG,
/// so one policy can serve several threads.

#include <chrono>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace mailhook::delivery {

using Duration = std::chrono::milliseconds;

/// The kind of result of one attempt.
enum class OutcomeKind { kSuccess, kRetry, kPermanent };

/// The result of one delivery attempt. Never contains secrets.
struct Outcome {
  OutcomeKind kind = OutcomeKind::kRetry;
  int http_status = 0;                  ///< 0 when no response arrived
  std::optional<Duration> retry_after;  ///< from a Retry-After header
  std::string error;                    ///< why it failed; empty on success
  bool cancelled = false;               ///< aborted by shutdown: not an attempt
};

/// Classifies an HTTP status code.
OutcomeKind ClassifyStatus(int status);

/// Parses Retry-After (RFC 9110 section 10.2.3): delay-seconds or an HTTP-date
/// (IMF-fixdate, RFC 850 and asctime forms, section 5.6.7). nullopt when
/// malformed; a date in the past gives 0.
std::optional<Duration> ParseRetryAfter(std::string_view value, std::chrono::system_clock::time_point now);

/// The waits between attempts for one target.
class RetryPolicy {
 public:
  /// Retry-After values above this are capped, so one odd header cannot park an
  /// event for months.
  static constexpr Duration kMaxRetryAfter = std::chrono::hours(24);

  explicit RetryPolicy(std::vector<Duration> schedule, double jitter = 0.2)
      : schedule_(std::move(schedule)), jitter_(jitter) {}

  /// The wait after `attempts` failed attempts (1 = the first failure), or
  /// nullopt when the schedule is exhausted (dead letter).
  std::optional<Duration> NextWait(int attempts, std::optional<Duration> retry_after, std::mt19937_64& rng) const;

  const std::vector<Duration>& schedule() const { return schedule_; }

 private:
  std::vector<Duration> schedule_;
  double jitter_;
};

}  // namespace mailhook::delivery
