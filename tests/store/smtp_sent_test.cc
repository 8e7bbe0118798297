// The smtp_sent table: "never answer a message twice" and the per-sender
// rate limit, reserved atomically; a retry of the same event passes; the
// v5 → v6 migration keeps an existing state.
#include <sqlite3.h>

#include <chrono>
#include <filesystem>

#include <gtest/gtest.h>

#include "store/open_store.h"
#include "store/store.h"
#include "temp_dir.h"

namespace mailhook::store {
namespace {

using namespace std::chrono_literals;
using testsupport::TempDir;

constexpr const char* kTarget = "smtp:ack";
const TimePoint kT0 = TimePoint(std::chrono::milliseconds(1'790'000'000'000));

std::unique_ptr<Store> MustOpen(const std::string& dir) {
  auto s = OpenStore({.state_dir = dir});
  if (!s.ok()) ADD_FAILURE() << s.error().ToString();
  return s.ok() ? std::move(s).value() : nullptr;
}

SentReply Reply(const std::string& event, const std::string& sender, const std::string& message_id, TimePoint at) {
  return SentReply{kTarget, sender, message_id, event, at};
}

ReplyReservation Reserve(Store& store, const SentReply& reply, ReplyLimit limit = {}) {
  auto r = store.smtp_sent().ReserveReply(reply, limit);
  if (!r.ok()) {
    ADD_FAILURE() << r.error().ToString();
    return ReplyReservation::kRateLimited;
  }
  return *r;
}

TEST(SmtpSentTest, AMessageIsAnsweredOnceButARetryOfTheSameEventPasses) {
  TempDir dir;
  auto store = MustOpen(dir.path());
  ASSERT_TRUE(store);
  EXPECT_EQ(Reserve(*store, Reply("evt_1", "ann@example.org", "<m1@x>", kT0)), ReplyReservation::kReserved);
  // The same event again (a 451, a timeout, a crash before the send): its own
  // reservation lets it through, and no second row counts against Ann.
  EXPECT_EQ(Reserve(*store, Reply("evt_1", "ann@example.org", "<m1@x>", kT0 + 5min)), ReplyReservation::kReserved);
  EXPECT_EQ(*store->smtp_sent().SentSince(kTarget, "ann@example.org", kT0 - 1ms), 1);
  // The same message as another event (copied into a second watched
  // folder): already answered, whatever the rate limit says.
  EXPECT_EQ(Reserve(*store, Reply("evt_2", "ann@example.org", "<m1@x>", kT0 + 48h), {10, 24h}),
            ReplyReservation::kAlreadyAnswered);
  EXPECT_TRUE(*store->smtp_sent().AlreadyAnswered(kTarget, "<m1@x>"));
  EXPECT_FALSE(*store->smtp_sent().AlreadyAnswered(kTarget, "<m2@x>"));
  // Another target answers the same message on its own.
  auto other = store->smtp_sent().ReserveReply({"smtp:other", "ann@example.org", "<m1@x>", "evt_2", kT0}, {});
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(*other, ReplyReservation::kReserved);
}

TEST(SmtpSentTest, MessagesWithoutAMessageIdAreNeverAnsweredBeforeByThatAlone) {
  TempDir dir;
  auto store = MustOpen(dir.path());
  ASSERT_TRUE(store);
  ReplyLimit many{10, 24h};
  EXPECT_EQ(Reserve(*store, Reply("evt_1", "ann@example.org", "", kT0), many), ReplyReservation::kReserved);
  EXPECT_EQ(Reserve(*store, Reply("evt_2", "ann@example.org", "", kT0), many), ReplyReservation::kReserved);
  EXPECT_FALSE(*store->smtp_sent().AlreadyAnswered(kTarget, ""));
}

TEST(SmtpSentTest, TheRateLimitCountsPerSenderCaseInsensitivelyWithinTheWindow) {
  TempDir dir;
  auto store = MustOpen(dir.path());
  ASSERT_TRUE(store);
  ReplyLimit two{2, 24h};
  EXPECT_EQ(Reserve(*store, Reply("evt_1", "Ann@Example.org", "<1@x>", kT0), two), ReplyReservation::kReserved);
  EXPECT_EQ(Reserve(*store, Reply("evt_2", "ann@example.ORG", "<2@x>", kT0 + 1h), two), ReplyReservation::kReserved);
  EXPECT_EQ(Reserve(*store, Reply("evt_3", "ANN@example.org", "<3@x>", kT0 + 2h), two), ReplyReservation::kRateLimited);
  // A refused reply records nothing: it does not extend the limit.
  EXPECT_EQ(*store->smtp_sent().SentSince(kTarget, "ann@example.org", kT0 - 1ms), 2);
  // Another sender has a limit of their own.
  EXPECT_EQ(Reserve(*store, Reply("evt_4", "bob@example.org", "<4@x>", kT0 + 2h), two), ReplyReservation::kReserved);
}

TEST(SmtpSentTest, AReplyExactlyOneWindowOldNoLongerCounts) {
  TempDir dir;
  auto store = MustOpen(dir.path());
  ASSERT_TRUE(store);
  ReplyLimit one{1, 24h};
  ASSERT_EQ(Reserve(*store, Reply("evt_1", "ann@example.org", "<1@x>", kT0), one), ReplyReservation::kReserved);
  // One millisecond inside the window: limited.
  EXPECT_EQ(Reserve(*store, Reply("evt_2", "ann@example.org", "<2@x>", kT0 + 24h - 1ms), one),
            ReplyReservation::kRateLimited);
  // At the window's end the first reply has left it.
  EXPECT_EQ(Reserve(*store, Reply("evt_2", "ann@example.org", "<2@x>", kT0 + 24h), one), ReplyReservation::kReserved);
  EXPECT_EQ(*store->smtp_sent().SentSince(kTarget, "ann@example.org", kT0), 1);  // strictly after
  EXPECT_EQ(*store->smtp_sent().SentSince(kTarget, "ann@example.org", kT0 - 1ms), 2);
}

TEST(SmtpSentTest, AReleasedReservationNeitherCountsNorMarksTheMessageAnswered) {
  TempDir dir;
  auto store = MustOpen(dir.path());
  ASSERT_TRUE(store);
  ASSERT_EQ(Reserve(*store, Reply("evt_1", "ann@example.org", "<1@x>", kT0)), ReplyReservation::kReserved);
  ASSERT_TRUE(store->smtp_sent().ReleaseReply(kTarget, "evt_1").ok());
  EXPECT_FALSE(*store->smtp_sent().AlreadyAnswered(kTarget, "<1@x>"));
  EXPECT_EQ(Reserve(*store, Reply("evt_2", "ann@example.org", "<2@x>", kT0 + 1min)), ReplyReservation::kReserved);
  // Releasing what is not there is no error.
  EXPECT_TRUE(store->smtp_sent().ReleaseReply(kTarget, "evt_none").ok());
}

TEST(SmtpSentTest, PruningForgetsOnlyOlderRows) {
  TempDir dir;
  auto store = MustOpen(dir.path());
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->smtp_sent().RecordSent(Reply("evt_1", "ann@example.org", "<1@x>", kT0)).ok());
  ASSERT_TRUE(store->smtp_sent().RecordSent(Reply("evt_2", "ann@example.org", "<2@x>", kT0 + 1h)).ok());
  ASSERT_TRUE(store->smtp_sent().RecordSent(Reply("evt_2", "ann@example.org", "<2@x>", kT0 + 2h)).ok());  // ignored
  ASSERT_TRUE(store->smtp_sent().PruneSentBefore(kT0 + 1h).ok());
  EXPECT_FALSE(*store->smtp_sent().AlreadyAnswered(kTarget, "<1@x>"));
  EXPECT_TRUE(*store->smtp_sent().AlreadyAnswered(kTarget, "<2@x>"));
  EXPECT_EQ(*store->smtp_sent().SentSince(kTarget, "ann@example.org", kT0 - 1ms), 1);
}

TEST(SmtpSentTest, EveryWriteCommitsThroughOneTransaction) {
  TempDir dir;
  auto store = MustOpen(dir.path());
  ASSERT_TRUE(store);
  int commits = 0;
  store->SetFaultHookForTesting([&](std::string_view at) { commits += at == "transaction.before_commit"; });
  ASSERT_EQ(Reserve(*store, Reply("evt_1", "ann@example.org", "<1@x>", kT0)), ReplyReservation::kReserved);
  EXPECT_EQ(commits, 1);
  ASSERT_TRUE(store->smtp_sent().ReleaseReply(kTarget, "evt_1").ok());
  ASSERT_TRUE(store->smtp_sent().RecordSent(Reply("evt_1", "ann@example.org", "<1@x>", kT0)).ok());
  ASSERT_TRUE(store->smtp_sent().PruneSentBefore(kT0).ok());
  EXPECT_EQ(commits, 4);
}

TEST(SmtpSentTest, ASchemaFiveStateIsMigratedAndKeepsItsRows) {
  TempDir dir;
  {
    auto store = MustOpen(dir.path());
    ASSERT_TRUE(store);
    OutboxItem item;
    item.event_id = "evt_41";
    item.target = "webhook:tickets";
    item.account = "support";
    item.folder = "INBOX";
    item.uidvalidity = 7;
    item.uid = 41;
    item.payload = R"({"uid":41})";
    ASSERT_TRUE(store->CommitMessages("support", "INBOX", {7, 41}, {item}).ok());
  }
  // What version 5 wrote: no smtp_sent table.
  const std::string db = dir.path() + "/mailhook.db";
  ASSERT_TRUE(std::filesystem::exists(db)) << "state file name changed; update this test";
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(db.c_str(), &raw), SQLITE_OK);
  char* err = nullptr;
  int rc = sqlite3_exec(raw, "DROP TABLE smtp_sent; PRAGMA user_version = 5;", nullptr, nullptr, &err);
  EXPECT_EQ(rc, SQLITE_OK) << (err ? err : "");
  sqlite3_free(err);
  sqlite3_close(raw);

  auto store = MustOpen(dir.path());
  ASSERT_TRUE(store);
  auto mark = store->watermarks().Get("support", "INBOX");
  ASSERT_TRUE(mark.ok() && mark->has_value());
  EXPECT_EQ(**mark, (Watermark{7, 41}));
  auto due = store->outbox().ClaimDue(Clock::now(), 10);
  ASSERT_TRUE(due.ok()) << due.error().ToString();
  ASSERT_EQ(due->size(), 1u);
  EXPECT_EQ((*due)[0].item.payload, R"({"uid":41})");
  EXPECT_EQ(Reserve(*store, Reply("evt_41", "ann@example.org", "<1@x>", kT0)), ReplyReservation::kReserved);

  ASSERT_EQ(sqlite3_open(db.c_str(), &raw), SQLITE_OK);
  sqlite3_stmt* version = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(raw, "PRAGMA user_version", -1, &version, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(version), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int(version, 0), 7);
  sqlite3_finalize(version);
  sqlite3_close(raw);
}

}  // namespace
}  // namespace mailhook::store
