#include "delivery/retry_policy.h"

#include <charconv>
#include <ctime>

namespace mailhook::delivery {
namespace {

constexpr int64_t kMaxRetryAfterSeconds =
    std::chrono::duration_cast<std::chrono::seconds>(RetryPolicy::kMaxRetryAfter).count();

}  // namespace

OutcomeKind ClassifyStatus(int status) {
  if (status >= 200 && status < 300) return OutcomeKind::kSuccess;
  // 408 and 429 are the client errors that say "later" (RFC 9110 15.5.9,
  // RFC 6585 section 4); 5xx is the server's problem, which may heal.
  if (status == 408 || status == 429 || (status >= 500 && status < 600)) {
    return OutcomeKind::kRetry;
  }
  return OutcomeKind::kPermanent;
}

std::optional<Duration> ParseRetryAfter(std::string_view value, std::chrono::system_clock::time_point now) {
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
  if (value.empty()) return std::nullopt;
  if (value.front() >= '0' && value.front() <= '9') {
    int64_t secs = 0;
    auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), secs);
    if (ec == std::errc::result_out_of_range) return RetryPolicy::kMaxRetryAfter;
    if (ec != std::errc() || end != value.data() + value.size()) return std::nullopt;
    // Clamp in seconds, before the conversion to milliseconds multiplies by
    // 1000: 10^17 s would overflow int64 there and come out negative.
    if (secs > kMaxRetryAfterSeconds) return RetryPolicy::kMaxRetryAfter;
    return std::chrono::duration_cast<Duration>(std::chrono::seconds(secs));
  }
  // HTTP-date: recipients must accept all three formats (RFC 9110 5.6.7).
  std::string text(value);
  for (const char* format : {"%a, %d %b %Y %H:%M:%S GMT", "%A, %d-%b-%y %H:%M:%S GMT", "%a %b %e %H:%M:%S %Y"}) {
    std::tm tm{};
    const char* end = strptime(text.c_str(), format, &tm);
    if (end == nullptr || *end != '\0') continue;
    // Compare in time_t seconds: system_clock counts nanoseconds in int64
    // (+/- 292 years), so a date like year 9999 overflows from_time_t.
    time_t at = timegm(&tm);
    time_t now_t = std::chrono::system_clock::to_time_t(now);
    if (at == static_cast<time_t>(-1) && tm.tm_year > 70) return RetryPolicy::kMaxRetryAfter;
    if (at <= now_t) return Duration(0);
    if (at - now_t > kMaxRetryAfterSeconds) return RetryPolicy::kMaxRetryAfter;
    return std::chrono::duration_cast<Duration>(std::chrono::system_clock::from_time_t(at) - now);
  }
  return std::nullopt;
}

std::optional<Duration> RetryPolicy::NextWait(int attempts, std::optional<Duration> retry_after,
                                              std::mt19937_64& rng) const {
  if (attempts < 1 || static_cast<size_t>(attempts) > schedule_.size()) return std::nullopt;
  // Jitter spreads the retries of many events that failed together, so a
  // recovering receiver is not hit by all of them at once.
  std::uniform_real_distribution<double> dist(1.0 - jitter_, 1.0 + jitter_);
  auto base = schedule_[static_cast<size_t>(attempts - 1)];
  Duration wait(static_cast<int64_t>(static_cast<double>(base.count()) * dist(rng)));
  if (retry_after) wait = std::max(wait, std::min(*retry_after, kMaxRetryAfter));
  return wait;
}

}  // namespace mailhook::delivery
