// Store::CommitMessages, Housekeep and the test hooks behave the same over
// SqliteStore and PgStore (a typed test: each case over a fresh SQLite state
// dir and over a fresh schema on a private PostgreSQL, PostgresServer; the
// PostgreSQL cases skip with the reason when PostgreSQL is missing): the
// events and the watermark move together, a replay creates no second row, a
// commit without a watermark leaves it, a throw at any fault point leaves
// nothing, each commit fires its fault points once, statements are reused.
// PgStore only: the fence (pg_leases.h) checked first in the commit — a
// current one passes; after another replica took the lease over, the old
// one fails with store.fenced and writes nothing; a fence source without a
// lease fails closed; no fence source checks nothing; path() has no password.

#include <gtest/gtest.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "pgstore/pg_connection.h"
#include "pgstore/pg_leases.h"
#include "pgstore/pg_schema.h"
#include "pgstore/pg_store.h"
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

std::optional<Watermark> MarkOf(store::Store& store) {
  auto m = store.watermarks().Get("support", "INBOX");
  EXPECT_TRUE(m.ok()) << m.error().ToString();
  return m.ok() ? *m : std::nullopt;
}

int64_t Pending(store::Store& store) {
  auto n = store.outbox().PendingCount();
  EXPECT_TRUE(n.ok()) << n.error().ToString();
  return n.ok() ? *n : -1;
}

std::vector<uint32_t> AttemptedUids(store::Store& store) {
  std::vector<uint32_t> uids;
  auto list = store.attempts().List("support", "INBOX", 7);
  EXPECT_TRUE(list.ok()) << list.error().ToString();
  if (list.ok()) {
    for (const auto& a : *list) uids.push_back(a.uid);
  }
  return uids;
}

std::string CodeOf(const util::Status& s) { return s.ok() ? "ok" : s.error().code(); }

// ---- the backends: each makes a fresh, empty state and opens stores on it ----

/// SQLite: OpenStore in a temp dir.
class SqliteStoreBackend {
 public:
  static std::string WhyCannotRun() { return ""; }

  /// A store on this state (a connection of its own).
  util::Result<std::unique_ptr<store::Store>> OpenStore() { return store::OpenStore({.state_dir = dir_.path()}); }

 private:
  TempDir dir_;
};

/// The private PostgreSQL of this test process, started on first use
/// (gtest_discover_tests runs each case in a process of its own).
PostgresServer& Server() {
  static PostgresServer server;  // stopped and removed at exit
  return server;
}

/// PostgreSQL: PgStore over connections whose search_path is a fresh schema,
/// so cases share nothing.
class PgStoreBackend {
 public:
  static std::string WhyCannotRun() { return PostgresServer::WhyCannotRun(); }

  /// A connection on this state's schema (created on first use).
  util::Result<std::unique_ptr<PgConnection>> Connect() {
    if (!Server().running()) {
      if (auto s = Server().Start(); !s) return s.error();
    }
    auto conn = PgConnection::Connect(Server().ConnectionUrl());
    if (!conn) return conn.error();
    if (schema_.empty()) {
      static int serial = 0;
      schema_ = "c" + std::to_string(getpid()) + "_" + std::to_string(++serial);
      if (auto s = (*conn)->Run("CREATE SCHEMA " + schema_); !s) return s.error();
    }
    if (auto s = (*conn)->Run("SET search_path TO " + schema_); !s) return s.error();
    return conn;
  }

  util::Result<std::unique_ptr<store::Store>> OpenStore(PgStoreOptions options = {}) {
    auto conn = Connect();
    if (!conn) return conn.error();
    return PgStore::Open(std::move(conn).value(), std::move(options));
  }

 private:
  std::string schema_;
};

template <typename Backend>
class StoreCommitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::string why = Backend::WhyCannotRun(); !why.empty()) GTEST_SKIP() << why;
    store_ = Open();
    ASSERT_TRUE(store_);
  }

  std::unique_ptr<store::Store> Open() {
    auto store = b_.OpenStore();
    EXPECT_TRUE(store.ok()) << store.error().ToString();
    return store.ok() ? std::move(store).value() : nullptr;
  }

  Backend b_;
  std::unique_ptr<store::Store> store_;
};

using Backends = ::testing::Types<SqliteStoreBackend, PgStoreBackend>;
class BackendNames {
 public:
  template <typename T>
  static std::string GetName(int) {
    return std::is_same_v<T, SqliteStoreBackend> ? "Sqlite" : "Pg";
  }
};
TYPED_TEST_SUITE(StoreCommitTest, Backends, BackendNames);

TYPED_TEST(StoreCommitTest, TheWatermarkMovesWithTheEvents) {
  store::Store& store = *this->store_;
  const std::array<uint32_t, 2> uids{1, 2};
  MH_ASSERT_OK(store.attempts().Begin("support", "INBOX", 7, uids));
  MH_ASSERT_OK(store.CommitMessages("support", "INBOX", Watermark{7, 2}, {Item(1), Item(2)}));
  EXPECT_EQ(Pending(store), 2);
  EXPECT_EQ(MarkOf(store), (Watermark{7, 2}));
  EXPECT_TRUE(AttemptedUids(store).empty()) << "durable messages keep no attempt count";
  MH_ASSERT_OK_AND_ASSIGN(auto pending, store.outbox().ListPending());
  ASSERT_EQ(pending.size(), 2u);
  EXPECT_EQ(pending[0].item.event_id, "evt_1");
  EXPECT_EQ(pending[0].item.payload, R"({"uid":1})");
  // Seen by another connection: committed, not only in this session.
  auto other = this->Open();
  ASSERT_TRUE(other);
  EXPECT_EQ(Pending(*other), 2);
  EXPECT_EQ(MarkOf(*other), (Watermark{7, 2}));
}

TYPED_TEST(StoreCommitTest, AReplayCreatesNoSecondRow) {
  store::Store& store = *this->store_;
  MH_ASSERT_OK(store.CommitMessages("support", "INBOX", Watermark{7, 1}, {Item(1)}));
  MH_ASSERT_OK(store.CommitMessages("support", "INBOX", Watermark{7, 1}, {Item(1)}));
  EXPECT_EQ(Pending(store), 1);

  // Once delivered, a replay still must not deliver again.
  MH_ASSERT_OK_AND_ASSIGN(auto claimed, store.outbox().ClaimDue(Clock::now(), 10));
  ASSERT_EQ(claimed.size(), 1u);
  MH_ASSERT_OK(store.outbox().MarkDelivered(claimed[0].id));
  MH_ASSERT_OK(store.CommitMessages("support", "INBOX", Watermark{7, 1}, {Item(1)}));
  EXPECT_EQ(Pending(store), 0);

  // Nor once dead-lettered.
  MH_ASSERT_OK(store.CommitMessages("support", "INBOX", Watermark{7, 2}, {Item(2)}));
  MH_ASSERT_OK_AND_ASSIGN(auto second, store.outbox().ClaimDue(Clock::now(), 10));
  ASSERT_EQ(second.size(), 1u);
  MH_ASSERT_OK(store.outbox().MoveToDeadLetters(second[0].id, 1, "HTTP 400"));
  MH_ASSERT_OK(store.CommitMessages("support", "INBOX", Watermark{7, 2}, {Item(2)}));
  EXPECT_EQ(Pending(store), 0);
  EXPECT_EQ(*store.dead_letters().Count(), 1);

  // Another target of the same event is another row.
  MH_ASSERT_OK(store.CommitMessages("support", "INBOX", Watermark{7, 2}, {Item(2, "hook:archive")}));
  EXPECT_EQ(Pending(store), 1);
}

TYPED_TEST(StoreCommitTest, NoWatermarkLeavesItWhereItWas) {
  store::Store& store = *this->store_;
  // None yet: still none (the first pass over a folder's unseen messages).
  MH_ASSERT_OK(store.CommitMessages("support", "INBOX", std::nullopt, {Item(3)}));
  EXPECT_EQ(MarkOf(store), std::nullopt);
  EXPECT_EQ(Pending(store), 1);
  // Set: it stays, while the events are committed and their attempts forgotten.
  MH_ASSERT_OK(store.CommitMessages("support", "INBOX", Watermark{7, 5}, {Item(5)}));
  const std::array<uint32_t, 2> uids{8, 9};
  MH_ASSERT_OK(store.attempts().Begin("support", "INBOX", 7, uids));
  MH_ASSERT_OK(store.CommitMessages("support", "INBOX", std::nullopt, {Item(9)}));
  EXPECT_EQ(MarkOf(store), (Watermark{7, 5}));
  EXPECT_EQ(Pending(store), 3);
  EXPECT_EQ(AttemptedUids(store), std::vector<uint32_t>{8}) << "only the committed UID's attempts are forgotten";
}

// A throw at each fault point (a crash inside the commit) leaves neither
// the events nor the watermark nor the forgotten attempts.
TYPED_TEST(StoreCommitTest, AThrowAtAnyFaultPointLeavesNothing) {
  MH_ASSERT_OK(this->store_->CommitMessages("support", "INBOX", Watermark{7, 1}, {Item(1)}));
  for (const char* point : {"commit_messages.inserted", "commit_messages.before_commit", "transaction.before_commit"}) {
    SCOPED_TRACE(point);
    const std::array<uint32_t, 1> uid{2};
    MH_ASSERT_OK(this->store_->attempts().Begin("support", "INBOX", 7, uid));
    int fired = 0;
    this->store_->SetFaultHookForTesting([&](std::string_view at) {
      if (at == point) {
        ++fired;
        throw std::runtime_error("fault");
      }
    });
    EXPECT_THROW((void)this->store_->CommitMessages("support", "INBOX", Watermark{7, 3}, {Item(2), Item(3)}),
                 std::runtime_error);
    EXPECT_EQ(fired, 1);
    // A fresh connection (SQLite's Db keeps a thrown-through transaction
    // open until its connection closes: close it first).
    this->store_.reset();
    this->store_ = this->Open();
    ASSERT_TRUE(this->store_);
    EXPECT_EQ(Pending(*this->store_), 1);
    EXPECT_EQ(MarkOf(*this->store_), (Watermark{7, 1}));
    EXPECT_EQ(AttemptedUids(*this->store_), std::vector<uint32_t>{2});
  }
  // And then it commits.
  MH_ASSERT_OK(this->store_->CommitMessages("support", "INBOX", Watermark{7, 3}, {Item(2), Item(3)}));
  EXPECT_EQ(Pending(*this->store_), 3);
  EXPECT_EQ(MarkOf(*this->store_), (Watermark{7, 3}));
}

TYPED_TEST(StoreCommitTest, ACommitFiresEachFaultPointOnceInOrder) {
  store::Store& store = *this->store_;
  std::vector<std::string> points;
  store.SetFaultHookForTesting([&](std::string_view at) { points.emplace_back(at); });
  MH_ASSERT_OK(store.CommitMessages("support", "INBOX", Watermark{7, 1}, {Item(1)}));
  EXPECT_EQ(points, (std::vector<std::string>{"commit_messages.inserted", "commit_messages.before_commit",
                                              "transaction.before_commit"}));
  points.clear();
  MH_ASSERT_OK(store.watermarks().Set("support", "INBOX", Watermark{7, 2}));
  MH_ASSERT_OK(store.Housekeep());
  EXPECT_EQ(points, (std::vector<std::string>{"transaction.before_commit", "transaction.before_commit"}))
      << "a table write and Housekeep each commit through one transaction";
}

TYPED_TEST(StoreCommitTest, RepeatedCommitsPrepareNoNewStatement) {
  store::Store& store = *this->store_;
  MH_ASSERT_OK(store.CommitMessages("support", "INBOX", Watermark{7, 1}, {Item(1)}));
  const int64_t after_first = store.StatementsPreparedForTesting();
  EXPECT_GT(after_first, 0);
  for (uint32_t uid = 2; uid < 5; ++uid) {
    MH_ASSERT_OK(store.CommitMessages("support", "INBOX", Watermark{7, uid}, {Item(uid)}));
  }
  EXPECT_EQ(store.StatementsPreparedForTesting(), after_first);
}

// Housekeep keeps a recent delivered marker: a replay after it still
// delivers nothing again; HousekeepSmtp runs on an empty state.
TYPED_TEST(StoreCommitTest, HousekeepingKeepsRecentDeliveredMarkers) {
  store::Store& store = *this->store_;
  MH_ASSERT_OK(store.CommitMessages("support", "INBOX", Watermark{7, 1}, {Item(1)}));
  MH_ASSERT_OK_AND_ASSIGN(auto claimed, store.outbox().ClaimDue(Clock::now(), 10));
  ASSERT_EQ(claimed.size(), 1u);
  MH_ASSERT_OK(store.outbox().MarkDelivered(claimed[0].id));
  MH_ASSERT_OK(store.Housekeep());
  MH_ASSERT_OK(store.HousekeepSmtp(Clock::now(), std::chrono::hours(1)));
  MH_ASSERT_OK(store.CommitMessages("support", "INBOX", Watermark{7, 1}, {Item(1)}));
  EXPECT_EQ(Pending(store), 0);
}

// ---- PgStore only: the fence ----

class PgStoreFenceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::string why = PostgresServer::WhyCannotRun(); !why.empty()) GTEST_SKIP() << why;
    admin_ = Connect();
    ASSERT_TRUE(admin_);
    MH_ASSERT_OK(MigratePg(*admin_));
  }

  std::unique_ptr<PgConnection> Connect() {
    auto conn = b_.Connect();
    EXPECT_TRUE(conn.ok()) << conn.error().ToString();
    return conn.ok() ? std::move(conn).value() : nullptr;
  }

  /// A store whose FenceSource answers `*fence` (read at each commit) and
  /// counts its calls in `asked`.
  std::unique_ptr<store::Store> OpenFenced(const std::optional<Fence>* fence, std::vector<std::string>* asked) {
    PgStoreOptions options;
    options.fences = [fence, asked](const std::string& account) {
      asked->push_back(account);
      return *fence;
    };
    auto store = b_.OpenStore(std::move(options));
    EXPECT_TRUE(store.ok()) << store.error().ToString();
    return store.ok() ? std::move(store).value() : nullptr;
  }

  /// The lease of `account` lapses now, as if its holder had been paused
  /// past the TTL (by the server's clock, which leases go by).
  util::Status Expire(const std::string& account) {
    if (auto s =
            admin_->Prepare("expire", "UPDATE account_leases SET expires_at = clock_timestamp() WHERE account = $1");
        !s) {
      return s;
    }
    auto r = admin_->Exec("expire", {account});
    return r ? util::Ok() : util::Status(r.error());
  }

  PgStoreBackend b_;
  std::unique_ptr<PgConnection> admin_;
};

TEST_F(PgStoreFenceTest, ACommitUnderTheCurrentFenceSucceeds) {
  auto leases_conn = Connect();
  ASSERT_TRUE(leases_conn);
  PgLeases leases(*leases_conn, milliseconds(30000));
  MH_ASSERT_OK(leases.Register("host-a"));
  const std::vector<std::string> accounts{"support"};
  MH_ASSERT_OK_AND_ASSIGN(auto held, leases.Claim(accounts));
  ASSERT_EQ(held.size(), 1u);
  std::optional<Fence> fence = held[0];
  std::vector<std::string> asked;
  auto store = OpenFenced(&fence, &asked);
  ASSERT_TRUE(store);
  MH_ASSERT_OK(store->CommitMessages("support", "INBOX", Watermark{7, 2}, {Item(1), Item(2)}));
  EXPECT_EQ(asked, std::vector<std::string>{"support"});
  EXPECT_EQ(Pending(*store), 2);
  EXPECT_EQ(MarkOf(*store), (Watermark{7, 2}));
}

TEST_F(PgStoreFenceTest, AfterATakeoverTheOldFenceFailsAndWritesNothing) {
  auto conn_a = Connect();
  auto conn_b = Connect();
  ASSERT_TRUE(conn_a && conn_b);
  PgLeases a(*conn_a, milliseconds(30000));
  PgLeases b(*conn_b, milliseconds(30000));
  const std::vector<std::string> accounts{"support"};
  MH_ASSERT_OK(a.Register("host-a"));
  MH_ASSERT_OK(b.Register("host-b"));
  MH_ASSERT_OK_AND_ASSIGN(auto held_by_a, a.Claim(accounts));
  ASSERT_EQ(held_by_a.size(), 1u);
  std::optional<Fence> fence_a = held_by_a[0];
  std::vector<std::string> asked;
  auto store_a = OpenFenced(&fence_a, &asked);
  ASSERT_TRUE(store_a);
  MH_ASSERT_OK(store_a->CommitMessages("support", "INBOX", Watermark{7, 1}, {Item(1)}));
  const std::array<uint32_t, 1> uid{2};
  MH_ASSERT_OK(store_a->attempts().Begin("support", "INBOX", 7, uid));

  // A pauses past its TTL; B takes the account over (generation + 1).
  MH_ASSERT_OK(Expire("support"));
  MH_ASSERT_OK_AND_ASSIGN(auto held_by_b, b.Claim(accounts));
  ASSERT_EQ(held_by_b.size(), 1u);
  EXPECT_EQ(held_by_b[0].generation, fence_a->generation + 1);

  // A wakes up and commits with the fence it had: refused, nothing written
  // (the check is the first statement: the inserts never ran).
  std::vector<std::string> points;
  store_a->SetFaultHookForTesting([&](std::string_view at) { points.emplace_back(at); });
  util::Status fenced = store_a->CommitMessages("support", "INBOX", Watermark{7, 3}, {Item(2), Item(3)});
  EXPECT_EQ(CodeOf(fenced), "store.fenced");
  EXPECT_TRUE(points.empty()) << points.front();
  auto reader = b_.OpenStore();
  ASSERT_TRUE(reader.ok()) << reader.error().ToString();
  EXPECT_EQ(Pending(**reader), 1);
  EXPECT_EQ(MarkOf(**reader), (Watermark{7, 1}));
  EXPECT_EQ(AttemptedUids(**reader), std::vector<uint32_t>{2});
  // A's session is usable (rolled back, not left in the transaction); B writes.
  EXPECT_EQ(Pending(*store_a), 1);
  std::optional<Fence> fence_b = held_by_b[0];
  auto store_b = OpenFenced(&fence_b, &asked);
  ASSERT_TRUE(store_b);
  MH_ASSERT_OK(store_b->CommitMessages("support", "INBOX", Watermark{7, 3}, {Item(2), Item(3)}));
  EXPECT_EQ(Pending(**reader), 3);
  EXPECT_EQ(MarkOf(**reader), (Watermark{7, 3}));
}

TEST_F(PgStoreFenceTest, AFenceSourceWithoutALeaseFailsClosed) {
  std::optional<Fence> none;
  std::vector<std::string> asked;
  auto store = OpenFenced(&none, &asked);
  ASSERT_TRUE(store);
  util::Status s = store->CommitMessages("support", "INBOX", Watermark{7, 1}, {Item(1)});
  EXPECT_EQ(CodeOf(s), "store.fenced");
  EXPECT_EQ(asked, std::vector<std::string>{"support"});
  EXPECT_EQ(Pending(*store), 0);
  EXPECT_EQ(MarkOf(*store), std::nullopt);
  // A fence of another account is refused as well.
  std::optional<Fence> other = Fence{"sales", "00000000-0000-0000-0000-000000000001", 1};
  auto wrong = OpenFenced(&other, &asked);
  ASSERT_TRUE(wrong);
  EXPECT_EQ(CodeOf(wrong->CommitMessages("support", "INBOX", Watermark{7, 1}, {Item(1)})), "store.fenced");
  EXPECT_EQ(Pending(*store), 0);
}

TEST_F(PgStoreFenceTest, WithoutAFenceSourceNothingIsChecked) {
  // No lease row exists at all: a fenced commit would fail.
  auto store = b_.OpenStore();
  ASSERT_TRUE(store.ok()) << store.error().ToString();
  MH_ASSERT_OK((*store)->CommitMessages("support", "INBOX", Watermark{7, 1}, {Item(1)}));
  EXPECT_EQ(Pending(**store), 1);
}

// Defence in depth behind the fence: a write that bypasses it (SkipTo, a
// baseline) from a replica that lost the account cannot move the new
// owner's watermark back; a new UIDVALIDITY still replaces it.
TEST_F(PgStoreFenceTest, AWatermarkNeverMovesBackWithinOneUidvalidity) {
  auto store = b_.OpenStore();
  ASSERT_TRUE(store.ok()) << store.error().ToString();
  store::Watermarks& marks = (*store)->watermarks();
  MH_ASSERT_OK(marks.Set("support", "INBOX", Watermark{7, 10}));
  MH_ASSERT_OK(marks.Set("support", "INBOX", Watermark{7, 4}));
  MH_ASSERT_OK_AND_ASSIGN(auto kept, marks.Get("support", "INBOX"));
  EXPECT_EQ(kept, (Watermark{7, 10}));
  MH_ASSERT_OK(marks.Set("support", "INBOX", Watermark{7, 12}));
  MH_ASSERT_OK(marks.Set("support", "INBOX", Watermark{8, 3}));
  MH_ASSERT_OK_AND_ASSIGN(auto replaced, marks.Get("support", "INBOX"));
  EXPECT_EQ(replaced, (Watermark{8, 3}));
}

TEST_F(PgStoreFenceTest, OpenedByUrlItMigratesAndItsPathHasNoPassword) {
  // The test cluster trusts loopback: the password is sent to no one.
  std::string url = Server().ConnectionUrl();
  const std::string scheme = "postgresql://mailhook";
  ASSERT_EQ(url.rfind(scheme, 0), 0u) << url;
  url.insert(scheme.size(), ":s3cret-pw");
  auto store = PgStore::Open(url, {});
  ASSERT_TRUE(store.ok()) << store.error().ToString();
  EXPECT_EQ((*store)->path().find("s3cret-pw"), std::string::npos) << (*store)->path();
  EXPECT_NE((*store)->path().find("<redacted>"), std::string::npos) << (*store)->path();
  MH_ASSERT_OK((*store)->CommitMessages("urltest", "INBOX", Watermark{7, 1}, {}));
  auto mark = (*store)->watermarks().Get("urltest", "INBOX");
  ASSERT_TRUE(mark.ok());
  EXPECT_EQ(*mark, (Watermark{7, 1}));
}

// A throw out of the fault hook rolls PgStore's transaction back on the
// spot: the same store goes on committing (SQLite's Db does not recover).
TEST_F(PgStoreFenceTest, AThrowingFaultHookLeavesTheSessionUsable) {
  auto store = b_.OpenStore();
  ASSERT_TRUE(store.ok()) << store.error().ToString();
  (*store)->SetFaultHookForTesting([](std::string_view at) {
    if (at == "commit_messages.inserted") throw std::runtime_error("fault");
  });
  EXPECT_THROW((void)(*store)->CommitMessages("support", "INBOX", Watermark{7, 1}, {Item(1)}), std::runtime_error);
  (*store)->SetFaultHookForTesting(nullptr);
  EXPECT_EQ(Pending(**store), 0);
  MH_ASSERT_OK((*store)->CommitMessages("support", "INBOX", Watermark{7, 2}, {Item(2)}));
  auto reader = b_.OpenStore();
  ASSERT_TRUE(reader.ok()) << reader.error().ToString();
  EXPECT_EQ(Pending(**reader), 1);
  EXPECT_EQ(MarkOf(**reader), (Watermark{7, 2}));
}

}  // namespace
}  // namespace mailhook::pgstore
