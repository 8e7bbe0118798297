// Retry-After values from a receiver are clamped before any arithmetic that
// could overflow (RFC 9110 section 10.2.3 sets no upper bound).
#include "delivery/retry_policy.h"

#include <gtest/gtest.h>

namespace mailhook::delivery {
namespace {

using namespace std::chrono_literals;

TEST(RetryAfterTest, HugeDelaySecondsAreClampedNotOverflowed) {
  auto now = std::chrono::system_clock::now();
  // 10^17 s fits int64 as seconds but not as milliseconds (x1000).
  EXPECT_EQ(ParseRetryAfter("100000000000000000", now), RetryPolicy::kMaxRetryAfter);
  EXPECT_EQ(ParseRetryAfter("9223372036854775807", now), RetryPolicy::kMaxRetryAfter);
  EXPECT_EQ(ParseRetryAfter("99999999999999999999999", now), RetryPolicy::kMaxRetryAfter);
  EXPECT_EQ(ParseRetryAfter("86400", now), RetryPolicy::kMaxRetryAfter);
  EXPECT_EQ(ParseRetryAfter("86399", now), Duration(86399000));
}

TEST(RetryAfterTest, FarHttpDateIsClampedNotOverflowed) {
  auto now = std::chrono::system_clock::now();
  // Year 9999 is beyond system_clock's nanosecond range (about 2262).
  EXPECT_EQ(ParseRetryAfter("Fri, 31 Dec 9999 23:59:59 GMT", now), RetryPolicy::kMaxRetryAfter);
  EXPECT_EQ(ParseRetryAfter("Sat, 01 Jan 2300 00:00:00 GMT", now), RetryPolicy::kMaxRetryAfter);
  EXPECT_EQ(ParseRetryAfter("Thu, 01 Jan 1970 00:00:00 GMT", now), Duration(0));
}

TEST(RetryAfterTest, ClampedValueGivesAWaitOfAtMostTheCap) {
  RetryPolicy policy({5s});
  std::mt19937_64 rng(1);
  auto wait = policy.NextWait(1, ParseRetryAfter("100000000000000000", {}), rng);
  ASSERT_TRUE(wait.has_value());
  EXPECT_EQ(*wait, RetryPolicy::kMaxRetryAfter);
}

}  // namespace
}  // namespace mailhook::delivery
