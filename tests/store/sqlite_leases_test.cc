// The SQLite outbox's leases are held in the process (store/sqlite_leases.h):
// shared by every store of the process on one file, ended by a release
// through any of them, and gone with the process or the last store.
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "store/open_store.h"
#include "store/store.h"
#include "temp_dir.h"

namespace mailhook::store {
namespace {

using namespace std::chrono_literals;
using testsupport::TempDir;

OutboxItem LeaseItem(uint32_t uid) {
  OutboxItem item;
  item.event_id = "evt_" + std::to_string(uid);
  item.target = "webhook:tickets";
  item.account = "support";
  item.folder = "INBOX";
  item.uidvalidity = 7;
  item.uid = uid;
  item.payload = R"({"uid":)" + std::to_string(uid) + "}";
  return item;
}

std::unique_ptr<Store> OpenSpec(const StoreSpec& spec) {
  auto s = OpenStore(spec);
  if (!s.ok()) ADD_FAILURE() << s.error().ToString();
  return s.ok() ? std::move(s).value() : nullptr;
}

std::unique_ptr<Store> OpenDir(const std::string& dir) { return OpenSpec({.state_dir = dir}); }

// The event ids of what a claim took.
std::vector<std::string> Claimed(Store& store, TimePoint now, int limit = 10) {
  auto rows = store.outbox().ClaimDue(now, limit);
  std::vector<std::string> out;
  if (!rows.ok()) {
    ADD_FAILURE() << rows.error().ToString();
    return out;
  }
  for (const auto& row : *rows) out.push_back(row.item.event_id);
  return out;
}

int64_t MsBetween(TimePoint a, TimePoint b) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(b - a).count();
}

using Ids = std::vector<std::string>;

TEST(SqliteLeasesTest, ARowClaimedThroughOneStoreIsHeldFromEveryOtherOnTheFile) {
  TempDir dir;
  auto a = OpenDir(dir.path());
  auto b = OpenDir(dir.path());
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(a->CommitMessages("support", "INBOX", Watermark{7, 2}, {LeaseItem(1), LeaseItem(2)}).ok());
  const TimePoint now = Clock::now();
  EXPECT_EQ(Claimed(*a, now, 1), Ids{"evt_1"});
  EXPECT_EQ(Claimed(*b, now), Ids{"evt_2"}) << "b claimed a row a holds";
  EXPECT_TRUE(Claimed(*a, now).empty());
  // Nothing is claimable until the first lease ends (15 minutes), and b
  // knows it: a sleeping worker must not wake for a row another holds.
  auto next = b->outbox().NextDueAt();
  ASSERT_TRUE(next.ok() && next->has_value());
  EXPECT_EQ(MsBetween(now + 15min, **next), 0);
  // Ended leases free their rows, for either store.
  EXPECT_EQ(Claimed(*b, now + 16min), (Ids{"evt_1", "evt_2"}));
}

TEST(SqliteLeasesTest, StoresOpenedByAnotherPathOfTheSameFileShareTheLeases) {
  TempDir dir;
  const std::string state = dir / "state";
  auto a = OpenDir(state);
  ASSERT_TRUE(a);
  std::filesystem::create_directory_symlink(state, dir / "link");
  auto by_link = OpenDir(dir / "link");
  auto by_url = OpenSpec({.url = "sqlite:" + state + "/mailhook.db"});
  ASSERT_TRUE(by_link && by_url);
  ASSERT_TRUE(a->CommitMessages("support", "INBOX", Watermark{7, 3}, {LeaseItem(1), LeaseItem(2), LeaseItem(3)}).ok());
  const TimePoint now = Clock::now();
  EXPECT_EQ(Claimed(*a, now, 1), Ids{"evt_1"});
  EXPECT_EQ(Claimed(*by_link, now, 1), Ids{"evt_2"});
  EXPECT_EQ(Claimed(*by_url, now), Ids{"evt_3"});
}

TEST(SqliteLeasesTest, AReleaseOrARetryThroughAnotherStoreEndsTheLease) {
  TempDir dir;
  auto a = OpenDir(dir.path());
  auto b = OpenDir(dir.path());
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(a->CommitMessages("support", "INBOX", Watermark{7, 2}, {LeaseItem(1), LeaseItem(2)}).ok());
  const TimePoint now = Clock::now();
  auto rows = a->outbox().ClaimDue(now, 2);
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 2u);
  ASSERT_TRUE(b->outbox().ReleaseLease((*rows)[0].id).ok());
  ASSERT_TRUE(b->outbox().ScheduleRetry((*rows)[1].id, 1, now, "HTTP 503").ok());
  EXPECT_EQ(Claimed(*a, now), (Ids{"evt_1", "evt_2"}));
  // Marked delivered through b: gone, and its lease with it.
  ASSERT_TRUE(b->outbox().MarkDelivered(std::vector<int64_t>{(*rows)[0].id, (*rows)[1].id}).ok());
  EXPECT_EQ(*a->outbox().PendingCount(), 0);
  EXPECT_FALSE(a->outbox().NextDueAt()->has_value());
}

TEST(SqliteLeasesTest, ALeaseOutlivesItsStoreWhileTheFileIsOpenAndEndsWithTheLastStore) {
  TempDir dir;
  auto keeper = OpenDir(dir.path());
  ASSERT_TRUE(keeper);
  ASSERT_TRUE(keeper->CommitMessages("support", "INBOX", Watermark{7, 1}, {LeaseItem(1)}).ok());
  const TimePoint now = Clock::now();
  {
    auto claimer = OpenDir(dir.path());
    ASSERT_TRUE(claimer);
    EXPECT_EQ(Claimed(*claimer, now), Ids{"evt_1"});
  }
  // As a lease in the file would: held until it ends.
  EXPECT_TRUE(Claimed(*keeper, now).empty()) << "a closed store's lease ended before its time";
  // No store of this process on the file: nobody can deliver what was held
  // (a restart). No ReleaseAllLeases needed.
  keeper.reset();
  auto reopened = OpenDir(dir.path());
  ASSERT_TRUE(reopened);
  EXPECT_EQ(Claimed(*reopened, now), Ids{"evt_1"});
}

TEST(SqliteLeasesTest, ARowClaimedByAProcessThatDiedIsClaimableAtOnce) {
  TempDir dir;
  {
    auto setup = OpenDir(dir.path());
    ASSERT_TRUE(setup);
    ASSERT_TRUE(setup->CommitMessages("support", "INBOX", Watermark{7, 1}, {LeaseItem(1)}).ok());
  }
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    // Claims with a lease of an hour, then dies before marking it.
    auto s = OpenStore({.state_dir = dir.path()});
    if (!s.ok()) _exit(3);
    auto rows = (*s)->outbox().ClaimDue(Clock::now(), 1, std::chrono::hours(1));
    if (!rows.ok() || rows->size() != 1) _exit(4);
    raise(SIGKILL);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "the child did not claim: " << status;
  auto store = OpenDir(dir.path());
  ASSERT_TRUE(store);
  EXPECT_EQ(Claimed(*store, Clock::now()), Ids{"evt_1"}) << "the dead claimer's lease still holds the row";
}

}  // namespace
}  // namespace mailhook::store
