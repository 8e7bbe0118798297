#include "daemon/backoff.h"

#include <gtest/gtest.h>

#include <set>

namespace mailhook::daemon {
namespace {

using std::chrono::milliseconds;

TEST(BackoffTest, DoublesFromBaseWithinTwentyPercent) {
  Backoff b(milliseconds(1000), milliseconds(600000), 42);
  for (int i = 0; i < 8; ++i) {
    const double nominal = 1000.0 * (1 << i);
    const milliseconds d = b.Next();
    EXPECT_GE(d.count(), nominal * 0.8 - 1) << "attempt " << i;
    EXPECT_LE(d.count(), nominal * 1.2) << "attempt " << i;
    EXPECT_EQ(b.attempts(), i + 1);
  }
}

TEST(BackoffTest, StaysAtTheCapPlusJitter) {
  Backoff b(milliseconds(1000), milliseconds(5000), 7);
  for (int i = 0; i < 40; ++i) (void)b.Next();  // 2^40 would overflow without the cap on the shift
  for (int i = 0; i < 20; ++i) {
    const milliseconds d = b.Next();
    EXPECT_GE(d.count(), 4000 - 1);
    EXPECT_LE(d.count(), 6000);
  }
}

TEST(BackoffTest, ResetStartsOverFromBase) {
  Backoff b(milliseconds(1000), milliseconds(600000), 3);
  for (int i = 0; i < 5; ++i) (void)b.Next();
  b.Reset();
  EXPECT_EQ(b.attempts(), 0);
  const milliseconds d = b.Next();
  EXPECT_GE(d.count(), 800 - 1);
  EXPECT_LE(d.count(), 1200);
}

TEST(BackoffTest, JitterSpreadsWatchersThatFailedTogether) {
  // Many watchers reconnecting after one outage must not all come back at
  // the same millisecond.
  std::set<int64_t> firsts;
  for (uint64_t seed = 1; seed <= 20; ++seed)
    firsts.insert(Backoff(milliseconds(1000), milliseconds(60000), seed).Next().count());
  EXPECT_GT(firsts.size(), 10u);
}

TEST(BackoffTest, SameSeedSameDelays) {
  Backoff a(milliseconds(500), milliseconds(60000), 99);
  Backoff b(milliseconds(500), milliseconds(60000), 99);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(a.Next(), b.Next());
}

}  // namespace
}  // namespace mailhook::daemon
