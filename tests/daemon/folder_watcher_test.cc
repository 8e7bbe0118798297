// The folder watcher's syncs driven by a scripted mailbox and a real store in
// a temporary directory: baseline and commit rules end to end, without a
// server. (Connections, threads and backoff: account_watcher_test.cc.)
#include "daemon/folder_watcher.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <iostream>
#include <optional>

#include <nlohmann/json.hpp>

#include "daemon_test_support.h"
#include "imap/session.h"
#include "mime/decode.h"
#include "scripted_mailbox.h"
#include "store/open_store.h"
#include "store/store.h"

namespace mailhook::daemon {
namespace {

using store::Watermark;
using testing::FakeFolder;
using testing::TempDir;

/// Sets an environment variable for one test (the watcher reads its test
/// knobs when it is built).
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) { setenv(name, value, 1); }
  ~ScopedEnv() { unsetenv(name_); }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
};

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
    auto s = store::OpenStore({.state_dir = dir_.path()});
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

/// A scripted session that runs `on_select` as SELECT is sent.
class SelectProbe : public testing::ScriptedMailbox {
 public:
  SelectProbe(FakeFolder& folder, std::function<void()> on_select)
      : ScriptedMailbox(folder), on_select_(std::move(on_select)) {}
  util::Result<imap::MailboxInfo> Select(const std::string& folder) override {
    on_select_();
    return ScriptedMailbox::Select(folder);
  }

 private:
  std::function<void()> on_select_;
};

TEST_F(FolderWatcherTest, AFolderIsNotCatchingUpBeforeItsSelectAnswered) {
  // /readyz counts catching_up as ready: a message appended once it says so
  // must not fall under a start_from: new baseline (bench/burst's warm-up
  // message was lost that way under load).
  FolderWatcher w(
      config_, config_.accounts[0], "INBOX", stop_, [] {}, metrics_);
  WatchState at_select = WatchState::kIdling;
  SelectProbe box(folder_, [&] { at_select = w.state(); });
  auto store = Store();
  ASSERT_TRUE(w.Sync(box, *store).ok());
  EXPECT_EQ(at_select, WatchState::kStarting);
  EXPECT_EQ(w.state(), WatchState::kIdling);
}

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

// Issue 9 item 5: a recreated folder (new UIDVALIDITY) is matched to the
// messages handled before; only the others become events.
namespace uidvalidity {

std::string Header(const std::string& subject, const std::string& message_id) {
  std::string h = "From: Alice <alice@example.com>\r\nSubject: " + subject + "\r\n";
  if (!message_id.empty()) h += "Message-ID: " + message_id + "\r\n";
  return h + "\r\n";
}

}  // namespace uidvalidity

TEST_F(FolderWatcherTest, ChangedUidValidityMatchesWhatWasHandledAndSendsOnlyTheRest) {
  using uidvalidity::Header;
  SetStartFrom(config::StartFrom::kAll);
  folder_.AddRaw(Header("a", "<a@x>"), "body a");
  folder_.AddRaw(Header("b", "<b@x>"), "body b");
  folder_.AddRaw(Header("no id", ""), "body c");
  folder_.AddRaw(Header("same id", "<same@x>"), "short");
  SyncTimes(2, [&](int) {
    ASSERT_EQ(EventUids(), (std::vector<uint32_t>{1, 2, 3, 4}));
    // Recreated with the handled ones in another order, mixed with new ones:
    // another message with <same@x> but another size, and one without a
    // Message-ID whose header differs from the handled one's.
    folder_.Recreate(8);
    folder_.AddRaw(Header("b", "<b@x>"), "body b");                  // 1: handled
    folder_.AddRaw(Header("new e", "<e@x>"), "body e");              // 2: new
    folder_.AddRaw(Header("no id", ""), "body c");                   // 3: handled (header hash)
    folder_.AddRaw(Header("same id", "<same@x>"), "a longer body");  // 4: new (size)
    folder_.AddRaw(Header("a", "<a@x>"), "body a");                  // 5: handled
    folder_.AddRaw(Header("no id, other", ""), "body c");            // 6: new (header hash)
    folder_.AddRaw(Header("same id", "<same@x>"), "short");          // 7: handled
  });
  auto rows = Store()->outbox().ListPending();
  ASSERT_TRUE(rows.ok());
  std::vector<uint32_t> under_new;
  for (const auto& d : *rows) {
    if (d.item.uidvalidity == 8) under_new.push_back(d.item.uid);
  }
  std::sort(under_new.begin(), under_new.end());
  EXPECT_EQ(under_new, (std::vector<uint32_t>{2, 4, 6}));
  EXPECT_EQ(rows->size(), 4u + 3u);
  EXPECT_EQ(StoredMark(), (Watermark{8, 7}));
  // The matching asked for Message-IDs in one window, and whole headers only
  // for the two without one.
  const auto calls = folder_.calls();
  EXPECT_NE(std::find(calls.begin(), calls.end(), "FETCH MATCH 1,2,3,4,5,6,7"), calls.end());
  EXPECT_NE(std::find(calls.begin(), calls.end(), "FETCH LIGHT 3,6"), calls.end());
  // Every message of the new folder has its fingerprint under 8 now, and
  // none is left under 7.
  EXPECT_EQ(Store()->fingerprints().List("acct", "INBOX", 8)->size(), 7u);
  EXPECT_EQ(Store()->fingerprints().List("acct", "INBOX", 7)->size(), 0u);
}

TEST_F(FolderWatcherTest, ARecreatedFolderFilledWhileWatchedSendsOnlyTheNewOnes) {
  using uidvalidity::Header;
  SetStartFrom(config::StartFrom::kAll);
  folder_.AddRaw(Header("a", "<a@x>"), "body a");
  folder_.AddRaw(Header("no id", ""), "body c");
  SyncTimes(3, [&](int n) {
    if (n == 1) folder_.Recreate(8);  // seen empty by sync 2
    if (n == 2) {
      folder_.AddRaw(Header("new", "<n@x>"), "body n");
      folder_.AddRaw(Header("no id", ""), "body c");
      folder_.AddRaw(Header("a", "<a@x>"), "body a");
    }
  });
  auto rows = Store()->outbox().ListPending();
  ASSERT_TRUE(rows.ok());
  std::vector<std::pair<uint32_t, uint32_t>> events;
  for (const auto& d : *rows) events.emplace_back(d.item.uidvalidity, d.item.uid);
  std::sort(events.begin(), events.end());
  EXPECT_EQ(events, (std::vector<std::pair<uint32_t, uint32_t>>{{7, 1}, {7, 2}, {8, 1}}));
  EXPECT_EQ(StoredMark(), (Watermark{8, 3}));
}

TEST_F(FolderWatcherTest, AMatchFetchTooLargeAsksForLessAndGivesUpOnlyOnOneMessage) {
  using uidvalidity::Header;
  SetStartFrom(config::StartFrom::kAll);
  for (int i = 1; i <= 7; ++i) folder_.AddRaw(Header("m", "<m" + std::to_string(i) + "@x>"), "body");
  SyncTimes(2, [&](int) {
    // The same seven recreated; answers for more than 2 UIDs, or any with
    // UID 5, are over the budget (a hostile Message-ID field).
    folder_.Recreate(8);
    for (int i = 1; i <= 7; ++i) folder_.AddRaw(Header("m", "<m" + std::to_string(i) + "@x>"), "body");
    folder_.TooLargeMatchFetch(2, {5});
  });
  // 250 -> 3 (7 asked) -> 1 (3 asked) -> 5 alone is matched to nothing: a
  // session each, then the sync goes through.
  std::vector<std::string> matches;
  for (const std::string& c : folder_.calls()) {
    if (c.starts_with("FETCH MATCH")) matches.push_back(c);
  }
  EXPECT_EQ(matches.front(), "FETCH MATCH 1,2,3,4,5,6,7");
  EXPECT_EQ(matches.back(), "FETCH MATCH 7");
  EXPECT_EQ(syncs_run_, 1 + 4);
  auto rows = Store()->outbox().ListPending();
  ASSERT_TRUE(rows.ok());
  std::vector<uint32_t> under_new;
  for (const auto& d : *rows) {
    if (d.item.uidvalidity == 8) under_new.push_back(d.item.uid);
  }
  // UID 5 was left to the first pass, whose meta fetch (its whole header)
  // could read it and matched it there: nothing is sent again.
  const auto calls = folder_.calls();
  EXPECT_NE(std::find(calls.begin(), calls.end(), "FETCH META 5"), calls.end());
  EXPECT_TRUE(under_new.empty());
  EXPECT_EQ(StoredMark(), (Watermark{8, 7}));
}

TEST_F(FolderWatcherTest, AStateWithoutFingerprintsIsCoveredOnItsFirstSync) {
  for (int i = 0; i < 5; ++i) folder_.Add("m");
  // As an older version left it: a watermark, no fingerprints.
  ASSERT_TRUE(Store()->watermarks().Set("acct", "INBOX", Watermark{7, 3}).ok());
  SyncTimes();
  EXPECT_EQ(EventUids(), (std::vector<uint32_t>{4, 5}));
  EXPECT_EQ(*Store()->watermarks().FingerprintFloor("acct", "INBOX"), 0u);
  EXPECT_EQ(Store()->fingerprints().List("acct", "INBOX", 7)->size(), 5u);
  // So a change now is matched: the same messages under new UIDs send nothing.
  folder_.SetUidValidity(9);
  SyncTimes();
  EXPECT_EQ(EventUids(), (std::vector<uint32_t>{4, 5}));
  EXPECT_EQ(StoredMark(), (Watermark{9, 5}));
}

TEST_F(FolderWatcherTest, AFingerprintIsCommittedOnlyWithItsMessage) {
  // A commit early in a batch (its events reached max_bytes: 1 here) must
  // not record the fingerprints of the batch's later messages: one that
  // then fails would be taken, on the retry, for a message handled before
  // the UIDVALIDITY change, and dropped for good.
  using uidvalidity::Header;
  ScopedEnv early("MAILHOOK_TEST_COMMIT_MAX_BYTES", "1");
  ScopedEnv fault("MAILHOOK_TEST_FAULT_SUBJECT", "fails once");
  ScopedEnv action("MAILHOOK_TEST_FAULT_ACTION", "transient_once");
  SetStartFrom(config::StartFrom::kAll);
  folder_.AddRaw(Header("old", "<old@x>"), "body old");
  SyncTimes(3, [&](int n) {
    if (n == 1) folder_.Recreate(8);  // fingerprints of 7 remain: SkipHandledBefore claims
    if (n == 2) {
      folder_.AddRaw(Header("big", "<big@x>"), "body big");
      folder_.AddRaw(Header("fails once", "<second@x>"), "body second");
    }
  });
  auto rows = Store()->outbox().ListPending();
  ASSERT_TRUE(rows.ok());
  std::vector<std::pair<uint32_t, uint32_t>> events;
  for (const auto& d : *rows) events.emplace_back(d.item.uidvalidity, d.item.uid);
  std::sort(events.begin(), events.end());
  EXPECT_EQ(events, (std::vector<std::pair<uint32_t, uint32_t>>{{7, 1}, {8, 1}, {8, 2}}));
  const auto calls = folder_.calls();
  EXPECT_NE(std::find(calls.begin(), calls.end(), "FETCH META 1,2"), calls.end()) << "one batch";
  EXPECT_GT(syncs_run_, 3) << "the second message failed once";
  EXPECT_EQ(StoredMark(), (Watermark{8, 2}));
}

TEST_F(FolderWatcherTest, HandledMessagesAreCoveredAWindowASyncAfterTheNewMail) {
  // As an older version left it: ten handled messages without fingerprints
  // (floor 10), and a new one. Windows of 3 UIDs, from the top down, each
  // after the catch-up; UID 5's Message-ID fetch breaks the session.
  ScopedEnv window("MAILHOOK_TEST_COVER_WINDOW", "3");
  for (int i = 1; i <= 11; ++i) folder_.Add("m" + std::to_string(i));
  ASSERT_TRUE(Store()->watermarks().Set("acct", "INBOX", Watermark{7, 10}).ok());
  folder_.TooLargeMatchFetch(1000, {5});
  const auto floor = [&] { return *Store()->watermarks().FingerprintFloor("acct", "INBOX"); };
  std::vector<uint32_t> floors;
  SyncTimes(5, [&](int) { floors.push_back(floor()); });
  floors.push_back(floor());
  EXPECT_EQ(floors, (std::vector<uint32_t>{7, 4, 1, 0, 0}));
  EXPECT_EQ(EventUids(), (std::vector<uint32_t>{11}));
  std::vector<std::string> fetches;
  for (const std::string& c : folder_.calls()) {
    if (c.starts_with("FETCH META") || c.starts_with("FETCH MATCH")) fetches.push_back(c);
  }
  // The new mail went first; the first window followed it.
  ASSERT_GE(fetches.size(), 2u);
  EXPECT_TRUE(fetches[0].starts_with("FETCH META 11")) << fetches[0];
  EXPECT_EQ(fetches[1], "FETCH MATCH 8,9,10");
  // The drop at UID 5 resumed from the persisted floor (7): no UID above it
  // was asked for again.
  for (size_t i = 2; i < fetches.size(); ++i) {
    for (const char* above : {"8", "9", "10"}) {
      if (!fetches[i].starts_with("FETCH MATCH")) continue;
      EXPECT_EQ(fetches[i].find(std::string(" ") + above), std::string::npos) << fetches[i];
      EXPECT_EQ(fetches[i].find(std::string(",") + above), std::string::npos) << fetches[i];
    }
  }
  EXPECT_GT(syncs_run_, 5) << "UID 5's fetch broke sessions";
  EXPECT_EQ(Store()->fingerprints().List("acct", "INBOX", 7)->size(), 10u) << "all but UID 5 (unmatchable)";
}

TEST_F(FolderWatcherTest, AFirstStartFromNewFingerprintsWhatItPassesOver) {
  folder_.Add("old 1");
  folder_.Add("old 2");
  SyncTimes();
  EXPECT_TRUE(EventUids().empty());
  EXPECT_EQ(Store()->fingerprints().List("acct", "INBOX", 7)->size(), 2u);
  folder_.SetUidValidity(9);  // the same two, recreated: still not sent
  SyncTimes();
  EXPECT_TRUE(EventUids().empty());
  EXPECT_EQ(StoredMark(), (Watermark{9, 2}));
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
  ScopedEnv server_path("MAILHOOK_TEST_WHOLE_FETCH_MAX_BYTES", "0");  // sections read one by one
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
  // The first sync fingerprints what its baseline passed over (SEARCH 1:1,
  // once, after its catch-up); after the unannounced message, one more
  // search finds nothing new.
  const std::vector<std::string> want{"SEARCH 2:*", "SEARCH 1:1", "SEARCH 2:*", "SEARCH 2:*", "SEARCH 3:*"};
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

// --- the fetch pipeline (issue 8): small messages fetched whole with their batch ---

/// The FETCH commands the fake served, in order.
std::vector<std::string> Fetches(const FakeFolder& folder) {
  std::vector<std::string> out;
  for (const std::string& c : folder.calls()) {
    if (c.starts_with("FETCH")) out.push_back(c);
  }
  return out;
}

std::string UidList(uint32_t from, uint32_t to) {
  std::string out;
  for (uint32_t u = from; u <= to; ++u) out += (out.empty() ? "" : ",") + std::to_string(u);
  return out;
}

TEST_F(FolderWatcherTest, ABatchOfSmallMessagesCostsTwoFetchCommands) {
  SetStartFrom(config::StartFrom::kAll);
  for (int i = 0; i < 25; ++i) folder_.Add("small " + std::to_string(i));
  SyncTimes();
  EXPECT_EQ(EventUids().size(), 25u);
  EXPECT_EQ(Fetches(folder_),
            (std::vector<std::string>{"FETCH META " + UidList(1, 25), "FETCH WHOLE " + UidList(1, 25)}));
  EXPECT_EQ(StoredMark(), (Watermark{7, 25}));
}

TEST_F(FolderWatcherTest, TheServerPathCostsCommandsPerMessage) {
  // The same batch with the threshold at 0 (the path before the pipeline):
  // the figure the pipeline is measured against.
  ScopedEnv server_path("MAILHOOK_TEST_WHOLE_FETCH_MAX_BYTES", "0");
  SetStartFrom(config::StartFrom::kAll);
  for (int i = 0; i < 25; ++i) folder_.Add("small " + std::to_string(i));
  SyncTimes();
  EXPECT_EQ(EventUids().size(), 25u);
  const auto fetches = Fetches(folder_);
  EXPECT_EQ(
      std::count_if(fetches.begin(), fetches.end(), [](const std::string& c) { return c.starts_with("FETCH WHOLE"); }),
      0);
  EXPECT_GE(fetches.size(), 1u + 25u) << "one meta FETCH, then at least one per message";
  std::cout << "fetch_commands_per_message server_path=" << static_cast<double>(fetches.size()) / 25 << "\n";
}

TEST_F(FolderWatcherTest, AMessageExpungedBeforeItsWholeFetchIsSkipped) {
  SetStartFrom(config::StartFrom::kAll);
  folder_.Add("a");
  folder_.Add("b");
  folder_.Add("c");
  folder_.VanishAfterMeta(2);  // absent from the BODY.PEEK[] answer
  SyncTimes();
  EXPECT_EQ(EventUids(), (std::vector<uint32_t>{1, 3}));
  EXPECT_EQ(Fetches(folder_), (std::vector<std::string>{"FETCH META 1,2,3", "FETCH WHOLE 1,2,3"}));
  EXPECT_EQ(StoredMark(), (Watermark{7, 3}));
  auto attempts = Store()->attempts().List("acct", "INBOX", 7);
  ASSERT_TRUE(attempts.ok());
  EXPECT_TRUE(attempts->empty()) << "nothing is left to retry";
  EXPECT_EQ(folder_.opens(), 1) << "a vanished message does not break the session";
}

TEST_F(FolderWatcherTest, AWholeMessageThatFailsToExtractCountsItsAttempts) {
  // Extraction throws for this message (as a parser bug would): blamed in
  // its batch, then tried alone until max_attempts, never read on the
  // server path.
  ScopedEnv fault("MAILHOOK_TEST_FAULT_SUBJECT", "poison");
  SetStartFrom(config::StartFrom::kAll);
  config_.accounts[0].limits.max_attempts = 3;
  folder_.Add("good 1");
  folder_.Add("poison");
  folder_.Add("good 3");
  SyncTimes();
  EXPECT_EQ(EventUids(), (std::vector<uint32_t>{1, 2, 3}));
  EXPECT_NE(PayloadOf(2).find("message.unprocessable"), std::string::npos) << PayloadOf(2);
  EXPECT_NE(metrics_.Render().find("mailhook_message_failures_total{account=\"acct\",folder=\"INBOX\"} 3"),
            std::string::npos);
  EXPECT_EQ(folder_.opens(), 4) << "three failed attempts, then the unprocessable event";
  const auto fetches = Fetches(folder_);
  EXPECT_EQ(std::count(fetches.begin(), fetches.end(), "FETCH WHOLE 2"), 2) << "alone, twice after the batch";
  for (const std::string& c : fetches) EXPECT_FALSE(c.starts_with("FETCH BODY")) << c;
}

TEST_F(FolderWatcherTest, AWholeFetchThatBreaksTheSessionIsRetriedOneMessageAtATime) {
  // The batch's BODY.PEEK[] fails: no message is blamed; the next session
  // takes them alone, so the neighbours get through and only the poison
  // message counts its attempts.
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
  EXPECT_EQ(PayloadOf(3).find("message.unprocessable"), std::string::npos);
  EXPECT_NE(metrics_.Render().find("mailhook_message_failures_total{account=\"acct\",folder=\"INBOX\"} 3"),
            std::string::npos);
  const auto fetches = Fetches(folder_);
  EXPECT_EQ(std::count(fetches.begin(), fetches.end(), "FETCH WHOLE 1,2,3"), 1);
  EXPECT_EQ(std::count(fetches.begin(), fetches.end(), "FETCH WHOLE 2"), 3);
  EXPECT_EQ(folder_.opens(), 5) << "the batch, three attempts alone, then the unprocessable event";
  EXPECT_EQ(StoredMark(), (Watermark{7, 3}));
}

TEST_F(FolderWatcherTest, WholeFetchesStayWithinTheCommandBudget) {
  // With the threshold raised (tests only), 12 messages of ~900 KB would
  // be 10.8 MB in one answer: they are split at 2 MiB of RFC822.SIZE
  // (SessionWork::kWholeFetchCommandBytes).
  ScopedEnv big("MAILHOOK_TEST_WHOLE_FETCH_MAX_BYTES", "1000000");
  SetStartFrom(config::StartFrom::kAll);
  for (int i = 0; i < 12; ++i) folder_.Add("big " + std::to_string(i), std::string(900000, 'x'));
  SyncTimes();
  EXPECT_EQ(EventUids().size(), 12u);
  std::vector<std::string> wholes;
  for (const std::string& c : Fetches(folder_)) {
    if (c.starts_with("FETCH WHOLE")) wholes.push_back(c);
  }
  size_t messages = 0;
  for (const std::string& c : wholes) {
    const size_t n = static_cast<size_t>(std::count(c.begin(), c.end(), ',')) + 1;
    EXPECT_LE(n * 900000, 2u << 20) << c;
    messages += n;
  }
  EXPECT_EQ(messages, 12u) << "every message was fetched whole";
  EXPECT_EQ(wholes.size(), 6u) << "two messages a command";
}

// attach_original (issue 12): the stored event of a forward that attaches the
// original carries its bytes, read whole with its batch or (the server path)
// fetched for it; the hook's event stays the contract's.
class OriginalMessageTest : public FolderWatcherTest, public ::testing::WithParamInterface<bool> {
 protected:
  OriginalMessageTest() {
    config::SmtpTarget fwd;
    fwd.name = "fwd";
    fwd.mode = config::SmtpMode::kForward;
    fwd.to = {"desk@example.com"};
    fwd.attach_original = true;
    config_.smtp.push_back(fwd);
    SetStartFrom(config::StartFrom::kAll);
  }
  nlohmann::json EventFor(const std::string& target) {
    auto rows = Store()->outbox().ListPending();
    EXPECT_TRUE(rows.ok());
    for (const auto& d : *rows) {
      if (d.item.target == target) return nlohmann::json::parse(d.item.payload);
    }
    return nullptr;
  }
};

TEST_P(OriginalMessageTest, TheForwardsEventCarriesTheOriginalsBytes) {
  std::optional<ScopedEnv> server_path;
  if (GetParam()) server_path.emplace("MAILHOOK_TEST_WHOLE_FETCH_MAX_BYTES", "0");
  const std::string header =
      "From: Ann <ann@example.org>\r\nSubject: caf\xC3\xA9\r\nMessage-ID: <o1@example.org>\r\n\r\n";
  const std::string body =
      "Gr\xC3\xBC\xC3\x9F"
      "e\r\n\x01\xFF binary-ish\r\n";
  folder_.AddRaw(header, body);
  SyncTimes();
  const nlohmann::json fwd = EventFor("smtp:fwd");
  ASSERT_TRUE(fwd.is_object());
  ASSERT_TRUE(fwd["original_rfc822"].is_string()) << fwd.dump();
  EXPECT_EQ(mime::DecodeBase64(fwd["original_rfc822"].get<std::string>()), header + body);
  const nlohmann::json hook = EventFor("hook:h");
  ASSERT_TRUE(hook.is_object());
  EXPECT_FALSE(hook.contains("original_rfc822"));
  EXPECT_FALSE(hook.contains("auto_reply_headers"));
  const auto fetches = Fetches(folder_);
  const auto whole_reads =
      std::count_if(fetches.begin(), fetches.end(), [](const std::string& c) { return c.ends_with(" []"); });
  // The server path reads it once more for the forward; the whole fetch already has it.
  EXPECT_EQ(whole_reads, GetParam() ? 1 : 0);
}

TEST_P(OriginalMessageTest, WithoutAForwardThatAttachesItTheOriginalIsNotRead) {
  std::optional<ScopedEnv> server_path;
  if (GetParam()) server_path.emplace("MAILHOOK_TEST_WHOLE_FETCH_MAX_BYTES", "0");
  config_.smtp[0].attach_original = false;
  folder_.Add("plain");
  SyncTimes();
  const nlohmann::json fwd = EventFor("smtp:fwd");
  ASSERT_TRUE(fwd.is_object());
  EXPECT_FALSE(fwd.contains("original_rfc822"));
  const auto fetches = Fetches(folder_);
  EXPECT_EQ(std::count_if(fetches.begin(), fetches.end(), [](const std::string& c) { return c.ends_with(" []"); }), 0);
}

INSTANTIATE_TEST_SUITE_P(WholeAndServerPath, OriginalMessageTest, ::testing::Bool());

// A server that will not send the original (a NO to BODY.PEEK[] while the
// session still answers) costs the forward its original, not every route
// its event: before, the message failed max_attempts times and became
// message.unprocessable for all of them.
TEST_F(OriginalMessageTest, AnOriginalTheServerRefusesIsLeftOutOfTheForwardAlone) {
  ScopedEnv server_path("MAILHOOK_TEST_WHOLE_FETCH_MAX_BYTES", "0");
  config_.accounts[0].limits.max_attempts = 3;
  const uint32_t uid = folder_.Add("refused");
  folder_.RefuseWholeReads(uid, 1000);
  SyncTimes();
  const nlohmann::json fwd = EventFor("smtp:fwd");
  ASSERT_TRUE(fwd.is_object());
  EXPECT_EQ(fwd["type"], "message.received") << fwd.dump();
  EXPECT_TRUE(fwd["original_rfc822"].is_null()) << fwd.dump();
  EXPECT_EQ(fwd["original_omitted"], "unreadable") << fwd.dump();
  const nlohmann::json hook = EventFor("hook:h");
  ASSERT_TRUE(hook.is_object());
  EXPECT_EQ(hook["type"], "message.received") << hook.dump();
  EXPECT_FALSE(hook.contains("original_omitted"));
  const auto calls = folder_.calls();
  EXPECT_EQ(std::count(calls.begin(), calls.end(), "NOOP"), 1)
      << "the check that the session still answers, at the last allowed attempt only";
  EXPECT_EQ(std::count(calls.begin(), calls.end(), "FETCH BODY " + std::to_string(uid) + " []"), 3)
      << "tried max_attempts times before going without it";
}

// A refusal that passes (a momentary NO, a read that timed out) costs the
// forward nothing: the message is tried again and the original attached.
TEST_F(OriginalMessageTest, AnOriginalRefusedOnceIsReadAgainNotLeftOut) {
  ScopedEnv server_path("MAILHOOK_TEST_WHOLE_FETCH_MAX_BYTES", "0");
  config_.accounts[0].limits.max_attempts = 3;
  const uint32_t uid = folder_.Add("refused once");
  folder_.RefuseWholeReads(uid, 1);
  SyncTimes();
  const nlohmann::json fwd = EventFor("smtp:fwd");
  ASSERT_TRUE(fwd.is_object());
  ASSERT_TRUE(fwd["original_rfc822"].is_string()) << fwd.dump();
  EXPECT_FALSE(fwd.contains("original_omitted"));
}

// A read of the original that fails with the connection (the NOOP after it
// fails too) is tried again on a new session: the forward gets its original.
TEST_F(OriginalMessageTest, AnOriginalLostWithTheConnectionIsReadAgainNotLeftOut) {
  ScopedEnv server_path("MAILHOOK_TEST_WHOLE_FETCH_MAX_BYTES", "0");
  const uint32_t uid = folder_.AddRaw("Subject: dropped\r\nMessage-ID: <d1@example.org>\r\n\r\n", "body\r\n");
  folder_.RefuseWholeReads(uid, 1);
  folder_.FailNoops(1);
  SyncTimes();
  EXPECT_EQ(folder_.opens(), 2) << "the first session failed, the second read it";
  const nlohmann::json fwd = EventFor("smtp:fwd");
  ASSERT_TRUE(fwd.is_object());
  ASSERT_TRUE(fwd["original_rfc822"].is_string()) << fwd.dump();
  EXPECT_EQ(mime::DecodeBase64(fwd["original_rfc822"].get<std::string>()),
            "Subject: dropped\r\nMessage-ID: <d1@example.org>\r\n\r\nbody\r\n");
  EXPECT_FALSE(fwd.contains("original_omitted"));
}

}  // namespace
}  // namespace mailhook::daemon
