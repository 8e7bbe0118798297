// The account watcher's connections and threads, driven by a scripted
// mailbox and a real store in a temporary directory: who watches a folder,
// who fetches, polling, backoff. (The rules of one folder's sync:
// folder_watcher_test.cc; NOTIFY and many folders against a real Dovecot:
// tests/integration/many_folders_few_connections_test.cc.)
#include "daemon/account_watcher.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "daemon_test_support.h"
#include "scripted_mailbox.h"
#include "store/open_store.h"
#include "store/store.h"

namespace mailhook::daemon {
namespace {

using std::chrono::milliseconds;
using store::Watermark;
using testing::FakeFolder;
using testing::TempDir;

config::Account AccountWith(std::vector<std::string> folders, std::vector<std::string> pinned = {}) {
  config::Account a;
  a.folders = std::move(folders);
  a.idle_pinned = std::move(pinned);
  return a;
}

TEST(PlanIdleWatchesTest, ConfigOrderFillsTheBudgetAndTheRestIsPolled) {
  using W = FolderWatch;
  EXPECT_EQ(PlanIdleWatches(AccountWith({"a", "b", "c", "d"}), 2),
            (std::vector<W>{W::kIdle, W::kIdle, W::kPoll, W::kPoll}));
  EXPECT_EQ(PlanIdleWatches(AccountWith({"a", "b"}), 9), (std::vector<W>{W::kIdle, W::kIdle}));
  EXPECT_EQ(PlanIdleWatches(AccountWith({"a", "b"}), 0), (std::vector<W>{W::kPoll, W::kPoll}));
}

TEST(PlanIdleWatchesTest, PinnedFoldersComeFirst) {
  using W = FolderWatch;
  EXPECT_EQ(PlanIdleWatches(AccountWith({"a", "b", "c", "d"}, {"d", "c"}), 2),
            (std::vector<W>{W::kPoll, W::kPoll, W::kIdle, W::kIdle}));
  EXPECT_EQ(PlanIdleWatches(AccountWith({"a", "b", "c"}, {"c"}), 2), (std::vector<W>{W::kIdle, W::kPoll, W::kIdle}));
}

class AccountWatcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config_.accounts[0].poll_interval = milliseconds(20);
    // IDLE reports activity once a test announced a message (Announce), else
    // waits as a quiet server would.
    folder_.OnIdle([this] {
      // As a quiet server: nothing until a test announces a message or stop
      // fires (a timeout, which also makes the watcher sync, only after 60 s).
      for (int i = 0; i < 6000; ++i) {
        if (announced_.exchange(false)) return imap::IdleWake::kActivity;
        if (stop_.WaitFor(milliseconds(10))) return imap::IdleWake::kStopped;
      }
      return imap::IdleWake::kTimeout;
    });
  }
  std::unique_ptr<AccountWatcher> Make() {
    return std::make_unique<AccountWatcher>(
        config_, config_.accounts[0], stop_, [this] { ++committed_; }, metrics_, stores_,
        WatcherSeams{folder_.Opener(), clock_ ? &*clock_ : nullptr});
  }
  std::unique_ptr<store::Store> Store() {
    auto s = store::OpenStore({.state_dir = dir_.path()});
    EXPECT_TRUE(s.ok());
    return s.ok() ? std::move(*s) : nullptr;
  }
  std::vector<uint32_t> EventUids() {
    auto rows = Store()->outbox().ListPending();
    std::vector<uint32_t> out;
    if (rows.ok()) {
      for (const auto& d : *rows) out.push_back(d.item.uid);
    }
    std::sort(out.begin(), out.end());
    return out;
  }
  /// Waits (10 s at most) until `done`, checking every few milliseconds.
  static bool WaitUntil(const std::function<bool()>& done) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!done()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(milliseconds(5));
    }
    return true;
  }
  int Count(const std::string& prefix) {
    const auto calls = folder_.calls();
    return static_cast<int>(
        std::count_if(calls.begin(), calls.end(), [&](const std::string& c) { return c.starts_with(prefix); }));
  }

  TempDir dir_;
  config::Config config_ = testing::OneAccountConfig(dir_.path());
  FakeFolder folder_;
  StopSignal stop_;
  std::optional<util::ManualClock> clock_;
  util::MetricsCatalog metrics_;
  StorePool stores_{store::SqliteStoreOpener(dir_.path()), 2};
  std::atomic<int> committed_{0};
  std::atomic<bool> announced_{false};  // the next IDLE reports activity
};

TEST_F(AccountWatcherTest, IdleNoticesAMessageAndTheWorkerConnectionFetchesIt) {
  auto w = Make();
  w->Start();
  ASSERT_TRUE(WaitUntil([&] { return w->folders()[0]->state() == WatchState::kIdling && Count("IDLE") > 0; }));
  EXPECT_EQ(w->watch(0), FolderWatch::kIdle);
  EXPECT_TRUE(w->folders()[0]->watched()) << "its IDLE connection is up";
  EXPECT_EQ(w->connections(), 2) << "one watches, one fetches";
  folder_.Add("new");
  announced_ = true;
  ASSERT_TRUE(WaitUntil([&] { return EventUids() == std::vector<uint32_t>{1}; }));
  EXPECT_GE(committed_.load(), 1) << "the dispatcher is woken after a commit";
  stop_.Fire();
  w->Join();
  EXPECT_EQ(w->folders()[0]->state(), WatchState::kStopped);
  EXPECT_EQ(w->connections(), 0) << "every connection is closed";
  EXPECT_EQ(folder_.opens(), 2);
}

TEST_F(AccountWatcherTest, AFolderThatHadNewMailIsLookedAtAgainWithoutANotification) {
  auto w = Make();
  w->Start();
  ASSERT_TRUE(WaitUntil([&] { return w->folders()[0]->state() == WatchState::kIdling && Count("IDLE") > 0; }));
  folder_.Add("first");
  announced_ = true;
  // The sync that fetched it ended with a search that found nothing more.
  ASSERT_TRUE(WaitUntil([&] { return EventUids() == std::vector<uint32_t>{1} && Count("SEARCH 2:*") > 0; }));
  // Its push is lost (a burst's tail, coalesced between two IDLEs): only the
  // recheck of a folder that just had mail can find it.
  folder_.Add("second");
  ASSERT_TRUE(WaitUntil([&] { return EventUids() == (std::vector<uint32_t>{1, 2}); }));
  stop_.Fire();
  w->Join();
}

TEST_F(AccountWatcherTest, TheWorkerSelectsAFolderOnceAndItsNextSyncsOnlySearch) {
  // A SELECT is the costliest command of a small sync on the server (issue
  // 8: Dovecot's CPU in a burst); the folder stays selected on the worker.
  auto w = Make();
  w->Start();
  ASSERT_TRUE(WaitUntil([&] { return w->folders()[0]->state() == WatchState::kIdling && Count("IDLE") > 0; }));
  ASSERT_EQ(Count("SELECT INBOX"), 2) << "the worker's first sync and the IDLE connection";
  for (uint32_t n = 1; n <= 3; ++n) {
    folder_.Add("m" + std::to_string(n));
    announced_ = true;
    ASSERT_TRUE(WaitUntil([&] { return EventUids().size() == n; }));
  }
  ASSERT_TRUE(WaitUntil([&] { return Count("SEARCH 4:*") > 0; })) << "a sync after the last message";
  stop_.Fire();
  w->Join();
  EXPECT_EQ(Count("SELECT INBOX"), 2) << "no SELECT while the folder is still selected";
  EXPECT_EQ(folder_.opens(), 2) << "one session each: no reconnect reset it";
}

TEST_F(AccountWatcherTest, AFolderRecreatedWhileSelectedIsSelectedAgain) {
  // A NOOP on the old selection does not show a new UIDVALIDITY: the folder
  // deleted and created again must be SELECTed, or its new UIDs (from 1
  // again) stay under the old watermark and are never delivered.
  folder_.SetCapabilities({});  // polled: STATUS sees the new UIDVALIDITY
  auto w = Make();
  w->Start();
  ASSERT_TRUE(WaitUntil([&] { return w->folders()[0]->state() == WatchState::kIdling; }));
  folder_.Add("before");
  ASSERT_TRUE(WaitUntil([&] { return EventUids() == std::vector<uint32_t>{1} && Count("SEARCH 2:*") > 0; }));
  const int selects = Count("SELECT INBOX");
  folder_.Recreate(99);
  folder_.Add("after");
  ASSERT_TRUE(WaitUntil([&] { return EventUids() == std::vector<uint32_t>{1, 1}; })) << "the recreated folder's mail";
  stop_.Fire();
  w->Join();
  EXPECT_GT(Count("SELECT INBOX"), selects);
}

TEST_F(AccountWatcherTest, EachResyncSelectsTheFolderAgain) {
  config_.accounts[0].idle_refresh = milliseconds(50);
  auto w = Make();
  w->Start();
  // The IDLE connection selects once; the worker at its first sync and again
  // at every idle_refresh resync.
  ASSERT_TRUE(WaitUntil([&] { return Count("SELECT INBOX") >= 5; }));
  stop_.Fire();
  w->Join();
  EXPECT_EQ(folder_.opens(), 2);
}

TEST_F(AccountWatcherTest, WithoutIdleTheFolderIsPolledWithStatusOnTheWorkerConnection) {
  folder_.SetCapabilities({});
  auto w = Make();
  w->Start();
  ASSERT_TRUE(WaitUntil([&] { return w->folders()[0]->state() == WatchState::kIdling; }));
  EXPECT_EQ(w->watch(0), FolderWatch::kPoll);
  folder_.Add("new");
  ASSERT_TRUE(WaitUntil([&] { return EventUids() == std::vector<uint32_t>{1}; }));
  stop_.Fire();
  w->Join();
  EXPECT_GT(Count("STATUS INBOX"), 0);
  EXPECT_EQ(Count("IDLE"), 0);
  EXPECT_EQ(folder_.opens(), 1) << "the worker alone";
  const std::string exposition = metrics_.Render();
  EXPECT_NE(exposition.find("mailhook_imap_folder_polled{account=\"acct\",folder=\"INBOX\"} 1"), std::string::npos)
      << exposition;
}

TEST_F(AccountWatcherTest, WakeRunsTheFoldersPostActionsWithoutANotification) {
  folder_.SetCapabilities({});
  config_.accounts[0].poll_interval = std::chrono::hours(1);  // only the wake can bring it
  config_.accounts[0].on_delivered.add_flags = {"$Sent"};
  ASSERT_TRUE(Store()->watermarks().Set("acct", "INBOX", Watermark{7, 0}).ok());
  folder_.Add("m");
  auto w = Make();
  w->Start();
  ASSERT_TRUE(WaitUntil([&] { return EventUids() == std::vector<uint32_t>{1}; }));
  {
    auto st = Store();
    auto rows = st->outbox().ClaimDue(store::Clock::now() + std::chrono::hours(1), 10);
    ASSERT_TRUE(rows.ok());
    for (const auto& d : *rows) ASSERT_TRUE(st->outbox().MarkDelivered(d.id).ok());
  }
  EXPECT_EQ(Count("STORE 1"), 0);
  w->Wake("INBOX");
  ASSERT_TRUE(WaitUntil([&] { return Count("STORE 1") == 1; }));
  stop_.Fire();
  w->Join();
}

TEST_F(AccountWatcherTest, RefusedConnectionsAreRetriedWithGrowingBackoff) {
  clock_.emplace();
  folder_.FailOpens(3);
  folder_.Add("m");
  auto w = Make();
  w->Start();
  ASSERT_TRUE(WaitUntil([&] { return w->folders()[0]->state() == WatchState::kIdling; }));
  stop_.Fire();
  w->Join();
  const auto waits = clock_->waits();
  ASSERT_GE(waits.size(), 3u);
  EXPECT_LT(waits[0], waits[1]);
  EXPECT_LT(waits[1], waits[2]);
  auto mark = Store()->watermarks().Get("acct", "INBOX");
  ASSERT_TRUE(mark.ok());
  EXPECT_EQ(*mark, (Watermark{7, 1}));
}

// Liveness (issue 9): a session a proxy black-holes is found by a round trip
// with a deadline, not after idle_refresh + timeout.

TEST_F(AccountWatcherTest, EveryConnectionMakesARoundTripEachLivenessInterval) {
  config_.accounts[0].liveness_interval = milliseconds(30);
  auto w = Make();
  w->Start();
  // The worker waits (nothing to fetch) and says NOOP; the IDLE connection's
  // waits end after 30 ms with DONE.
  ASSERT_TRUE(WaitUntil([&] { return Count("NOOP") >= 3 && Count("IDLE 30ms") > 0; }));
  stop_.Fire();
  w->Join();
  EXPECT_EQ(folder_.opens(), 2) << "answered round trips keep the sessions";
}

TEST_F(AccountWatcherTest, AWorkerWhoseNoopGoesUnansweredIsReplacedAndSyncsWhatCameMeanwhile) {
  clock_.emplace();  // no real backoff wait
  config_.accounts[0].liveness_interval = milliseconds(30);
  auto w = Make();
  w->Start();
  ASSERT_TRUE(WaitUntil([&] { return w->folders()[0]->state() == WatchState::kIdling && Count("NOOP") >= 1; }));
  // Its notification is lost (the IDLE session is black-holed too): only a
  // new worker session, which syncs every folder, can find it before the
  // next idle_refresh (25 minutes).
  folder_.Add("meanwhile");
  folder_.FailNoops(1);
  ASSERT_TRUE(WaitUntil([&] { return EventUids() == std::vector<uint32_t>{1}; }));
  EXPECT_EQ(folder_.opens(), 3) << "the worker's session was replaced, the IDLE one kept";
  stop_.Fire();
  w->Join();
}

TEST_F(AccountWatcherTest, AQuietLivenessRoundTripOnTheIdleConnectionDoesNotResyncTheFolder) {
  config_.accounts[0].liveness_interval = milliseconds(20);
  // Each IDLE ends without news, as a liveness round trip does.
  folder_.OnIdle(
      [this] { return stop_.WaitFor(milliseconds(2)) ? imap::IdleWake::kStopped : imap::IdleWake::kTimeout; });
  auto w = Make();
  w->Start();
  ASSERT_TRUE(WaitUntil([&] { return w->folders()[0]->state() == WatchState::kIdling && Count("IDLE") >= 20; }));
  const int selects = Count("SELECT");
  ASSERT_TRUE(WaitUntil([&] { return Count("IDLE") >= 80; }));
  // A sync per round trip would cost a SELECT and a SEARCH per folder per
  // minute; the folder is resynced at idle_refresh as before.
  EXPECT_EQ(Count("SELECT"), selects);
  stop_.Fire();
  w->Join();
}

TEST_F(AccountWatcherTest, LivenessOffWaitsAWholeIdleRefresh) {
  config_.accounts[0].liveness_interval = config::Duration(0);
  auto w = Make();
  w->Start();
  ASSERT_TRUE(WaitUntil([&] { return Count("IDLE") > 0; }));
  // The IDLE's own timeout shows liveness is off. (Counting NOOPs would not:
  // a resync of the still-selected folder starts with one, when the IDLE
  // connection's start marks the folder after the worker's first sync, which
  // depends on timing; and a liveness NOOP would come only after a minute.)
  EXPECT_EQ(Count("IDLE 1500000ms"), Count("IDLE")) << "idle_refresh (25m)";
  stop_.Fire();
  w->Join();
}

}  // namespace
}  // namespace mailhook::daemon
