// The smtp_recipients table: per recipient, the final state of an smtp
// target's delivery (sent, or refused with a 5yz), kept while the delivery
// (or its dead letter) exists; the v6 → v7 migration adds it.
#include <sqlite3.h>

#include <filesystem>

#include <gtest/gtest.h>

#include "store/open_store.h"
#include "store/store.h"
#include "temp_dir.h"

namespace mailhook::store {
namespace {

using testsupport::TempDir;
using Status = RecipientState::Status;

constexpr const char* kTarget = "smtp:desk";
const TimePoint kT0 = TimePoint(std::chrono::milliseconds(1'790'000'000'000));

std::unique_ptr<Store> MustOpen(const std::string& dir) {
  auto s = OpenStore({.state_dir = dir});
  if (!s.ok()) ADD_FAILURE() << s.error().ToString();
  return s.ok() ? std::move(s).value() : nullptr;
}

OutboxItem Item(const std::string& event, uint32_t uid) {
  OutboxItem item;
  item.event_id = event;
  item.target = kTarget;
  item.account = "support";
  item.folder = "INBOX";
  item.uidvalidity = 7;
  item.uid = uid;
  item.payload = "{}";
  return item;
}

std::vector<std::string> Names(Store& store, const std::string& event) {
  auto rows = store.smtp_recipients().ForEvent(kTarget, event);
  EXPECT_TRUE(rows.ok());
  std::vector<std::string> out;
  for (const auto& r : rows.ok() ? *rows : std::vector<RecipientState>{}) out.push_back(r.recipient);
  return out;
}

TEST(SmtpRecipientsTest, StatesAreRecordedInOneTransactionAndReadBack) {
  TempDir dir;
  auto store = MustOpen(dir.path());
  ASSERT_TRUE(store);
  int commits = 0;
  store->SetFaultHookForTesting([&](std::string_view at) { commits += at == "transaction.before_commit"; });
  ASSERT_TRUE(store->smtp_recipients()
                  .Record(kTarget, "evt_1",
                          {{"desk@example.com", Status::kSent, "250 ok", kT0},
                           {"audit@example.com", Status::kRefused, "550 5.1.1 no such user", kT0}})
                  .ok());
  EXPECT_EQ(commits, 1);
  auto rows = store->smtp_recipients().ForEvent(kTarget, "evt_1");
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 2u);
  EXPECT_EQ((*rows)[0].recipient, "audit@example.com");
  EXPECT_EQ((*rows)[0].status, Status::kRefused);
  EXPECT_EQ((*rows)[0].reply, "550 5.1.1 no such user");
  EXPECT_EQ((*rows)[1].status, Status::kSent);
  EXPECT_EQ((*rows)[1].at, kT0);
  // Another event or target sees none of them; Forget drops the event's.
  EXPECT_TRUE(Names(*store, "evt_2").empty());
  EXPECT_TRUE(store->smtp_recipients().ForEvent("smtp:other", "evt_1")->empty());
  ASSERT_TRUE(store->smtp_recipients().Forget(kTarget, "evt_1").ok());
  EXPECT_TRUE(Names(*store, "evt_1").empty());
}

TEST(SmtpRecipientsTest, PruningKeepsTheRowsOfPendingDeliveriesAndDeadLetters) {
  TempDir dir;
  auto store = MustOpen(dir.path());
  ASSERT_TRUE(store);
  ASSERT_TRUE(
      store->CommitMessages("support", "INBOX", {7, 3}, {Item("evt_1", 1), Item("evt_2", 2), Item("evt_3", 3)}).ok());
  for (const char* event : {"evt_1", "evt_2", "evt_3", "evt_gone"}) {
    ASSERT_TRUE(
        store->smtp_recipients().Record(kTarget, event, {{"desk@example.com", Status::kSent, "250 ok", kT0}}).ok());
  }
  auto due = store->outbox().ClaimDue(Clock::now(), 10);
  ASSERT_TRUE(due.ok());
  ASSERT_EQ(due->size(), 3u);
  for (const Delivery& d : *due) {
    if (d.item.event_id == "evt_1") {
      ASSERT_TRUE(store->outbox().MarkDelivered(d.id).ok());
    } else if (d.item.event_id == "evt_2") {
      ASSERT_TRUE(store->outbox().MoveToDeadLetters(d.id, 5, "retries exhausted").ok());
    }
  }
  ASSERT_TRUE(store->smtp_recipients().PruneEnded().ok());
  EXPECT_TRUE(Names(*store, "evt_1").empty());                                      // delivered: ended
  EXPECT_TRUE(Names(*store, "evt_gone").empty());                                   // no row anywhere
  EXPECT_EQ(Names(*store, "evt_2"), std::vector<std::string>{"desk@example.com"});  // a replay must skip desk
  EXPECT_EQ(Names(*store, "evt_3"), std::vector<std::string>{"desk@example.com"});  // still in the outbox
}

TEST(SmtpRecipientsTest, ASchemaSixStateIsMigrated) {
  TempDir dir;
  {
    auto store = MustOpen(dir.path());
    ASSERT_TRUE(store);
    ASSERT_TRUE(store->smtp_sent().RecordSent({kTarget, "ann@example.org", "<1@x>", "evt_1", kT0}).ok());
  }
  const std::string db = dir.path() + "/mailhook.db";
  ASSERT_TRUE(std::filesystem::exists(db)) << "state file name changed; update this test";
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(db.c_str(), &raw), SQLITE_OK);
  char* err = nullptr;
  int rc = sqlite3_exec(raw, "DROP TABLE smtp_recipients; PRAGMA user_version = 6;", nullptr, nullptr, &err);
  EXPECT_EQ(rc, SQLITE_OK) << (err ? err : "");
  sqlite3_free(err);
  sqlite3_close(raw);

  auto store = MustOpen(dir.path());
  ASSERT_TRUE(store);
  EXPECT_TRUE(*store->smtp_sent().AlreadyAnswered(kTarget, "<1@x>"));  // v6 rows kept
  ASSERT_TRUE(
      store->smtp_recipients().Record(kTarget, "evt_1", {{"ann@example.org", Status::kSent, "250 ok", kT0}}).ok());
  EXPECT_EQ(Names(*store, "evt_1"), std::vector<std::string>{"ann@example.org"});
}

// What the dispatcher runs hourly: replies older than the longest window
// (at least 30 days, for "already answered") go, newer ones stay and still
// count; recipients of ended deliveries go.
TEST(SmtpRecipientsTest, SmtpHousekeepingKeepsWhatTheRulesNeed) {
  using namespace std::chrono_literals;
  TempDir dir;
  auto store = MustOpen(dir.path());
  ASSERT_TRUE(store);
  const TimePoint now = kT0;
  SmtpSent& sent = store->smtp_sent();
  ASSERT_TRUE(sent.RecordSent({kTarget, "old@example.org", "<old@x>", "evt_old", now - 31 * 24h}).ok());
  ASSERT_TRUE(sent.RecordSent({kTarget, "mid@example.org", "<mid@x>", "evt_mid", now - 29 * 24h}).ok());
  ASSERT_TRUE(sent.RecordSent({kTarget, "ann@example.org", "<new@x>", "evt_new", now - 1h}).ok());
  ASSERT_TRUE(
      store->smtp_recipients().Record(kTarget, "evt_new", {{"ann@example.org", Status::kSent, "250", now}}).ok());

  // A 60-day window keeps the 31-day-old reply.
  ASSERT_TRUE(store->HousekeepSmtp(now, 60 * 24h).ok());
  EXPECT_TRUE(*sent.AlreadyAnswered(kTarget, "<old@x>"));
  // Windows of a day: the 30-day floor decides.
  ASSERT_TRUE(store->HousekeepSmtp(now, 24h).ok());
  EXPECT_FALSE(*sent.AlreadyAnswered(kTarget, "<old@x>"));
  EXPECT_TRUE(*sent.AlreadyAnswered(kTarget, "<mid@x>"));
  EXPECT_TRUE(*sent.AlreadyAnswered(kTarget, "<new@x>"));
  EXPECT_TRUE(Names(*store, "evt_new").empty());  // no outbox row: ended
  // The rate limit still counts the kept reply.
  auto again = sent.ReserveReply({kTarget, "ann@example.org", "<other@x>", "evt_other", now}, {1, 24h});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, ReplyReservation::kRateLimited);
}

}  // namespace
}  // namespace mailhook::store
