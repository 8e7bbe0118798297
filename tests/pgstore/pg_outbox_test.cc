// PgOutbox in a cluster (PostgreSQL only, on a private PostgreSQL; skipped
// with the reason when PostgreSQL is missing): several owners on their own
// connections, as replicas are. A dead replica's leases are free at once and
// an ownerless ReleaseAllLeases keeps a live replica's; a stale worker whose
// lease was taken over changes nothing; an add racing a delivery of the same
// (event_id, target) waits for it and adds nothing; an id clash is an error;
// a listing sees one snapshot while rows go.

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "pgstore/pg_bodies.h"
#include "pgstore/pg_connection.h"
#include "pgstore/pg_dead_letters.h"
#include "pgstore/pg_leases.h"
#include "pgstore/pg_outbox.h"
#include "pgstore/pg_schema.h"
#include "postgres_server.h"
#include "status_assert.h"

namespace mailhook::pgstore {
namespace {

using std::chrono::milliseconds;
using store::Clock;
using store::OutboxItem;
using testsupport::PostgresServer;

PostgresServer& OutboxServer() {
  static PostgresServer server;  // stopped and removed at exit
  return server;
}

/// One owner's view: its connection, bodies and outbox.
struct Side {
  std::unique_ptr<PgConnection> conn;
  std::unique_ptr<PgBodies> bodies;
  std::unique_ptr<PgOutbox> outbox;
};

class PgOutboxClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::string why = PostgresServer::WhyCannotRun(); !why.empty()) GTEST_SKIP() << why;
    if (!OutboxServer().running()) MH_ASSERT_OK(OutboxServer().Start());
  }

  /// A connection on this case's schema (fresh and migrated on first use).
  util::Result<std::unique_ptr<PgConnection>> Connect() {
    auto conn = PgConnection::Connect(OutboxServer().ConnectionUrl());
    if (!conn) return conn.error();
    if (schema_.empty()) {
      static int serial = 0;
      schema_ = "o" + std::to_string(getpid()) + "_" + std::to_string(++serial);
      if (auto s = (*conn)->Run("CREATE SCHEMA " + schema_); !s) return s.error();
    }
    if (auto s = (*conn)->Run("SET search_path TO " + schema_); !s) return s.error();
    if (auto s = MigratePg(**conn); !s) return s.error();
    return conn;
  }

  /// An outbox of `owner` ("" for none) on a connection of its own.
  util::Result<Side> Open(const std::string& owner) {
    auto conn = Connect();
    if (!conn) return conn.error();
    Side side;
    side.conn = std::move(*conn);
    side.bodies = std::make_unique<PgBodies>(*side.conn);
    side.outbox = std::make_unique<PgOutbox>(*side.conn, *side.bodies, owner, std::chrono::seconds(30));
    return side;
  }

  /// A replica registered with a fresh heartbeat: its uuid.
  util::Result<std::string> LiveReplica(PgConnection& conn) {
    PgLeases leases(conn, std::chrono::seconds(30));
    return leases.Register("test-host");
  }

  /// Whether `conn`'s session waits for a lock now (seen by `watcher`).
  static bool Waiting(PgConnection& watcher, int pid) {
    if (!watcher.Prepare("waiting",
                         "SELECT count(*) FROM pg_stat_activity WHERE pid = $1 AND wait_event_type = 'Lock'"))
      return false;
    auto rows = watcher.Exec("waiting", {pid});
    return rows.ok() && rows->Int64(0, 0).ok() && *rows->Int64(0, 0) == 1;
  }

 private:
  std::string schema_;
};

/// Bodies that run `meanwhile` once, at the first Read (between a listing's
/// query of its rows and the payloads' reads), then read from `inner`.
class InterleavedBodies final : public store::Bodies {
 public:
  InterleavedBodies(store::Bodies& inner, std::function<void()> meanwhile)
      : inner_(inner), meanwhile_(std::move(meanwhile)) {}
  util::Status Write(int64_t id, uint64_t size,
                     const std::vector<std::shared_ptr<const std::string>>& pieces) override {
    return inner_.Write(id, size, pieces);
  }
  util::Result<std::string> Read(int64_t id) override {
    if (meanwhile_) std::exchange(meanwhile_, nullptr)();
    return inner_.Read(id);
  }
  util::Status Delete(int64_t id) override { return inner_.Delete(id); }
  util::Status DeleteOrphans() override { return inner_.DeleteOrphans(); }

 private:
  store::Bodies& inner_;
  std::function<void()> meanwhile_;
};

OutboxItem Event(uint32_t uid) {
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

// A row inserted with an explicit id ahead of the identity sequence (as a
// copied or replayed row may be): the next Add draws that id. That is an
// error to see, not an event dropped as if it were a replay.
TEST_F(PgOutboxClusterTest, AnIdClashOnAddIsAnErrorNotASilentSkip) {
  MH_ASSERT_OK_AND_ASSIGN(Side side, Open(""));
  MH_ASSERT_OK(side.conn->Run(
      "INSERT INTO outbox (id, event_id, target, account, folder, uidvalidity, uid, payload, created_at, "
      "next_attempt_at) VALUES (1, 'evt_copied', 'webhook:tickets', 'support', 'INBOX', 7, 1, '{}', 0, 0)"));
  auto added = side.outbox->Add({Event(2)});
  EXPECT_FALSE(added.ok()) << "the event was dropped without an error";
  EXPECT_EQ(side.conn->last_sqlstate(), "23505");
  EXPECT_EQ(*side.outbox->PendingCount(), 1);
}

// Each start registers a fresh replica id: the leases of a run that crashed
// (no replica row) or stopped heartbeating (an old row) are free at once for
// another replica; a live replica's are not, and an outbox without an owner
// giving back "every" lease gives back none of a live replica's.
TEST_F(PgOutboxClusterTest, ADeadReplicasLeasesAreFreeAtOnceALiveOnesAreNot) {
  MH_ASSERT_OK_AND_ASSIGN(Side lone, Open(""));
  MH_ASSERT_OK(lone.outbox->Add({Event(1), Event(2), Event(3)}));
  MH_ASSERT_OK_AND_ASSIGN(auto live_id, LiveReplica(*lone.conn));
  MH_ASSERT_OK_AND_ASSIGN(auto crashed_id, LiveReplica(*lone.conn));
  MH_ASSERT_OK_AND_ASSIGN(auto silent_id, LiveReplica(*lone.conn));
  MH_ASSERT_OK_AND_ASSIGN(auto other_id, LiveReplica(*lone.conn));
  MH_ASSERT_OK_AND_ASSIGN(Side live, Open(live_id));
  MH_ASSERT_OK_AND_ASSIGN(Side crashed, Open(crashed_id));
  MH_ASSERT_OK_AND_ASSIGN(Side silent, Open(silent_id));
  MH_ASSERT_OK_AND_ASSIGN(Side other, Open(other_id));
  const auto now = Clock::now();
  ASSERT_EQ(live.outbox->ClaimDue(now, 1)->size(), 1u);     // evt_1
  ASSERT_EQ(crashed.outbox->ClaimDue(now, 1)->size(), 1u);  // evt_2
  ASSERT_EQ(silent.outbox->ClaimDue(now, 1)->size(), 1u);   // evt_3
  // One crashes and its row is forgotten; the other stops heartbeating.
  MH_ASSERT_OK(lone.conn->Run("DELETE FROM replicas WHERE id = '" + crashed_id + "'"));
  MH_ASSERT_OK(
      lone.conn->Run("UPDATE replicas SET heartbeat_at = clock_timestamp() - interval '31 seconds' "
                     "WHERE id = '" +
                     silent_id + "'"));
  // Due now, not when the 15 minutes of the dead ones' leases end.
  auto next = other.outbox->NextDueAt();
  MH_ASSERT_OK(next);
  ASSERT_TRUE(next->has_value());
  EXPECT_LE(**next, now);
  auto taken = other.outbox->ClaimDue(now, 10);
  MH_ASSERT_OK(taken);
  ASSERT_EQ(taken->size(), 2u);
  EXPECT_EQ((*taken)[0].item.event_id, "evt_2");
  EXPECT_EQ((*taken)[1].item.event_id, "evt_3");
  // "" gives back its own (none) and dead replicas' leases, not the live ones'.
  MH_ASSERT_OK(lone.outbox->ReleaseAllLeases());
  EXPECT_TRUE(lone.outbox->ClaimDue(now, 10)->empty());
}

// A worker whose lease ended while it delivered (a pause, a slow target)
// finishes after another replica claimed the row: its retry, release,
// dead-letter move or delivered mark must not clear the new lease nor take
// the row away; the new owner goes on and records the delivery.
TEST_F(PgOutboxClusterTest, AStaleWorkerCannotTouchARowAnotherOwnerClaimed) {
  MH_ASSERT_OK_AND_ASSIGN(Side lone, Open(""));
  MH_ASSERT_OK(lone.outbox->Add({Event(1)}));
  MH_ASSERT_OK_AND_ASSIGN(auto stale_id, LiveReplica(*lone.conn));
  MH_ASSERT_OK_AND_ASSIGN(auto new_id, LiveReplica(*lone.conn));
  MH_ASSERT_OK_AND_ASSIGN(Side stale, Open(stale_id));
  MH_ASSERT_OK_AND_ASSIGN(Side owner, Open(new_id));
  const auto t0 = Clock::now();
  auto first = stale.outbox->ClaimDue(t0, 1, milliseconds(1));
  MH_ASSERT_OK(first);
  ASSERT_EQ(first->size(), 1u);
  const int64_t id = (*first)[0].id;
  auto second = owner.outbox->ClaimDue(t0 + std::chrono::seconds(1), 1);
  MH_ASSERT_OK(second);
  ASSERT_EQ(second->size(), 1u);
  // Still leased by `owner`: nobody else may claim it, before or after the
  // stale worker's every way of finishing.
  const auto later = t0 + std::chrono::seconds(2);
  auto claimable = [&] { return lone.outbox->ClaimDue(later, 1)->size(); };
  MH_ASSERT_OK(stale.outbox->ScheduleRetry(id, 1, t0, "HTTP 503"));
  EXPECT_EQ(claimable(), 0u) << "a stale retry cleared the lease";
  MH_ASSERT_OK(stale.outbox->ReleaseLease(id));
  EXPECT_EQ(claimable(), 0u) << "a stale release cleared the lease";
  MH_ASSERT_OK(stale.outbox->MoveToDeadLetters(id, 5, "HTTP 410"));
  PgDeadLetters dead(*lone.conn, *lone.bodies);
  EXPECT_EQ(*dead.Count(), 0);
  MH_ASSERT_OK(stale.outbox->MarkDelivered(id));
  auto pending = lone.outbox->ListPending();
  MH_ASSERT_OK(pending);
  ASSERT_EQ(pending->size(), 1u) << "a stale delivered mark took the row away";
  EXPECT_EQ((*pending)[0].attempts, 0);
  EXPECT_EQ(claimable(), 0u);
  MH_ASSERT_OK(owner.outbox->MarkDelivered(id));
  EXPECT_EQ(*lone.outbox->PendingCount(), 0);
  EXPECT_TRUE(*lone.outbox->AllDelivered("evt_1"));
}

// A replayed commit adds an event whose delivery is being recorded on
// another connection, not yet committed: under READ COMMITTED the add's
// check for a delivered marker cannot see it. The add must wait for that
// commit (seen in pg_stat_activity) and then add nothing.
TEST_F(PgOutboxClusterTest, AnAddRacingAnUncommittedDeliveryWaitsAndAddsNothing) {
  MH_ASSERT_OK_AND_ASSIGN(Side delivering, Open(""));
  MH_ASSERT_OK_AND_ASSIGN(Side adding, Open(""));
  MH_ASSERT_OK_AND_ASSIGN(auto watcher, Connect());
  MH_ASSERT_OK(delivering.outbox->Add({Event(1)}));
  auto claimed = delivering.outbox->ClaimDue(Clock::now(), 1);
  MH_ASSERT_OK(claimed);
  ASSERT_EQ(claimed->size(), 1u);
  const int adding_pid = adding.conn->backend_pid();
  util::Status added = util::Ok();
  std::thread other;
  bool waited = false;
  MH_ASSERT_OK(delivering.conn->InTransaction([&]() -> util::Status {
    if (auto s = delivering.outbox->MarkDelivered((*claimed)[0].id); !s) return s;
    other = std::thread([&] { added = adding.outbox->Add({Event(1)}); });
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!waited && std::chrono::steady_clock::now() < deadline) {
      waited = Waiting(*watcher, adding_pid);
      if (!waited) std::this_thread::sleep_for(milliseconds(10));
    }
    return util::Ok();  // the commit lets the add go on
  }));
  if (other.joinable()) other.join();
  EXPECT_TRUE(waited) << "the add did not wait for the delivery";
  MH_ASSERT_OK(added);
  EXPECT_EQ(*adding.outbox->PendingCount(), 0) << "the delivered event was added again";
}

/// An event too large to go inline: its payload is in `bodies`.
OutboxItem LargeEvent(uint32_t uid) {
  OutboxItem item = Event(uid);
  item.payload.clear();
  item.pieces = {std::make_shared<const std::string>(std::string(10000, static_cast<char>('a' + uid - 1)))};
  return item;
}

// A listing reads its rows, then each large payload in `bodies`; a row
// delivered (or a dead letter dropped) by another connection in between
// must not read as a payload the store lost: one snapshot for the listing.
TEST_F(PgOutboxClusterTest, AListingSeesOneSnapshotWhileRowsGo) {
  MH_ASSERT_OK_AND_ASSIGN(Side lone, Open(""));
  MH_ASSERT_OK(lone.outbox->Add({LargeEvent(1), LargeEvent(2), LargeEvent(3), LargeEvent(4)}));
  auto rows = lone.outbox->ListPending();
  MH_ASSERT_OK(rows);
  ASSERT_EQ(rows->size(), 4u);
  MH_ASSERT_OK(lone.outbox->MoveToDeadLetters((*rows)[2].id, 1, "HTTP 410"));
  MH_ASSERT_OK(lone.outbox->MoveToDeadLetters((*rows)[3].id, 1, "HTTP 410"));
  PgDeadLetters lone_dead(*lone.conn, *lone.bodies);

  MH_ASSERT_OK_AND_ASSIGN(auto conn, Connect());
  PgBodies bodies(*conn);
  InterleavedBodies deliver_second(bodies, [&] { MH_EXPECT_OK(lone.outbox->MarkDelivered((*rows)[1].id)); });
  PgOutbox reader(*conn, deliver_second, "");
  auto listed = reader.ListPending();
  MH_ASSERT_OK(listed);
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_TRUE((*listed)[1].item.payload == std::string(10000, 'b')) << "the delivered row's payload differs";
  EXPECT_EQ(*lone.outbox->PendingCount(), 1);

  InterleavedBodies drop_second(bodies, [&] { MH_EXPECT_OK(lone_dead.Drop(std::vector<int64_t>{(*rows)[3].id})); });
  PgDeadLetters dead_reader(*conn, drop_second);
  auto dead = dead_reader.List();
  MH_ASSERT_OK(dead);
  ASSERT_EQ(dead->size(), 2u);
  EXPECT_TRUE((*dead)[1].item.payload == std::string(10000, 'd')) << "the dropped dead letter's payload differs";
  EXPECT_EQ(*lone_dead.Count(), 1);
}

}  // namespace
}  // namespace mailhook::pgstore
