// When the account worker looks again at a folder that just had mail
// (daemon/recheck_schedule.h): pure, time passed in.
#include "daemon/recheck_schedule.h"

#include <gtest/gtest.h>

namespace mailhook::daemon {
namespace {

using std::chrono::milliseconds;
using T = RecheckSchedule::TimePoint;

const T kT0{};

TEST(RecheckScheduleTest, ASyncThatFoundMailIsRecheckedAfterTheFirstDelay) {
  RecheckSchedule r;
  EXPECT_FALSE(r.due());
  r.SyncDone(true, kT0);
  ASSERT_TRUE(r.due());
  EXPECT_EQ(*r.due(), kT0 + RecheckSchedule::kFirst);
  EXPECT_FALSE(r.TakeDue(kT0 + RecheckSchedule::kFirst - milliseconds(1)));
  EXPECT_TRUE(r.TakeDue(kT0 + RecheckSchedule::kFirst));
  EXPECT_FALSE(r.due()) << "taken once";
}

TEST(RecheckScheduleTest, RechecksThatFindNothingDoubleUpToTheLastDelayThenStop) {
  RecheckSchedule r;
  T now = kT0;
  r.SyncDone(true, now);
  milliseconds expected = RecheckSchedule::kFirst;
  int rechecks = 0;
  while (r.due()) {
    EXPECT_EQ(r.delay(), expected);
    now = *r.due();
    ASSERT_TRUE(r.TakeDue(now));
    r.SyncDone(false, now);
    expected *= 2;
    ++rechecks;
  }
  EXPECT_EQ(rechecks, 6) << "150, 300, 600, 1200, 2400, 4800 ms; 9600 is past kLast";
}

TEST(RecheckScheduleTest, ANotifiedSyncThatFindsNothingLeavesThePendingRecheckAsItIs) {
  // A burst: the sync a push started finds nothing (the previous catch-up
  // already fetched what the push was about). The next look must still come
  // kFirst after the sync that found mail, not twice that.
  RecheckSchedule r;
  r.SyncDone(true, kT0);
  r.SyncDone(false, kT0 + milliseconds(20));  // notified, not a recheck
  ASSERT_TRUE(r.due());
  EXPECT_EQ(*r.due(), kT0 + RecheckSchedule::kFirst);
  EXPECT_EQ(r.delay(), RecheckSchedule::kFirst);
}

TEST(RecheckScheduleTest, ANotifiedSyncWithoutAPendingRecheckStartsNoChain) {
  RecheckSchedule r;
  r.SyncDone(false, kT0);
  EXPECT_FALSE(r.due());
  EXPECT_EQ(r.delay(), milliseconds(0));
}

TEST(RecheckScheduleTest, MailFoundByARecheckStartsOverAtTheFirstDelay) {
  RecheckSchedule r;
  r.SyncDone(true, kT0);
  ASSERT_TRUE(r.TakeDue(*r.due()));
  r.SyncDone(false, kT0 + milliseconds(150));  // → 300 ms
  ASSERT_TRUE(r.TakeDue(*r.due()));
  r.SyncDone(true, kT0 + milliseconds(450));
  ASSERT_TRUE(r.due());
  EXPECT_EQ(*r.due(), kT0 + milliseconds(450) + RecheckSchedule::kFirst);
}

}  // namespace
}  // namespace mailhook::daemon
