// The store's table interfaces (store/watermarks.h, attempts.h, outbox.h,
// dead_letters.h, bodies.h) behave the same over both backends: each case
// (and post_actions.h, smtp_recipients.h, smtp_sent.h, fingerprints.h)
// runs over the SQLite classes (a fresh state dir) and over the PostgreSQL
// classes of src/pgstore (a fresh schema on a private PostgreSQL,
// PostgresServer; skipped with the reason when PostgreSQL is missing). The
// cases are the table behaviours tests/store/store_test.cc checks on SQLite:
// watermark get/set and fingerprint floor, attempts counted and forgotten, a
// replayed add skipped (outbox, dead letters, delivered markers), claim
// with lease, room and more, delivered markers recorded in the claim,
// retries, dead letters replayed and dropped, payloads inline or in bodies,
// post-actions ready once every target succeeded, smtp recipients recorded,
// read in byte order and pruned with their delivery, smtp replies reserved
// once per message and within a sender's limit, fingerprints matched once
// and moved, two generations kept.
// A PostgreSQL-only case: two dispatchers claiming at once take different
// rows and neither waits (FOR UPDATE SKIP LOCKED); an error text that is not
// UTF-8 is stored with replacement characters; a fingerprint key that is not
// UTF-8 is stored as its digest; recipients keep byte order under an ICU
// collation; a reply reservation waits
// for another one of the same sender in flight, then counts it.

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "pgstore/pg_attempts.h"
#include "pgstore/pg_bodies.h"
#include "pgstore/pg_connection.h"
#include "pgstore/pg_dead_letters.h"
#include "pgstore/pg_fingerprints.h"
#include "pgstore/pg_outbox.h"
#include "pgstore/pg_post_actions.h"
#include "pgstore/pg_schema.h"
#include "pgstore/pg_smtp_recipients.h"
#include "pgstore/pg_smtp_sent.h"
#include "pgstore/pg_watermarks.h"
#include "postgres_server.h"
#include "status_assert.h"
#include "store/open_store.h"
#include "store/store.h"
#include "temp_dir.h"

namespace mailhook::pgstore {
namespace {

using std::chrono::milliseconds;
using store::Clock;
using store::OutboxItem;
using store::Watermark;
using testsupport::PostgresServer;
using testsupport::TempDir;

// ---- the backends: each makes a fresh, empty state and hands out its tables ----

/// SQLite: SqliteStore in a temp dir.
class SqliteBackend {
 public:
  static std::string WhyCannotRun() { return ""; }

  util::Status Open() {
    auto store = store::OpenStore({.state_dir = dir_.path()});
    if (!store) return store.error();
    store_ = std::move(store).value();
    return util::Ok();
  }

  store::Watermarks& watermarks() { return store_->watermarks(); }
  store::Attempts& attempts() { return store_->attempts(); }
  store::Outbox& outbox() { return store_->outbox(); }
  store::DeadLetters& dead_letters() { return store_->dead_letters(); }
  store::PostActions& post_actions() { return store_->post_actions(); }
  store::SmtpRecipients& smtp_recipients() { return store_->smtp_recipients(); }
  store::SmtpSent& smtp_sent() { return store_->smtp_sent(); }
  store::Fingerprints& fingerprints() { return store_->fingerprints(); }

  /// Payloads in `bodies` (a raw connection, as another process would see them).
  int64_t BodyRows() {
    sqlite3* raw = nullptr;
    int64_t n = -1;
    if (sqlite3_open((dir_.path() + "/mailhook.db").c_str(), &raw) == SQLITE_OK) {
      sqlite3_stmt* count = nullptr;
      if (sqlite3_prepare_v2(raw, "SELECT COUNT(*) FROM bodies", -1, &count, nullptr) == SQLITE_OK &&
          sqlite3_step(count) == SQLITE_ROW) {
        n = sqlite3_column_int64(count, 0);
      }
      sqlite3_finalize(count);
    }
    sqlite3_close(raw);
    return n;
  }

 private:
  TempDir dir_;
  std::unique_ptr<store::Store> store_;
};

/// The private PostgreSQL of this test process, started on first use
/// (gtest_discover_tests runs each case in a process of its own).
PostgresServer& Server() {
  static PostgresServer server;  // stopped and removed at exit
  return server;
}

/// PostgreSQL: the pgstore classes over one connection whose search_path is
/// a fresh schema (migrated by MigratePg), so cases share nothing.
class PgBackend {
 public:
  static std::string WhyCannotRun() { return PostgresServer::WhyCannotRun(); }

  util::Status Open() {
    if (!Server().running()) {
      if (auto s = Server().Start(); !s) return s;
    }
    auto conn = Connect();
    if (!conn) return conn.error();
    conn_ = std::move(conn).value();
    bodies_ = std::make_unique<PgBodies>(*conn_);
    watermarks_ = std::make_unique<PgWatermarks>(*conn_);
    attempts_ = std::make_unique<PgAttempts>(*conn_);
    outbox_ = std::make_unique<PgOutbox>(*conn_, *bodies_, "");
    dead_letters_ = std::make_unique<PgDeadLetters>(*conn_, *bodies_);
    post_actions_ = std::make_unique<PgPostActions>(*conn_);
    smtp_recipients_ = std::make_unique<PgSmtpRecipients>(*conn_);
    smtp_sent_ = std::make_unique<PgSmtpSent>(*conn_);
    fingerprints_ = std::make_unique<PgFingerprints>(*conn_);
    return util::Ok();
  }

  /// Another connection on the same schema.
  util::Result<std::unique_ptr<PgConnection>> Connect() {
    auto conn = PgConnection::Connect(Server().ConnectionUrl());
    if (!conn) return conn.error();
    if (schema_.empty()) {
      static int serial = 0;
      schema_ = "t" + std::to_string(getpid()) + "_" + std::to_string(++serial);
      if (auto s = (*conn)->Run("CREATE SCHEMA " + schema_); !s) return s.error();
    }
    if (auto s = (*conn)->Run("SET search_path TO " + schema_); !s) return s.error();
    if (auto s = MigratePg(**conn); !s) return s.error();
    return conn;
  }

  store::Watermarks& watermarks() { return *watermarks_; }
  store::Attempts& attempts() { return *attempts_; }
  store::Outbox& outbox() { return *outbox_; }
  store::DeadLetters& dead_letters() { return *dead_letters_; }
  store::PostActions& post_actions() { return *post_actions_; }
  store::SmtpRecipients& smtp_recipients() { return *smtp_recipients_; }
  store::SmtpSent& smtp_sent() { return *smtp_sent_; }
  store::Fingerprints& fingerprints() { return *fingerprints_; }
  store::Bodies& bodies() { return *bodies_; }
  PgConnection& connection() { return *conn_; }

  /// Payloads in `bodies`, and their chunks must be exactly theirs.
  int64_t BodyRows() {
    if (!conn_->Prepare("test.body_rows",
                        "SELECT (SELECT count(*) FROM bodies) * 1000000 + "
                        "(SELECT count(*) FROM body_chunks c WHERE NOT EXISTS "
                        "(SELECT 1 FROM bodies b WHERE b.id = c.id))")) {
      return -1;
    }
    auto rows = conn_->Exec("test.body_rows");
    if (!rows) return -1;
    auto count = rows->Int64(0, 0);
    if (!count) return -1;
    const int64_t n = *count;
    // Chunks without their body would be a leak: show them as a wrong count.
    return n % 1000000 == 0 ? n / 1000000 : -n;
  }

 private:
  std::string schema_;
  std::unique_ptr<PgConnection> conn_;
  std::unique_ptr<PgBodies> bodies_;
  std::unique_ptr<PgWatermarks> watermarks_;
  std::unique_ptr<PgAttempts> attempts_;
  std::unique_ptr<PgOutbox> outbox_;
  std::unique_ptr<PgDeadLetters> dead_letters_;
  std::unique_ptr<PgPostActions> post_actions_;
  std::unique_ptr<PgSmtpRecipients> smtp_recipients_;
  std::unique_ptr<PgSmtpSent> smtp_sent_;
  std::unique_ptr<PgFingerprints> fingerprints_;
};

template <typename Backend>
class StoreTablesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::string why = Backend::WhyCannotRun(); !why.empty()) GTEST_SKIP() << why;
    MH_ASSERT_OK(b_.Open());
  }

  Backend b_;
};

class BackendNames {
 public:
  template <typename T>
  static std::string GetName(int /*index*/) {
    return std::is_same_v<T, SqliteBackend> ? "Sqlite" : "Postgres";
  }
};

using Backends = ::testing::Types<SqliteBackend, PgBackend>;
TYPED_TEST_SUITE(StoreTablesTest, Backends, BackendNames);

OutboxItem Item(uint32_t uid, const std::string& target = "webhook:tickets") {
  OutboxItem item;
  item.event_id = "evt_" + std::to_string(uid);
  item.target = target;
  item.account = "support";
  item.folder = "INBOX";
  item.uidvalidity = 7;
  item.uid = uid;
  item.payload = R"({"uid":)" + std::to_string(uid) + "}";
  return item;
}

std::shared_ptr<const std::string> Piece(size_t n, char c) { return std::make_shared<const std::string>(n, c); }

// ---- watermarks ----

TYPED_TEST(StoreTablesTest, WatermarkRoundTripPerFolder) {
  auto& w = this->b_.watermarks();
  auto none = w.Get("support", "INBOX");
  MH_ASSERT_OK(none);
  EXPECT_FALSE(none->has_value());
  MH_ASSERT_OK(w.Set("support", "INBOX", {7, 42}));
  MH_ASSERT_OK(w.Set("support", "Archive", {9, 3}));
  // UIDVALIDITY and UIDs are unsigned 32-bit: the largest survives.
  MH_ASSERT_OK(w.Set("sales", "INBOX", {4294967295u, 4294967294u}));
  EXPECT_EQ(w.Get("support", "INBOX")->value(), (Watermark{7, 42}));
  EXPECT_EQ(w.Get("support", "Archive")->value(), (Watermark{9, 3}));
  EXPECT_EQ(w.Get("sales", "INBOX")->value(), (Watermark{4294967295u, 4294967294u}));
  MH_ASSERT_OK(w.Set("support", "INBOX", {8, 1}));  // replaced, also backwards (a new UIDVALIDITY)
  EXPECT_EQ(w.Get("support", "INBOX")->value(), (Watermark{8, 1}));
  EXPECT_FALSE(w.Get("support", "Sent")->has_value());
}

TYPED_TEST(StoreTablesTest, AFirstWatermarkIsUncoveredUpToItAndAReplacedOneKeepsItsFloor) {
  auto& w = this->b_.watermarks();
  EXPECT_EQ(*w.FingerprintFloor("support", "INBOX"), 0u);  // never seen
  MH_ASSERT_OK(w.Set("support", "INBOX", {7, 30}));        // a baseline
  EXPECT_EQ(*w.FingerprintFloor("support", "INBOX"), 30u);
  MH_ASSERT_OK(w.SetFingerprintFloor("support", "INBOX", 0));
  MH_ASSERT_OK(w.Set("support", "INBOX", {7, 35}));
  MH_ASSERT_OK(w.Set("support", "INBOX", {9, 3}));
  EXPECT_EQ(*w.FingerprintFloor("support", "INBOX"), 0u);
  MH_ASSERT_OK(w.SetFingerprintFloor("support", "INBOX", 2));
  EXPECT_EQ(*w.FingerprintFloor("support", "INBOX"), 2u);
  // The floor of a folder without a watermark is not set (nothing to update).
  MH_ASSERT_OK(w.SetFingerprintFloor("support", "Sent", 5));
  EXPECT_EQ(*w.FingerprintFloor("support", "Sent"), 0u);
}

// ---- attempts ----

TYPED_TEST(StoreTablesTest, AttemptsAreCountedMarkedAndForgotten) {
  auto& a = this->b_.attempts();
  const std::array<uint32_t, 3> batch{10, 11, 12};
  MH_ASSERT_OK(a.Begin("support", "INBOX", 7, batch));
  const std::array<uint32_t, 1> alone{11};
  MH_ASSERT_OK(a.Begin("support", "INBOX", 7, alone));
  MH_ASSERT_OK(a.RecordFailure("support", "INBOX", 11, "imap.response_too_large", "too big", false));
  auto list = a.List("support", "INBOX", 7);
  MH_ASSERT_OK(list);
  ASSERT_EQ(list->size(), 3u);
  // The batch marked all three without counting; UID 11 alone counted once.
  EXPECT_EQ((*list)[1].uid, 11u);
  EXPECT_EQ((*list)[1].count, 1);
  EXPECT_EQ((*list)[1].last_code, "imap.response_too_large");
  EXPECT_EQ((*list)[1].last_error, "too big");
  EXPECT_EQ((*list)[0].count, 0);
  EXPECT_EQ((*list)[0].last_error, "");
  // A failure known to be one message's, inside a batch, counts for it.
  MH_ASSERT_OK(a.RecordFailure("support", "INBOX", 12, "x", "y", true));
  EXPECT_EQ((*a.List("support", "INBOX", 7))[2].count, 1);
  // Another UIDVALIDITY, account or folder sees none.
  EXPECT_TRUE(a.List("support", "INBOX", 8)->empty());
  EXPECT_TRUE(a.List("support", "Archive", 7)->empty());
  EXPECT_TRUE(a.List("sales", "INBOX", 7)->empty());
  // A refund takes one back, never below 0.
  const std::array<uint32_t, 2> refund{10, 11};
  MH_ASSERT_OK(a.Refund("support", "INBOX", refund));
  list = a.List("support", "INBOX", 7);
  EXPECT_EQ((*list)[0].count, 0);
  EXPECT_EQ((*list)[1].count, 0);

  // Forget drops the UIDs made durable; ForgetBelow those at or below the
  // mark and those of another UIDVALIDITY.
  MH_ASSERT_OK(a.Forget("support", "INBOX", std::array<uint32_t, 1>{10}));
  EXPECT_EQ(a.List("support", "INBOX", 7)->size(), 2u);
  MH_ASSERT_OK(a.ForgetBelow("support", "INBOX", Watermark{7, 11}));
  list = a.List("support", "INBOX", 7);
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].uid, 12u);
  MH_ASSERT_OK(a.ForgetBelow("support", "INBOX", Watermark{8, 0}));
  EXPECT_TRUE(a.List("support", "INBOX", 7)->empty());
}

TYPED_TEST(StoreTablesTest, ANewUidValidityStartsTheCountAgain) {
  auto& a = this->b_.attempts();
  const std::array<uint32_t, 1> uid{5};
  MH_ASSERT_OK(a.Begin("support", "INBOX", 7, uid));
  MH_ASSERT_OK(a.Begin("support", "INBOX", 7, uid));
  MH_ASSERT_OK(a.RecordFailure("support", "INBOX", 5, "x", "y", false));
  EXPECT_EQ((*a.List("support", "INBOX", 7))[0].count, 2);
  MH_ASSERT_OK(a.Begin("support", "INBOX", 9, uid));
  auto list = a.List("support", "INBOX", 9);
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].count, 1);
  EXPECT_EQ((*list)[0].last_code, "");
  EXPECT_EQ((*list)[0].last_error, "");
  EXPECT_TRUE(a.List("support", "INBOX", 7)->empty());
}

TYPED_TEST(StoreTablesTest, ALongFailureMessageIsCutToItsFirst500Bytes) {
  auto& a = this->b_.attempts();
  MH_ASSERT_OK(a.Begin("support", "INBOX", 7, std::array<uint32_t, 1>{1}));
  MH_ASSERT_OK(a.RecordFailure("support", "INBOX", 1, "x", std::string(499, 'a') + "bc", false));
  EXPECT_EQ((*a.List("support", "INBOX", 7))[0].last_error, std::string(499, 'a') + "b");
}

// ---- outbox ----

TYPED_TEST(StoreTablesTest, AReplayedAddCreatesNoSecondRow) {
  auto& o = this->b_.outbox();
  MH_ASSERT_OK(o.Add({Item(1)}));
  MH_ASSERT_OK(o.Add({Item(1)}));
  EXPECT_EQ(*o.PendingCount(), 1);

  // Once delivered, a replay still must not deliver again.
  auto claimed = o.ClaimDue(Clock::now(), 10);
  MH_ASSERT_OK(claimed);
  ASSERT_EQ(claimed->size(), 1u);
  MH_ASSERT_OK(o.MarkDelivered((*claimed)[0].id));
  MH_ASSERT_OK(o.Add({Item(1)}));
  EXPECT_EQ(*o.PendingCount(), 0);
  EXPECT_TRUE(*o.AllDelivered("evt_1"));

  // Same for a dead letter.
  MH_ASSERT_OK(o.Add({Item(2)}));
  auto c2 = o.ClaimDue(Clock::now(), 10);
  MH_ASSERT_OK(c2);
  ASSERT_EQ(c2->size(), 1u);
  MH_ASSERT_OK(o.MoveToDeadLetters((*c2)[0].id, 1, "HTTP 400"));
  MH_ASSERT_OK(o.Add({Item(2)}));
  EXPECT_EQ(*o.PendingCount(), 0);
  EXPECT_EQ(*this->b_.dead_letters().Count(), 1);
  EXPECT_FALSE(*o.AllDelivered("evt_2"));

  // A different target of the same event is a different row.
  MH_ASSERT_OK(o.Add({Item(2, "hook:archive")}));
  EXPECT_EQ(*o.PendingCount(), 1);
  EXPECT_FALSE(*o.AllDelivered("evt_2"));

  // Pruning forgets only markers older than its time: a replay is still
  // skipped within the dedupe window, added past it.
  MH_ASSERT_OK(o.PruneDelivered(Clock::now() - std::chrono::hours(1)));
  MH_ASSERT_OK(o.Add({Item(1)}));
  EXPECT_EQ(*o.PendingCount(), 1);
  MH_ASSERT_OK(o.PruneDelivered(Clock::now() + std::chrono::hours(1)));
  MH_ASSERT_OK(o.Add({Item(1)}));
  EXPECT_EQ(*o.PendingCount(), 2);
}

TYPED_TEST(StoreTablesTest, ClaimLeasesRowsAndRetryReschedules) {
  auto& o = this->b_.outbox();
  MH_ASSERT_OK(o.Add({Item(1), Item(2)}));
  auto now = Clock::now();
  auto first = o.ClaimDue(now, 1);
  MH_ASSERT_OK(first);
  ASSERT_EQ(first->size(), 1u);
  EXPECT_EQ((*first)[0].item.event_id, "evt_1");  // oldest first
  auto second = o.ClaimDue(now, 10);
  MH_ASSERT_OK(second);
  ASSERT_EQ(second->size(), 1u);  // evt_1 is leased
  EXPECT_EQ((*second)[0].item.event_id, "evt_2");
  EXPECT_TRUE(o.ClaimDue(now, 10)->empty());
  // Both are leased for 15 minutes: the next claimable row is then.
  auto leased = o.NextDueAt();
  MH_ASSERT_OK(leased);
  ASSERT_TRUE(leased->has_value());
  EXPECT_EQ(std::chrono::duration_cast<milliseconds>(**leased - (now + std::chrono::minutes(15))).count(), 0);
  // A lease that ended frees its row.
  EXPECT_EQ(o.ClaimDue(now + std::chrono::minutes(16), 10)->size(), 2u);

  auto later = now + std::chrono::minutes(30);
  MH_ASSERT_OK(o.ScheduleRetry((*first)[0].id, 1, later, "HTTP 503"));
  MH_ASSERT_OK(o.ScheduleRetry((*second)[0].id, 1, later + std::chrono::minutes(5), "HTTP 503"));
  auto next = o.NextDueAt();
  MH_ASSERT_OK(next);
  ASSERT_TRUE(next->has_value());
  EXPECT_EQ(std::chrono::duration_cast<milliseconds>(**next - later).count(), 0);
  EXPECT_TRUE(o.ClaimDue(now, 10)->empty());
  auto again = o.ClaimDue(later, 10);
  MH_ASSERT_OK(again);
  ASSERT_EQ(again->size(), 1u);
  EXPECT_EQ((*again)[0].attempts, 1);
  EXPECT_EQ((*again)[0].last_error, "HTTP 503");
  EXPECT_EQ(std::chrono::duration_cast<milliseconds>((*again)[0].next_attempt_at - later).count(), 0);

  // A released lease is claimable again at once; ReleaseAllLeases frees everything.
  MH_ASSERT_OK(o.ReleaseLease((*again)[0].id));
  EXPECT_EQ(o.ClaimDue(later, 10)->size(), 1u);
  const auto after_both = later + std::chrono::minutes(5);
  EXPECT_EQ(o.ClaimDue(after_both, 10)->size(), 1u);
  MH_ASSERT_OK(o.ReleaseAllLeases());
  EXPECT_EQ(o.ClaimDue(after_both, 10)->size(), 2u);
}

TYPED_TEST(StoreTablesTest, SkippedTargetsAreNeitherClaimedNorAwaited) {
  auto& o = this->b_.outbox();
  MH_ASSERT_OK(o.Add({Item(1, "webhook:a"), Item(2, "webhook:b"), Item(3, "webhook:a, b")}));
  const auto now = Clock::now();
  const std::vector<std::string> skip = {"webhook:a", "webhook:a, b"};
  MH_ASSERT_OK(o.ScheduleRetry(o.ListPending()->at(1).id, 1, now + std::chrono::hours(1), "503"));
  // Only b's row, due in an hour, is left to wait for.
  auto next = o.NextDueAt(skip);
  MH_ASSERT_OK(next);
  ASSERT_TRUE(next->has_value());
  EXPECT_EQ(std::chrono::duration_cast<milliseconds>(**next - (now + std::chrono::hours(1))).count(), 0);
  EXPECT_TRUE(o.ClaimDue(now, 10, std::chrono::minutes(1), skip)->empty());
  auto b = o.ClaimDue(now + std::chrono::hours(1), 10, std::chrono::minutes(1), skip);
  MH_ASSERT_OK(b);
  ASSERT_EQ(b->size(), 1u);
  EXPECT_EQ((*b)[0].item.target, "webhook:b");
  // Every target skipped: nothing to wait for.
  EXPECT_FALSE(o.NextDueAt({"webhook:a", "webhook:b", "webhook:a, b"})->has_value());
}

TYPED_TEST(StoreTablesTest, AClaimRecordsTheDeliveredRowsAndClaimsTheNext) {
  auto& o = this->b_.outbox();
  MH_ASSERT_OK(o.Add({Item(1), Item(2), Item(3)}));
  auto now = Clock::now();
  store::ClaimRequest request;
  request.now = now;
  request.limit = 2;
  auto first = o.Claim(request);
  MH_ASSERT_OK(first);
  ASSERT_EQ(first->rows.size(), 2u);
  EXPECT_TRUE(first->more);  // a third is due: the dispatcher wakes another worker

  request.limit = 5;
  request.delivered = {first->rows[0].id, first->rows[1].id};
  auto next = o.Claim(request);
  MH_ASSERT_OK(next);
  ASSERT_EQ(next->rows.size(), 1u);
  EXPECT_FALSE(next->more);
  EXPECT_EQ(next->rows[0].item.event_id, "evt_3");
  // The two are gone and remembered: a replay of their commit adds nothing.
  EXPECT_EQ(*o.PendingCount(), 1);
  MH_ASSERT_OK(o.Add({Item(1), Item(2)}));
  EXPECT_EQ(*o.PendingCount(), 1);
  EXPECT_TRUE(*o.AllDelivered("evt_1"));
  EXPECT_FALSE(*o.AllDelivered("evt_3"));

  // Only recording (limit 0) claims nothing.
  request.limit = 0;
  request.delivered = {next->rows[0].id};
  auto recorded = o.Claim(request);
  MH_ASSERT_OK(recorded);
  EXPECT_TRUE(recorded->rows.empty());
  EXPECT_EQ(*o.PendingCount(), 0);
  EXPECT_TRUE(o.ClaimDue(now, 5)->empty());
  EXPECT_FALSE(o.NextDueAt()->has_value());
}

TYPED_TEST(StoreTablesTest, AClaimTakesNoMoreRowsOfATargetThanItsRoom) {
  auto& o = this->b_.outbox();
  MH_ASSERT_OK(o.Add({Item(1, "webhook:a"), Item(2, "webhook:a"), Item(3, "webhook:a"), Item(4, "webhook:b")}));
  store::ClaimRequest request;
  request.now = Clock::now();
  request.limit = 4;
  request.room = {{"webhook:a", 1}, {"webhook:b", 4}};
  auto claimed = o.Claim(request);
  MH_ASSERT_OK(claimed);
  std::multiset<std::string> targets;
  for (const auto& d : claimed->rows) targets.insert(d.item.target);
  EXPECT_EQ(targets, (std::multiset<std::string>{"webhook:a", "webhook:b"}));
  EXPECT_TRUE(claimed->more);
  // The rows of a beyond its room were not leased.
  EXPECT_EQ(o.ClaimDue(request.now, 10)->size(), 2u);
}

// A due row of another target can sit behind the rows left for lack of
// room, beyond what one claim selects: the claim says more.
TYPED_TEST(StoreTablesTest, AClaimThatLeftRowsForLackOfRoomSaysMore) {
  auto& o = this->b_.outbox();
  MH_ASSERT_OK(o.Add({Item(1, "webhook:a"), Item(2, "webhook:a"), Item(3, "webhook:b")}));
  store::ClaimRequest request;
  request.now = Clock::now();
  request.limit = 1;
  request.room = {{"webhook:a", 1}, {"webhook:b", 4}};
  auto claimed = o.Claim(request);
  MH_ASSERT_OK(claimed);
  ASSERT_EQ(claimed->rows.size(), 1u);
  EXPECT_EQ(claimed->rows[0].item.target, "webhook:a");
  EXPECT_TRUE(claimed->more) << "webhook:b's row is due behind a's second";
  request.skip_targets = {"webhook:a"};
  request.room.erase("webhook:a");
  auto next = o.Claim(request);
  MH_ASSERT_OK(next);
  ASSERT_EQ(next->rows.size(), 1u);
  EXPECT_EQ(next->rows[0].item.target, "webhook:b");
  EXPECT_FALSE(next->more);
}

// ---- dead letters ----

TYPED_TEST(StoreTablesTest, DeadLettersReplayAndDrop) {
  auto& o = this->b_.outbox();
  auto& dead = this->b_.dead_letters();
  MH_ASSERT_OK(o.Add({Item(1), Item(2), Item(3)}));
  auto claimed = o.ClaimDue(Clock::now(), 10);
  MH_ASSERT_OK(claimed);
  ASSERT_EQ(claimed->size(), 3u);
  for (const auto& d : *claimed) MH_ASSERT_OK(o.MoveToDeadLetters(d.id, 9, "gone"));
  EXPECT_EQ(*o.PendingCount(), 0);
  EXPECT_FALSE(*o.AllDelivered("evt_1"));

  auto list = dead.List();
  MH_ASSERT_OK(list);
  ASSERT_EQ(list->size(), 3u);
  EXPECT_EQ((*list)[0].id, (*claimed)[0].id);  // a dead letter keeps its outbox id
  EXPECT_EQ((*list)[0].attempts, 9);
  EXPECT_EQ((*list)[0].last_error, "gone");
  EXPECT_EQ((*list)[0].item.payload, R"({"uid":1})");

  std::array<int64_t, 2> replay = {(*list)[0].id, 999999};
  EXPECT_EQ(*dead.Replay(replay), 1);
  EXPECT_EQ(*dead.Replay(std::span<const int64_t>()), 0);
  EXPECT_EQ(*dead.Count(), 2);
  auto due = o.ClaimDue(Clock::now(), 10);
  MH_ASSERT_OK(due);
  ASSERT_EQ(due->size(), 1u);
  EXPECT_EQ((*due)[0].id, (*list)[0].id);  // and keeps it when replayed
  EXPECT_EQ((*due)[0].item.event_id, "evt_1");
  EXPECT_EQ((*due)[0].attempts, 0);
  EXPECT_EQ((*due)[0].last_error, "gone");
  MH_ASSERT_OK(o.MarkDelivered((*due)[0].id));
  EXPECT_TRUE(*o.AllDelivered("evt_1"));

  std::array<int64_t, 1> drop = {(*list)[1].id};
  EXPECT_EQ(*dead.Drop(drop), 1);
  EXPECT_EQ(*dead.Drop(drop), 0);
  EXPECT_EQ(*dead.Count(), 1);
  EXPECT_EQ(*dead.ReplayAll(), 1);
  EXPECT_EQ(*o.PendingCount(), 1);
  EXPECT_EQ(*dead.DropAll(), 0);
  // Ids handed out after a replay do not collide with the replayed ones.
  MH_ASSERT_OK(o.Add({Item(4)}));
  auto pending = o.ListPending();
  MH_ASSERT_OK(pending);
  ASSERT_EQ(pending->size(), 2u);
  EXPECT_NE((*pending)[0].id, (*pending)[1].id);
}

TYPED_TEST(StoreTablesTest, AReplayedDeadLetterThatFailsAgainIsOneDeadLetter) {
  auto& o = this->b_.outbox();
  auto& dead = this->b_.dead_letters();
  MH_ASSERT_OK(o.Add({Item(1)}));
  const int64_t id = o.ClaimDue(Clock::now(), 1)->at(0).id;
  MH_ASSERT_OK(o.MoveToDeadLetters(id, 3, "HTTP 500"));
  EXPECT_EQ(*dead.ReplayAll(), 1);
  MH_ASSERT_OK(o.MoveToDeadLetters(o.ClaimDue(Clock::now(), 1)->at(0).id, 4, "HTTP 410"));
  auto list = dead.List();
  MH_ASSERT_OK(list);
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].id, id);
  EXPECT_EQ((*list)[0].attempts, 4);
  EXPECT_EQ((*list)[0].last_error, "HTTP 410");
}

TYPED_TEST(StoreTablesTest, ARowReadsTheSameThroughEveryQuery) {
  auto& o = this->b_.outbox();
  auto& dead = this->b_.dead_letters();
  OutboxItem item = Item(9, "hook:archive");
  item.uidvalidity = 4000000000u;
  item.payload = R"({"subject":"Grüße ✓"})";
  MH_ASSERT_OK(o.Add({item}));
  auto listed = o.ListPending();
  auto claimed = o.ClaimDue(Clock::now(), 1);
  MH_ASSERT_OK(listed);
  MH_ASSERT_OK(claimed);
  ASSERT_EQ(listed->size(), 1u);
  ASSERT_EQ(claimed->size(), 1u);
  for (const store::Delivery* d : {&(*listed)[0], &(*claimed)[0]}) {
    EXPECT_EQ(d->item.event_id, "evt_9");
    EXPECT_EQ(d->item.target, "hook:archive");
    EXPECT_EQ(d->item.account, "support");
    EXPECT_EQ(d->item.folder, "INBOX");
    EXPECT_EQ(d->item.uidvalidity, 4000000000u);
    EXPECT_EQ(d->item.uid, 9u);
    EXPECT_EQ(d->item.payload, item.payload);
    EXPECT_EQ(d->attempts, 0);
    EXPECT_EQ(d->next_attempt_at, d->created_at);
    EXPECT_LT(std::chrono::abs(Clock::now() - d->created_at), std::chrono::minutes(1));
  }
  const store::Delivery& d = (*claimed)[0];
  EXPECT_EQ((*listed)[0].id, d.id);
  MH_ASSERT_OK(o.MoveToDeadLetters(d.id, 3, "HTTP 410"));
  auto letters = dead.List();
  auto info = dead.ListInfo();
  MH_ASSERT_OK(letters);
  MH_ASSERT_OK(info);
  ASSERT_EQ(letters->size(), 1u);
  ASSERT_EQ(info->size(), 1u);
  const store::DeadLetter& l = (*letters)[0];
  const store::DeadLetterInfo& i = (*info)[0];
  EXPECT_EQ(l.id, d.id);
  EXPECT_EQ(l.item.event_id, d.item.event_id);
  EXPECT_EQ(l.item.target, d.item.target);
  EXPECT_EQ(l.item.uidvalidity, d.item.uidvalidity);
  EXPECT_EQ(l.item.uid, d.item.uid);
  EXPECT_EQ(l.item.payload, item.payload);
  EXPECT_EQ(l.attempts, 3);
  EXPECT_EQ(l.created_at, d.created_at);
  EXPECT_LT(std::chrono::abs(Clock::now() - l.failed_at), std::chrono::minutes(1));
  EXPECT_EQ(l.last_error, "HTTP 410");
  EXPECT_EQ(i.id, l.id);
  EXPECT_EQ(i.event_id, l.item.event_id);
  EXPECT_EQ(i.target, l.item.target);
  EXPECT_EQ(i.account, l.item.account);
  EXPECT_EQ(i.folder, l.item.folder);
  EXPECT_EQ(i.uidvalidity, l.item.uidvalidity);
  EXPECT_EQ(i.uid, l.item.uid);
  EXPECT_EQ(i.attempts, l.attempts);
  EXPECT_EQ(i.created_at, l.created_at);
  EXPECT_EQ(i.failed_at, l.failed_at);
  EXPECT_EQ(i.last_error, l.last_error);
}

// ---- payloads in pieces: inline or in bodies ----

TYPED_TEST(StoreTablesTest, ASmallEventInPiecesIsStoredInlineAndALargeOneInBodies) {
  auto& o = this->b_.outbox();
  std::vector<OutboxItem> items = {Item(1), Item(2)};
  items[0].payload.clear();
  items[0].pieces = {Piece(10, 'a'), Piece(4000, 'b'), Piece(86, 'c')};  // 4096 bytes: inline
  items[1].payload.clear();
  items[1].pieces = {Piece(10, 'a'), Piece(4087, 'b')};  // 4097: in bodies
  MH_ASSERT_OK(o.Add(items));
  EXPECT_EQ(this->b_.BodyRows(), 1);
  auto due = o.ClaimDue(Clock::now(), 10);
  MH_ASSERT_OK(due);
  ASSERT_EQ(due->size(), 2u);
  EXPECT_TRUE((*due)[0].item.payload == std::string(10, 'a') + std::string(4000, 'b') + std::string(86, 'c'));
  EXPECT_TRUE((*due)[1].item.payload == std::string(10, 'a') + std::string(4087, 'b'));
  MH_ASSERT_OK(o.MoveToDeadLetters((*due)[0].id, 1, "400"));
  auto dead = this->b_.dead_letters().List();
  MH_ASSERT_OK(dead);
  ASSERT_EQ(dead->size(), 1u);
  EXPECT_EQ((*dead)[0].item.payload.size(), 4096u);
  MH_ASSERT_OK(o.MarkDelivered((*due)[1].id));
  EXPECT_EQ(this->b_.BodyRows(), 0);
}

TYPED_TEST(StoreTablesTest, PayloadInPiecesIsStoredWholeAndSurvivesDeadLetters) {
  auto& o = this->b_.outbox();
  auto& dead = this->b_.dead_letters();
  // A content piece over the 1 MiB write step, shared by two targets.
  auto content = std::make_shared<const std::string>(3 * (1 << 20) + 5, 'Q');
  std::vector<OutboxItem> items = {Item(1), Item(1, "hook:archive"), Item(2)};
  for (size_t i = 0; i < 2; ++i) {
    items[i].payload.clear();
    items[i].pieces = {std::make_shared<const std::string>(R"({"c":")"), content,
                       std::make_shared<const std::string>(R"("})")};
  }
  const std::string joined = R"({"c":")" + *content + R"("})";
  MH_ASSERT_OK(o.Add(items));
  MH_ASSERT_OK(o.Add(items));  // a replay stores nothing twice
  EXPECT_EQ(*o.PendingCount(), 3);
  EXPECT_EQ(this->b_.BodyRows(), 2);

  auto due = o.ClaimDue(Clock::now(), 10);
  MH_ASSERT_OK(due);
  ASSERT_EQ(due->size(), 3u);
  EXPECT_TRUE((*due)[0].item.payload == joined);
  EXPECT_TRUE((*due)[1].item.payload == joined);
  EXPECT_EQ((*due)[2].item.payload, R"({"uid":2})");  // a small one stays in `payload`

  MH_ASSERT_OK(o.MoveToDeadLetters((*due)[0].id, 1, "400"));
  auto list = dead.List();
  MH_ASSERT_OK(list);
  ASSERT_EQ(list->size(), 1u);
  EXPECT_TRUE((*list)[0].item.payload == joined);
  EXPECT_EQ(*dead.ReplayAll(), 1);
  auto pending = o.ListPending();
  MH_ASSERT_OK(pending);
  ASSERT_EQ(pending->size(), 3u);
  for (const auto& d : *pending) {
    if (d.item.uid == 1) {
      EXPECT_TRUE(d.item.payload == joined) << d.item.target;
    }
  }
  // Delivered or dropped, a payload's body goes with its row.
  for (const auto& d : *pending) MH_ASSERT_OK(o.MarkDelivered(d.id));
  EXPECT_EQ(this->b_.BodyRows(), 0);
  std::vector<OutboxItem> third = {Item(3)};
  third[0].payload.clear();
  third[0].pieces = items[0].pieces;
  MH_ASSERT_OK(o.Add(third));
  EXPECT_EQ(this->b_.BodyRows(), 1);
  MH_ASSERT_OK(o.MoveToDeadLetters(o.ClaimDue(Clock::now(), 10)->at(0).id, 1, "400"));
  EXPECT_EQ(*dead.DropAll(), 1);
  EXPECT_EQ(this->b_.BodyRows(), 0);
}

// ---- post-actions ----

store::PostAction Action(uint32_t uid) { return {"evt_" + std::to_string(uid), "support", "INBOX", 7, uid}; }

TYPED_TEST(StoreTablesTest, APostActionIsReadyOnceEveryTargetOfItsEventSucceeded) {
  auto& o = this->b_.outbox();
  auto& p = this->b_.post_actions();
  MH_ASSERT_OK(o.Add({Item(3), Item(3, "hook:archive"), Item(2)}));
  MH_ASSERT_OK(p.Add({Action(3), Action(2), Action(1)}));
  MH_ASSERT_OK(p.Add({Action(3)}));  // a second one for an event is ignored
  EXPECT_EQ(*p.Count(), 3);
  store::PostAction other = Action(4);
  other.folder = "Archive";
  MH_ASSERT_OK(p.Add({other}));
  // Only UID 1 has no row left; another folder's is not this folder's.
  auto ready = p.Ready("support", "INBOX", 10);
  MH_ASSERT_OK(ready);
  ASSERT_EQ(ready->size(), 1u);
  EXPECT_EQ((*ready)[0].event_id, "evt_1");
  EXPECT_EQ((*ready)[0].uidvalidity, 7u);
  EXPECT_EQ((*ready)[0].uid, 1u);
  // UID 3 waits for both targets; a dead letter holds it too.
  auto due = o.ClaimDue(Clock::now(), 10);
  MH_ASSERT_OK(due);
  for (const auto& d : *due) {
    if (d.item.target == "hook:archive") {
      MH_ASSERT_OK(o.MoveToDeadLetters(d.id, 1, "exit 1"));
    } else {
      MH_ASSERT_OK(o.MarkDelivered(d.id));
    }
  }
  ready = p.Ready("support", "INBOX", 10);
  MH_ASSERT_OK(ready);
  ASSERT_EQ(ready->size(), 2u);  // lowest UID first
  EXPECT_EQ((*ready)[0].uid, 1u);
  EXPECT_EQ((*ready)[1].uid, 2u);
  EXPECT_EQ(p.Ready("support", "INBOX", 1)->size(), 1u);
  EXPECT_EQ(*this->b_.dead_letters().DropAll(), 1);
  EXPECT_EQ(p.Ready("support", "INBOX", 10)->size(), 3u);
  MH_ASSERT_OK(p.Finish("evt_1"));
  MH_ASSERT_OK(p.Finish("evt_1"));
  EXPECT_EQ(*p.Count(), 3);
  EXPECT_EQ(p.Ready("support", "INBOX", 10)->front().uid, 2u);
}

// ---- smtp recipients ----

using RecipientStatus = store::RecipientState::Status;
const store::TimePoint kT0 = store::TimePoint(milliseconds(1'790'000'000'000));

TYPED_TEST(StoreTablesTest, RecipientStatesAreRecordedOverwrittenAndReadInByteOrder) {
  auto& r = this->b_.smtp_recipients();
  MH_ASSERT_OK(r.Record("smtp:desk", "evt_1",
                        {{"desk@example.com", RecipientStatus::kSent, "250 ok", kT0},
                         {"audit@example.com", RecipientStatus::kRefused, "550 5.1.1 no such user", kT0},
                         {"Zed@example.com", RecipientStatus::kSent, "", kT0}}));
  auto rows = r.ForEvent("smtp:desk", "evt_1");
  MH_ASSERT_OK(rows);
  ASSERT_EQ(rows->size(), 3u);
  // Byte order, as SQLite: upper case first. (The test cluster's locale is
  // C; a database in en_US would put Zed last without COLLATE "C".)
  EXPECT_EQ((*rows)[0].recipient, "Zed@example.com");
  EXPECT_EQ((*rows)[1].recipient, "audit@example.com");
  EXPECT_EQ((*rows)[1].status, RecipientStatus::kRefused);
  EXPECT_EQ((*rows)[1].reply, "550 5.1.1 no such user");
  EXPECT_EQ((*rows)[2].status, RecipientStatus::kSent);
  EXPECT_EQ((*rows)[2].at, kT0);
  MH_ASSERT_OK(r.Record("smtp:desk", "evt_1",
                        {{"audit@example.com", RecipientStatus::kSent, "250 2.0.0", kT0 + milliseconds(5)}}));
  rows = r.ForEvent("smtp:desk", "evt_1");
  ASSERT_EQ(rows->size(), 3u);
  EXPECT_EQ((*rows)[1].status, RecipientStatus::kSent);
  EXPECT_EQ((*rows)[1].reply, "250 2.0.0");
  EXPECT_EQ((*rows)[1].at, kT0 + milliseconds(5));
  // Another event or target sees none of them; Forget drops the event's.
  EXPECT_TRUE(r.ForEvent("smtp:desk", "evt_2")->empty());
  EXPECT_TRUE(r.ForEvent("smtp:other", "evt_1")->empty());
  MH_ASSERT_OK(r.Forget("smtp:desk", "evt_1"));
  EXPECT_TRUE(r.ForEvent("smtp:desk", "evt_1")->empty());
}

TYPED_TEST(StoreTablesTest, PruningKeepsTheRecipientsOfPendingDeliveriesAndDeadLetters) {
  auto& o = this->b_.outbox();
  auto& r = this->b_.smtp_recipients();
  MH_ASSERT_OK(o.Add({Item(1, "smtp:desk"), Item(2, "smtp:desk"), Item(3, "smtp:desk")}));
  for (const char* event : {"evt_1", "evt_2", "evt_3", "evt_gone"}) {
    MH_ASSERT_OK(r.Record("smtp:desk", event, {{"desk@example.com", RecipientStatus::kSent, "250 ok", kT0}}));
  }
  MH_ASSERT_OK(r.Record("smtp:other", "evt_3", {{"desk@example.com", RecipientStatus::kSent, "250 ok", kT0}}));
  auto due = o.ClaimDue(Clock::now(), 10);
  MH_ASSERT_OK(due);
  ASSERT_EQ(due->size(), 3u);
  for (const auto& d : *due) {
    if (d.item.event_id == "evt_1") MH_ASSERT_OK(o.MarkDelivered(d.id));
    if (d.item.event_id == "evt_2") MH_ASSERT_OK(o.MoveToDeadLetters(d.id, 5, "retries exhausted"));
  }
  MH_ASSERT_OK(r.PruneEnded());
  EXPECT_TRUE(r.ForEvent("smtp:desk", "evt_1")->empty());     // delivered: ended
  EXPECT_TRUE(r.ForEvent("smtp:desk", "evt_gone")->empty());  // no row anywhere
  EXPECT_TRUE(r.ForEvent("smtp:other", "evt_3")->empty());    // the event's row is another target's
  EXPECT_EQ(r.ForEvent("smtp:desk", "evt_2")->size(), 1u);    // a replay must skip desk
  EXPECT_EQ(r.ForEvent("smtp:desk", "evt_3")->size(), 1u);    // still in the outbox
}

// ---- smtp replies ----

using store::ReplyReservation;
using namespace std::chrono_literals;

store::SentReply Reply(const std::string& event, const std::string& sender, const std::string& message_id,
                       store::TimePoint at) {
  return store::SentReply{"smtp:ack", sender, message_id, event, at};
}

// The reservation's decision, or kRateLimited after a failure (reported).
ReplyReservation Reserve(store::SmtpSent& sent, const store::SentReply& reply, store::ReplyLimit limit = {}) {
  auto r = sent.ReserveReply(reply, limit);
  if (!r) {
    ADD_FAILURE() << r.error().ToString();
    return ReplyReservation::kRateLimited;
  }
  return *r;
}

TYPED_TEST(StoreTablesTest, AMessageIsAnsweredOnceButARetryOfTheSameEventPasses) {
  auto& sent = this->b_.smtp_sent();
  EXPECT_EQ(Reserve(sent, Reply("evt_1", "ann@example.org", "<m1@x>", kT0)), ReplyReservation::kReserved);
  EXPECT_EQ(Reserve(sent, Reply("evt_1", "ann@example.org", "<m1@x>", kT0 + 5min)), ReplyReservation::kReserved);
  EXPECT_EQ(*sent.SentSince("smtp:ack", "ann@example.org", kT0 - 1ms), 1);
  EXPECT_EQ(Reserve(sent, Reply("evt_2", "ann@example.org", "<m1@x>", kT0 + 48h), {10, 24h}),
            ReplyReservation::kAlreadyAnswered);
  EXPECT_TRUE(*sent.AlreadyAnswered("smtp:ack", "<m1@x>"));
  EXPECT_FALSE(*sent.AlreadyAnswered("smtp:ack", "<m2@x>"));
  EXPECT_FALSE(*sent.AlreadyAnswered("smtp:ack", ""));
  // Another target answers the same message on its own.
  auto other = sent.ReserveReply({"smtp:other", "ann@example.org", "<m1@x>", "evt_2", kT0}, {});
  MH_ASSERT_OK(other);
  EXPECT_EQ(*other, ReplyReservation::kReserved);
  // Messages without a Message-ID are never "answered" by that alone.
  EXPECT_EQ(Reserve(sent, Reply("evt_3", "bob@example.org", "", kT0), {10, 24h}), ReplyReservation::kReserved);
  EXPECT_EQ(Reserve(sent, Reply("evt_4", "bob@example.org", "", kT0), {10, 24h}), ReplyReservation::kReserved);
}

TYPED_TEST(StoreTablesTest, TheReplyLimitCountsPerSenderCaseInsensitivelyWithinTheWindow) {
  auto& sent = this->b_.smtp_sent();
  store::ReplyLimit two{2, 24h};
  EXPECT_EQ(Reserve(sent, Reply("evt_1", "Ann@Example.org", "<1@x>", kT0), two), ReplyReservation::kReserved);
  EXPECT_EQ(Reserve(sent, Reply("evt_2", "ann@example.ORG", "<2@x>", kT0 + 1h), two), ReplyReservation::kReserved);
  EXPECT_EQ(Reserve(sent, Reply("evt_3", "ANN@example.org", "<3@x>", kT0 + 2h), two), ReplyReservation::kRateLimited);
  EXPECT_EQ(*sent.SentSince("smtp:ack", "ann@example.org", kT0 - 1ms), 2);
  EXPECT_EQ(Reserve(sent, Reply("evt_4", "bob@example.org", "<4@x>", kT0 + 2h), two), ReplyReservation::kReserved);
  // At the window's end the first reply has left it (one ms before, not).
  EXPECT_EQ(Reserve(sent, Reply("evt_5", "ann@example.org", "<5@x>", kT0 + 24h - 1ms), two),
            ReplyReservation::kRateLimited);
  EXPECT_EQ(Reserve(sent, Reply("evt_5", "ann@example.org", "<5@x>", kT0 + 24h), two), ReplyReservation::kReserved);
  EXPECT_EQ(*sent.SentSince("smtp:ack", "ann@example.org", kT0), 2);  // strictly after
}

TYPED_TEST(StoreTablesTest, AReleasedReplyNeitherCountsNorMarksAndPruningForgetsOlderRows) {
  auto& sent = this->b_.smtp_sent();
  ASSERT_EQ(Reserve(sent, Reply("evt_1", "ann@example.org", "<1@x>", kT0)), ReplyReservation::kReserved);
  MH_ASSERT_OK(sent.ReleaseReply("smtp:ack", "evt_1"));
  EXPECT_FALSE(*sent.AlreadyAnswered("smtp:ack", "<1@x>"));
  EXPECT_EQ(Reserve(sent, Reply("evt_2", "ann@example.org", "<2@x>", kT0 + 1min)), ReplyReservation::kReserved);
  MH_EXPECT_OK(sent.ReleaseReply("smtp:ack", "evt_none"));
  MH_ASSERT_OK(sent.RecordSent(Reply("evt_3", "Bob@example.org", "<3@x>", kT0 + 1h)));
  MH_ASSERT_OK(sent.RecordSent(Reply("evt_3", "bob@example.org", "<3@x>", kT0 + 2h)));  // ignored
  EXPECT_EQ(*sent.SentSince("smtp:ack", "BOB@example.org", kT0), 1);
  MH_ASSERT_OK(sent.PruneSentBefore(kT0 + 1h));
  EXPECT_FALSE(*sent.AlreadyAnswered("smtp:ack", "<2@x>"));
  EXPECT_TRUE(*sent.AlreadyAnswered("smtp:ack", "<3@x>"));
}

// ---- fingerprints ----

store::Fingerprint Fp(uint32_t uidvalidity, uint32_t uid, const std::string& key, uint64_t size) {
  return store::Fingerprint{uidvalidity, uid, key, size};
}

TYPED_TEST(StoreTablesTest, AFingerprintClaimMatchesKeyAndSizeOnceAndMovesTheRowToTheNewUid) {
  auto& f = this->b_.fingerprints();
  MH_ASSERT_OK(
      f.Add("support", "INBOX",
            {Fp(7, 1, "<a@x>", 100), Fp(7, 2, "<same@x>", 200), Fp(7, 3, "sha256:ab", 300), Fp(7, 4, "<dup@x>", 50)}));
  MH_ASSERT_OK(f.Add("support", "INBOX", {Fp(7, 1, "<changed@x>", 1)}));  // a replay changes nothing
  MH_ASSERT_OK(f.Add("other", "INBOX", {Fp(7, 9, "<b@x>", 10)}));
  EXPECT_EQ(f.List("support", "INBOX", 7)->front(), Fp(7, 1, "<a@x>", 100));
  EXPECT_EQ(*f.Count("support", "INBOX"), 4);
  // a's copy (new UID), a message sharing <same@x> with another size, the
  // header-hash one, two copies of <dup@x> (one was handled), another
  // account's Message-ID.
  std::vector<store::Fingerprint> now = {
      Fp(8, 10, "<a@x>", 100),  Fp(8, 11, "<same@x>", 201), Fp(8, 12, "sha256:ab", 300), Fp(8, 13, "<dup@x>", 50),
      Fp(8, 14, "<dup@x>", 50), Fp(8, 15, "<b@x>", 10),     Fp(8, 16, "<same@x>", 200)};
  auto missed = f.Claim("support", "INBOX", now);
  MH_ASSERT_OK(missed);
  EXPECT_EQ(*missed, (std::vector<uint32_t>{11, 14, 15}));
  EXPECT_EQ(*f.List("support", "INBOX", 7), std::vector<store::Fingerprint>{});
  EXPECT_EQ(*f.List("support", "INBOX", 8),
            (std::vector<store::Fingerprint>{Fp(8, 10, "<a@x>", 100), Fp(8, 12, "sha256:ab", 300),
                                             Fp(8, 13, "<dup@x>", 50), Fp(8, 16, "<same@x>", 200)}));
  // Matching again finds the claimed rows where they are now.
  missed = f.Claim("support", "INBOX", now);
  MH_ASSERT_OK(missed);
  EXPECT_EQ(*missed, (std::vector<uint32_t>{11, 14, 15}));
  EXPECT_FALSE(*f.HasOther("support", "INBOX", 8));
  EXPECT_TRUE(*f.HasOther("other", "INBOX", 8));
  EXPECT_FALSE(*f.HasOther("other", "INBOX", 7));
  EXPECT_FALSE(*f.HasOther("nobody", "INBOX", 7));
}

TYPED_TEST(StoreTablesTest, OnlyTwoFingerprintGenerationsAreKeptAndAbsentMessagesAreForgotten) {
  auto& f = this->b_.fingerprints();
  MH_ASSERT_OK(f.Add("support", "INBOX", {Fp(5, 1, "<a>", 1), Fp(6, 1, "<b>", 1), Fp(7, 1, "<c>", 1)}));
  MH_ASSERT_OK(f.Add("support", "Archive", {Fp(5, 1, "<a>", 1)}));
  EXPECT_TRUE(*f.HasOther("support", "INBOX", 7));
  MH_ASSERT_OK(f.KeepGenerations("support", "INBOX", 6, 7));
  EXPECT_EQ(*f.Count("support", "INBOX"), 2);
  EXPECT_EQ(*f.Count("support", "Archive"), 1);  // another folder's are its own
  EXPECT_EQ(f.List("support", "INBOX", 5)->size(), 0u);
  MH_ASSERT_OK(f.Add("support", "INBOX", {Fp(7, 2, "<d>", 1), Fp(7, 3, "<e>", 1), Fp(7, 9, "<f>", 1)}));
  const std::vector<uint32_t> present = {1, 3};
  MH_ASSERT_OK(f.ForgetAbsent("support", "INBOX", 7, 1, 5, present));
  auto rows = f.List("support", "INBOX", 7);
  MH_ASSERT_OK(rows);
  std::vector<uint32_t> left;
  for (const store::Fingerprint& fp : *rows) left.push_back(fp.uid);
  EXPECT_EQ(left, (std::vector<uint32_t>{1, 3, 9}));     // 9 is outside the window
  EXPECT_EQ(f.List("support", "INBOX", 6)->size(), 1u);  // another UIDVALIDITY is untouched
}

// ---- PostgreSQL only: a shared outbox ----

// Two dispatchers (two connections, as two replicas) claim at once: the
// second one skips the rows the first has locked in its open claim instead
// of waiting for them (it would wait out statement_timeout, 30 s), and no
// row is claimed twice. The first claim also locks the row it peeked at to
// tell `more` (not leased): claimable again once that claim commits.
TEST(PgOutboxTest, TwoDispatchersClaimingAtOnceTakeDifferentRowsWithoutWaiting) {
  if (std::string why = PgBackend::WhyCannotRun(); !why.empty()) GTEST_SKIP() << why;
  PgBackend first;
  MH_ASSERT_OK(first.Open());
  MH_ASSERT_OK(first.outbox().Add({Item(1), Item(2), Item(3), Item(4)}));
  MH_ASSERT_OK_AND_ASSIGN(auto conn, first.Connect());
  PgBodies bodies(*conn);
  PgOutbox second(*conn, bodies, "00000000-0000-4000-8000-000000000002");
  const auto now = Clock::now();
  std::vector<store::Delivery> by_first;
  std::vector<store::Delivery> by_second;
  auto claim_both = [&]() -> util::Status {
    auto rows = first.outbox().ClaimDue(now, 1);
    if (!rows) return rows.error();
    by_first = std::move(*rows);
    const auto started = std::chrono::steady_clock::now();
    auto others = second.ClaimDue(now, 10);
    if (!others) return others.error();
    by_second = std::move(*others);
    EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(5)) << "the second claim waited";
    return util::Ok();
  };
  // The first claim joins this transaction: its locks last until the end.
  MH_ASSERT_OK(first.connection().InTransaction(claim_both));
  ASSERT_EQ(by_first.size(), 1u);
  EXPECT_EQ(by_first[0].item.event_id, "evt_1");
  ASSERT_EQ(by_second.size(), 2u);
  EXPECT_EQ(by_second[0].item.event_id, "evt_3");
  EXPECT_EQ(by_second[1].item.event_id, "evt_4");
  // Committed: the peeked row is free, the leased ones are not.
  auto peeked = second.ClaimDue(now, 10);
  MH_ASSERT_OK(peeked);
  ASSERT_EQ(peeked->size(), 1u);
  EXPECT_EQ((*peeked)[0].item.event_id, "evt_2");
  EXPECT_TRUE(second.ClaimDue(now, 10)->empty());
  // The second's leases name it: giving back all of its own leaves the first's.
  MH_ASSERT_OK(second.ReleaseAllLeases());
  auto again = second.ClaimDue(now, 10);
  MH_ASSERT_OK(again);
  std::set<std::string> events;
  for (const auto& d : *again) events.insert(d.item.event_id);
  EXPECT_EQ(events, (std::set<std::string>{"evt_2", "evt_3", "evt_4"}));
}

// An error text is not always UTF-8 (a hook's stderr in Latin-1): SQLite
// stored its bytes; PostgreSQL text refuses them, so the PostgreSQL tables
// store it with U+FFFD for each bad byte instead of failing the retry.
TEST(PgOutboxTest, AnErrorTextThatIsNotUtf8IsStoredWithReplacements) {
  if (std::string why = PgBackend::WhyCannotRun(); !why.empty()) GTEST_SKIP() << why;
  PgBackend pg;
  MH_ASSERT_OK(pg.Open());
  MH_ASSERT_OK(pg.outbox().Add({Item(1), Item(2)}));
  const std::string latin1 = "hook:x: exit code 1; caf\xe9";
  const std::string replaced = "hook:x: exit code 1; caf\xEF\xBF\xBD";
  const auto now = Clock::now();
  auto due = pg.outbox().ClaimDue(now, 2);
  MH_ASSERT_OK(due);
  ASSERT_EQ(due->size(), 2u);
  MH_ASSERT_OK(pg.outbox().ScheduleRetry((*due)[0].id, 1, now, latin1));
  MH_ASSERT_OK(pg.outbox().MoveToDeadLetters((*due)[1].id, 1, latin1));
  EXPECT_EQ(pg.outbox().ListPending()->at(0).last_error, replaced);
  EXPECT_EQ(pg.dead_letters().List()->at(0).last_error, replaced);
  MH_ASSERT_OK(pg.attempts().Begin("support", "INBOX", 7, std::array<uint32_t, 1>{1}));
  MH_ASSERT_OK(pg.attempts().RecordFailure("support", "INBOX", 1, "hook.failed", latin1, false));
  EXPECT_EQ(pg.attempts().List("support", "INBOX", 7)->at(0).last_error, replaced);
}

// A raw 8-bit Message-ID (not UTF-8) is recorded and matched by a digest of
// its bytes (once: a second copy finds the row taken).
TEST(PgFingerprintsTest, AKeyThatIsNotUtf8IsRecordedAndMatched) {
  if (std::string why = PgBackend::WhyCannotRun(); !why.empty()) GTEST_SKIP() << why;
  PgBackend pg;
  MH_ASSERT_OK(pg.Open());
  MH_ASSERT_OK(pg.fingerprints().Add("support", "INBOX", {Fp(7, 1, "<caf\xe9@x>", 5)}));
  auto missed = pg.fingerprints().Claim("support", "INBOX", {Fp(8, 2, "<caf\xe9@x>", 5), Fp(8, 3, "<caf\xe9@x>", 5)});
  MH_ASSERT_OK(missed);
  EXPECT_EQ(*missed, std::vector<uint32_t>{3});
  EXPECT_EQ(pg.fingerprints().List("support", "INBOX", 8)->at(0).key,
            "sha256:ddafac5125aeecc67dfe0f09ac4d432b31813b54f148d2ab8c280ac9b28ec8fb");  // of "<caf\xe9@x>"
}

// Two raw 8-bit Message-IDs differing in one invalid byte are two messages:
// a lossy repair (U+FFFD for each) would match the new one to the old one's
// fingerprint and take it for handled (lost).
TEST(PgFingerprintsTest, KeysDifferingOnlyInAnInvalidByteDoNotMatch) {
  if (std::string why = PgBackend::WhyCannotRun(); !why.empty()) GTEST_SKIP() << why;
  PgBackend pg;
  MH_ASSERT_OK(pg.Open());
  MH_ASSERT_OK(pg.fingerprints().Add("support", "INBOX", {Fp(7, 1, "<caf\xe9@x>", 5)}));
  auto missed = pg.fingerprints().Claim("support", "INBOX", {Fp(8, 2, "<caf\xe8@x>", 5)});
  MH_ASSERT_OK(missed);
  EXPECT_EQ(*missed, std::vector<uint32_t>{2}) << "a different message matched";
}

// Recipients come back in byte order (as SQLite's BINARY) even where the
// column's collation is not C: the cases above run on a C-locale cluster,
// where any order by the column's collation is byte order too. ICU's root
// collation ("und-x-icu", in PostgreSQL built with ICU) would put Zed last.
TEST(PgSmtpRecipientsTest, ByteOrderHoldsUnderANonCCollation) {
  if (std::string why = PgBackend::WhyCannotRun(); !why.empty()) GTEST_SKIP() << why;
  PgBackend pg;
  MH_ASSERT_OK(pg.Open());
  MH_ASSERT_OK(pg.connection().Prepare("test.icu", "SELECT count(*) FROM pg_collation WHERE collname = 'und-x-icu'"));
  auto icu = pg.connection().Exec("test.icu");
  MH_ASSERT_OK(icu);
  if (*icu->Int64(0, 0) == 0) GTEST_SKIP() << "this PostgreSQL has no ICU collation und-x-icu";
  MH_ASSERT_OK(
      pg.connection().Run("ALTER TABLE smtp_recipients ALTER COLUMN recipient TYPE text COLLATE \"und-x-icu\""));
  MH_ASSERT_OK(pg.smtp_recipients().Record("smtp:desk", "evt_1",
                                           {{"desk@example.com", RecipientStatus::kSent, "", kT0},
                                            {"audit@example.com", RecipientStatus::kSent, "", kT0},
                                            {"Zed@example.com", RecipientStatus::kSent, "", kT0}}));
  auto rows = pg.smtp_recipients().ForEvent("smtp:desk", "evt_1");
  MH_ASSERT_OK(rows);
  ASSERT_EQ(rows->size(), 3u);
  EXPECT_EQ((*rows)[0].recipient, "Zed@example.com");
  EXPECT_EQ((*rows)[1].recipient, "audit@example.com");
  EXPECT_EQ((*rows)[2].recipient, "desk@example.com");
}

// Two replicas reserve a reply to the same sender at once: the second waits
// (seen in pg_stat_activity) for the first's transaction, then counts its
// reply and is refused; without the lock both would pass a limit of one.
TEST(PgSmtpSentTest, ReservationsOfOneSenderAreSerialised) {
  if (std::string why = PgBackend::WhyCannotRun(); !why.empty()) GTEST_SKIP() << why;
  PgBackend first;
  MH_ASSERT_OK(first.Open());
  MH_ASSERT_OK_AND_ASSIGN(auto conn, first.Connect());
  MH_ASSERT_OK_AND_ASSIGN(auto watcher, first.Connect());
  MH_ASSERT_OK(
      watcher->Prepare("waiting", "SELECT count(*) FROM pg_stat_activity WHERE pid = $1 AND wait_event_type = 'Lock'"));
  PgSmtpSent second(*conn);
  const int second_pid = conn->backend_pid();
  const store::ReplyLimit one{1, 24h};
  util::Result<ReplyReservation> second_result = ReplyReservation::kReserved;
  std::thread other;
  bool waited = false;
  // The first reservation's transaction stays open while the second starts.
  MH_EXPECT_OK(first.connection().InTransaction([&]() -> util::Status {
    EXPECT_EQ(Reserve(first.smtp_sent(), Reply("evt_1", "ann@example.org", "<1@x>", kT0), one),
              ReplyReservation::kReserved);
    other =
        std::thread([&] { second_result = second.ReserveReply(Reply("evt_2", "Ann@example.org", "<2@x>", kT0), one); });
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!waited && std::chrono::steady_clock::now() < deadline) {
      auto rows = watcher->Exec("waiting", {second_pid});
      waited = rows.ok() && rows->Int64(0, 0).ok() && *rows->Int64(0, 0) == 1;
      if (!waited) std::this_thread::sleep_for(milliseconds(10));
    }
    return util::Ok();  // the commit lets the second go on
  }));
  if (other.joinable()) other.join();
  EXPECT_TRUE(waited) << "the second reservation did not wait for the first";
  MH_ASSERT_OK(second_result);
  EXPECT_EQ(*second_result, ReplyReservation::kRateLimited);
  EXPECT_EQ(*second.SentSince("smtp:ack", "ann@example.org", kT0 - 1ms), 1);
}

}  // namespace
}  // namespace mailhook::pgstore
