// The folder watcher's syncs driven by a scripted mailbox and a real store in
// a temporary directory: baseline and commit rules end to end, without a
// server. (Connections, threads and backoff: account_watcher_test.cc.)
#include "daemon/folder_watcher.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>

#include "daemon_test_support.h"
#include "imap/session.h"
#include "scripted_mailbox.h"
#include "store/store.h"

namespace mailhook::daemon {
namespace {

using store::Watermark;
using testing::FakeFolder;
using testing::TempDir;

class FolderWatcherTest : public ::testing::Test {
 protected:
  /// Syncs the folder `syncs` times, each on a new scripted session;
  /// `between` runs after each but the last (e.g. to append a message). A
  /// sync that fails is retried on a new session (at most 10 times), as the
  /// account watcher would after its backoff.
  void SyncTimes(int syncs = 1, std::function<void(int)> between = {}) {
    FolderWatcher w(
        config_, config_.accounts[0], "INBOX", stop_, [this] { ++committed_; }, metrics_);
    auto store = Store();
    for (int n = 1; n <= syncs; ++n) {
      util::Status s = util::Error("test.not_run", util::RetryClass::kBackoff, "not run");
      for (int tries = 0; tries < 10 && !s.ok(); ++tries) {
        auto box = folder_.Opener()(imap::SessionOptions{});
        ASSERT_TRUE(box.ok());
        s = w.Sync(**box, *store);
        ++syncs_run_;
      }
      ASSERT_TRUE(s.ok()) << s.error().message();
      EXPECT_EQ(w.state(), WatchState::kIdling);
      if (n < syncs && between) between(n);
    }
  }
  std::unique_ptr<store::Store> Store() {
    auto s = store::Store::Open(dir_.path());
    EXPECT_TRUE(s.ok());
    return s.ok() ? std::move(*s) : nullptr;
  }
  /// UIDs with an outbox row, ascending.
  std::vector<uint32_t> EventUids() {
    auto rows = Store()->outbox().ListPending();
    EXPECT_TRUE(rows.ok());
    std::vector<uint32_t> out;
    for (const auto& d : *rows) out.push_back(d.item.uid);
    std::sort(out.begin(), out.end());
    return out;
  }
  std::string PayloadOf(uint32_t uid) {
    auto rows = Store()->outbox().ListPending();
    for (const auto& d : *rows) {
      if (d.item.uid == uid) return d.item.payload;
    }
    return "";
  }
  std::optional<Watermark> StoredMark() { return *Store()->watermarks().Get("acct", "INBOX"); }
  void SetStartFrom(config::StartFrom f) { config_.accounts[0].start_from = f; }

  TempDir dir_;
  config::Config config_ = testing::OneAccountConfig(dir_.path());
  FakeFolder folder_;
  StopSignal stop_;
  util::MetricsCatalog metrics_;  // this test's own
  std::atomic<int> committed_{0};
  int syncs_run_ = 0;
};

TEST_F(FolderWatcherTest, FirstStartFromNewSkipsWhatIsThereAndSendsWhatComes) {
  folder_.Add("old 1");
  folder_.Add("old 2");
  SyncTimes(2, [&](int) { folder_.Add("new"); });
  EXPECT_EQ(EventUids(), (std::vector<uint32_t>{3}));
  EXPECT_EQ(StoredMark(), (Watermark{7, 3}));
  EXPECT_NE(PayloadOf(3).find("\"subject\":\"new\""), std::string::npos) << PayloadOf(3);
  EXPECT_GE(committed_.load(), 1) << "the dispatcher is woken after a commit";
}

TEST_F(FolderWatcherTest, FirstStartFromAllSendsEveryMessage) {
  SetStartFrom(config::StartFrom::kAll);
  for (int i = 0; i < 30; ++i) folder_.Add("m" + std::to_string(i));  // more than one fetch batch
  SyncTimes();
  EXPECT_EQ(EventUids().size(), 30u);
  EXPECT_EQ(StoredMark(), (Watermark{7, 30}));
}

TEST_F(FolderWatcherTest, FirstStartFromUnseenSendsTheUnseenThenWhatComes) {
  SetStartFrom(config::StartFrom::kUnseen);
  folder_.Add("read", "x", true);
  folder_.Add("unread 2");
  folder_.Add("read", "x", true);
  folder_.Add("unread 4");
  folder_.Add("read", "x", true);
  SyncTimes(2, [&](int) { folder_.Add("new 6", "x", true); });  // new: sent though seen
  EXPECT_EQ(EventUids(), (std::vector<uint32_t>{2, 4, 6}));
  EXPECT_EQ(StoredMark(), (Watermark{7, 6}));
}

TEST_F(FolderWatcherTest, StoredWatermarkIsResumed) {
  for (int i = 0; i < 5; ++i) folder_.Add("m");
  ASSERT_TRUE(Store()->watermarks().Set("acct", "INBOX", Watermark{7, 3}).ok());
  SetStartFrom(config::StartFrom::kAll);  // does not matter once a mark is stored
  SyncTimes();
  EXPECT_EQ(EventUids(), (std::vector<uint32_t>{4, 5}));
  EXPECT_EQ(StoredMark(), (Watermark{7, 5}));
}

TEST_F(FolderWatcherTest, ChangedUidValidityReBaselinesInsteadOfReplaying) {
  for (int i = 0; i < 5; ++i) folder_.Add("m");
  ASSERT_TRUE(Store()->watermarks().Set("acct", "INBOX", Watermark{6, 2}).ok());
  SyncTimes();
  EXPECT_TRUE(EventUids().empty());
  EXPECT_EQ(StoredMark(), (Watermark{7, 5}));
}

TEST_F(FolderWatcherTest, WithoutUidNextTheBaselineIsTheHighestUid) {
  folder_.HideUidNext();
  folder_.Add("m");
  folder_.Add("m");
  SyncTimes();
  const auto calls = folder_.calls();
  EXPECT_NE(std::find(calls.begin(), calls.end(), "SEARCH 1:*"), calls.end());
  EXPECT_EQ(StoredMark(), (Watermark{7, 2}));
  EXPECT_TRUE(EventUids().empty());
}

TEST_F(FolderWatcherTest, MessagesThatArriveDuringAFetchAreSentInTheSameSync) {
  SetStartFrom(config::StartFrom::kAll);
  folder_.Add("first");
  bool added = false;
  folder_.OnFetchMeta([&](const std::vector<uint32_t>&) {
    if (!added) folder_.Add("during the fetch");
    added = true;
  });
  SyncTimes();  // one sync: both must be in by its end
  EXPECT_EQ(EventUids(), (std::vector<uint32_t>{1, 2}));
}

TEST_F(FolderWatcherTest, AVanishedMessageIsSkippedAndTheMarkPassesIt) {
  SetStartFrom(config::StartFrom::kAll);
  folder_.Add("a");
  folder_.Add("b");
  folder_.Add("c");
  folder_.VanishAfterMeta(2);  // expunged between the meta fetch and its body
  SyncTimes();
  EXPECT_EQ(EventUids(), (std::vector<uint32_t>{1, 3}));
  EXPECT_EQ(StoredMark(), (Watermark{7, 3}));
  auto attempts = Store()->attempts().List("acct", "INBOX", 7);
  ASSERT_TRUE(attempts.ok());
  EXPECT_TRUE(attempts->empty()) << "nothing is left to retry";
  EXPECT_EQ(folder_.opens(), 1) << "a vanished message does not break the session";
}

TEST_F(FolderWatcherTest, APoisonMessageBecomesUnprocessableAfterMaxAttempts) {
  SetStartFrom(config::StartFrom::kAll);
  config_.accounts[0].limits.max_attempts = 3;
  folder_.Add("good 1");
  folder_.Add("poison");
  folder_.Add("good 3");
  folder_.Poison(2);
  SyncTimes();
  EXPECT_EQ(EventUids(), (std::vector<uint32_t>{1, 2, 3}));
  EXPECT_NE(PayloadOf(2).find("message.unprocessable"), std::string::npos) << PayloadOf(2);
  EXPECT_EQ(PayloadOf(1).find("message.unprocessable"), std::string::npos);
  EXPECT_EQ(StoredMark(), (Watermark{7, 3}));
  const std::string exposition = metrics_.Render();
  EXPECT_NE(exposition.find("mailhook_messages_unprocessable_total{account=\"acct\",folder=\"INBOX\"} 1"),
            std::string::npos)
      << exposition;
  EXPECT_NE(exposition.find("mailhook_message_failures_total{account=\"acct\",folder=\"INBOX\"} 3"), std::string::npos);
  // Three attempts (in the batch, then twice alone), a session each; the
  // fourth session sends it as unprocessable without reading it again.
  const auto calls = folder_.calls();
  EXPECT_EQ(std::count(calls.begin(), calls.end(), "FETCH BODY 2 [1]"), 3);
  EXPECT_EQ(syncs_run_, 4);
}

TEST_F(FolderWatcherTest, EverySyncSearchesFromTheWatermarkUntilNothingIsNew) {
  folder_.Add("m");
  // No notification is trusted alone: a message that arrived unannounced is
  // found by the next sync (the account watcher resyncs every idle_refresh).
  SyncTimes(3, [&](int n) {
    if (n == 2) folder_.Add("unannounced");
  });
  std::vector<std::string> searches;
  for (const std::string& c : folder_.calls()) {
    if (c.starts_with("SEARCH")) searches.push_back(c);
  }
  // After the unannounced message, one more search finds nothing new.
  const std::vector<std::string> want{"SEARCH 2:*", "SEARCH 2:*", "SEARCH 2:*", "SEARCH 3:*"};
  EXPECT_EQ(searches, want);
  EXPECT_EQ(EventUids(), (std::vector<uint32_t>{2}));
}

TEST_F(FolderWatcherTest, PostActionsRunOnlyAfterEveryTargetReceivedTheEvent) {
  config_.accounts[0].on_delivered.mark_seen = true;
  config_.accounts[0].on_delivered.add_flags = {"$Sent"};
  auto delivered = [&] {
    auto st = Store();
    auto rows = st->outbox().ClaimDue(store::Clock::now() + std::chrono::hours(1), 10);
    ASSERT_TRUE(rows.ok());
    for (const auto& d : *rows) ASSERT_TRUE(st->outbox().MarkDelivered(d.id).ok());
  };
  auto stores = [&] {
    const auto calls = folder_.calls();
    return std::count(calls.begin(), calls.end(), "STORE 1");
  };
  long stores_before_delivery = -1;
  // Sync 1: baseline. Sync 2: the new message's event is committed, not
  // delivered. Sync 3 (the dispatcher's wake): delivered, flags added once.
  SyncTimes(3, [&](int n) {
    if (n == 1) folder_.Add("new");
    if (n == 2) {
      stores_before_delivery = stores();
      delivered();
    }
  });
  EXPECT_EQ(EventUids(), std::vector<uint32_t>{}) << "delivered rows leave the outbox";
  EXPECT_EQ(stores_before_delivery, 0) << "no flag before the delivery";
  EXPECT_EQ(stores(), 1) << "flags added once, after it";
  auto pending = Store()->post_actions().Count();
  ASSERT_TRUE(pending.ok());
  EXPECT_EQ(*pending, 0);
}

}  // namespace
}  // namespace mailhook::daemon
