#include "daemon/baseline_planner.h"

#include <gtest/gtest.h>

namespace mailhook::daemon {
namespace {

using config::StartFrom;
using store::Watermark;

ServerStatus Server(uint32_t uidvalidity, uint32_t uidnext, std::vector<uint32_t> unseen = {}) {
  ServerStatus s;
  s.uidvalidity = uidvalidity;
  s.uidnext = uidnext;
  s.unseen = std::move(unseen);
  return s;
}

TEST(BaselinePlannerTest, StoredWatermarkOfTheSameUidValidityIsResumed) {
  for (StartFrom from : {StartFrom::kNew, StartFrom::kAll, StartFrom::kUnseen}) {
    StartPlan p = PlanStart(Watermark{7, 40}, Server(7, 100, {3, 50}), from);
    EXPECT_EQ(p.kind, StartKind::kResume);
    EXPECT_EQ(p.mark, (Watermark{7, 40}));
    EXPECT_TRUE(p.first_pass.empty());
    EXPECT_FALSE(p.store_mark_now);
  }
  EXPECT_FALSE(NeedsUnseen(StartKind::kResume, StartFrom::kUnseen));
  EXPECT_FALSE(NeedsHighestUid(StartKind::kResume, 0));
}

TEST(BaselinePlannerTest, FirstStartFromNewBeginsAfterTheCurrentEnd) {
  StartPlan p = PlanStart(std::nullopt, Server(7, 100), StartFrom::kNew);
  EXPECT_EQ(p.kind, StartKind::kFirstStart);
  EXPECT_EQ(p.mark, (Watermark{7, 99}));
  EXPECT_TRUE(p.store_mark_now);
  EXPECT_TRUE(p.first_pass.empty());
  EXPECT_FALSE(NeedsUnseen(p.kind, StartFrom::kNew));
}

TEST(BaselinePlannerTest, FirstStartFromAllBeginsAtZero) {
  StartPlan p = PlanStart(std::nullopt, Server(7, 100), StartFrom::kAll);
  EXPECT_EQ(p.mark, (Watermark{7, 0}));
  EXPECT_TRUE(p.store_mark_now);
  EXPECT_TRUE(p.first_pass.empty());
}

TEST(BaselinePlannerTest, FirstStartFromUnseenPassesTheUnseenUpToTheEndFirst) {
  // 120 is above the end SELECT saw: it is new and comes with the catch-up.
  StartPlan p = PlanStart(std::nullopt, Server(7, 100, {3, 50, 99, 120}), StartFrom::kUnseen);
  EXPECT_TRUE(NeedsUnseen(p.kind, StartFrom::kUnseen));
  EXPECT_EQ(p.first_pass, (std::vector<uint32_t>{3, 50, 99}));
  EXPECT_EQ(p.first_pass_end, 99u);
  // The watermark stays unset (0) until the pass is committed whole.
  EXPECT_EQ(p.mark, (Watermark{7, 0}));
  EXPECT_FALSE(p.store_mark_now);
}

TEST(BaselinePlannerTest, FirstStartFromUnseenWithNothingUnseenStoresTheEnd) {
  StartPlan p = PlanStart(std::nullopt, Server(7, 100, {}), StartFrom::kUnseen);
  EXPECT_TRUE(p.first_pass.empty());
  EXPECT_EQ(p.mark, (Watermark{7, 99}));
  EXPECT_TRUE(p.store_mark_now);
}

TEST(BaselinePlannerTest, ChangedUidValidityBaselinesLikeAFirstStart) {
  StartPlan p = PlanStart(Watermark{6, 5000}, Server(8, 12), StartFrom::kNew);
  EXPECT_EQ(p.kind, StartKind::kUidValidityChanged);
  // Not 5000: every old UID is void, and replaying the folder would flood.
  EXPECT_EQ(p.mark, (Watermark{8, 11}));
  EXPECT_TRUE(p.store_mark_now);
  EXPECT_TRUE(NeedsUnseen(StartKind::kUidValidityChanged, StartFrom::kUnseen));
}

TEST(BaselinePlannerTest, WithoutUidNextTheHighestUidIsTheEnd) {
  EXPECT_TRUE(NeedsHighestUid(StartKind::kFirstStart, 0));
  EXPECT_FALSE(NeedsHighestUid(StartKind::kFirstStart, 100));
  ServerStatus s = Server(7, 0);
  s.highest_uid = 42;
  EXPECT_EQ(PlanStart(std::nullopt, s, StartFrom::kNew).mark, (Watermark{7, 42}));
  // An empty folder without UIDNEXT: every message to come is new.
  EXPECT_EQ(PlanStart(std::nullopt, Server(7, 0), StartFrom::kNew).mark, (Watermark{7, 0}));
}

TEST(BaselinePlannerTest, EmptyFolderStartsAtZero) {
  StartPlan p = PlanStart(std::nullopt, Server(7, 1), StartFrom::kNew);
  EXPECT_EQ(p.mark, (Watermark{7, 0}));
}

TEST(BaselinePlannerTest, StartFromNamesForLogs) {
  EXPECT_STREQ(StartFromName(StartFrom::kNew), "new");
  EXPECT_STREQ(StartFromName(StartFrom::kAll), "all");
  EXPECT_STREQ(StartFromName(StartFrom::kUnseen), "unseen");
}

}  // namespace
}  // namespace mailhook::daemon
