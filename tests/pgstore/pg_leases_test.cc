// src/pgstore/pg_leases against a real PostgreSQL (PostgresServer): two
// replicas (two connections) over 10 accounts split them 5/5; a replica that
// joins gets its share once the other gives back exactly the surplus; a
// replica whose heartbeat stops is taken over after the TTL (server clock)
// with generation + 1, and its fenced transaction then fails with
// store.fenced and writes nothing; a takeover started while the owner's
// fenced transaction is open waits (seen in pg_stat_activity) until that
// transaction ends, so the owner's commit precedes it; a clean Leave hands
// over at once; odd account names and 3 replicas over 1,000 accounts (timed);
// a claim up to a target, and a replica rejoining on a new connection.
// TTLs are 1-2 s and every wait is on a condition. Skipped with the reason
// when PostgreSQL is missing.

#include "pgstore/pg_leases.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "pgstore/pg_connection.h"
#include "pgstore/pg_schema.h"
#include "postgres_server.h"
#include "status_assert.h"

namespace mailhook::pgstore {
namespace {

using std::chrono::milliseconds;
using testsupport::PostgresServer;

// Waits for `done`, re-checking every 10 ms; false after the timeout.
template <typename Fn>
bool WaitFor(Fn done, std::chrono::seconds timeout = std::chrono::seconds(20)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(milliseconds(10));
  }
  return true;
}

std::vector<std::string> TenAccounts() {
  std::vector<std::string> out;
  for (int i = 0; i < 10; ++i) out.push_back("acct-" + std::to_string(i));
  return out;
}

// The Error's code, or "ok": an EXPECT on it cannot touch a missing Error.
std::string CodeOf(const util::Status& s) { return s.ok() ? "ok" : s.error().code(); }

std::set<std::string> AccountsOf(const std::vector<Fence>& fences) {
  std::set<std::string> out;
  for (const Fence& f : fences) out.insert(f.account);
  return out;
}

class PgLeasesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::string why = PostgresServer::WhyCannotRun(); !why.empty()) GTEST_SKIP() << why;
    MH_ASSERT_OK(pg_.Start());
    admin_ = Connect();
    ASSERT_TRUE(admin_);
    MH_ASSERT_OK(MigratePg(*admin_));
    MH_ASSERT_OK(admin_->Prepare("rows", "SELECT count(*) FROM watermarks WHERE account = $1"));
    MH_ASSERT_OK(
        admin_->Prepare("expired", "SELECT expires_at <= clock_timestamp() FROM account_leases WHERE account = $1"));
    MH_ASSERT_OK(admin_->Prepare("lock_waits",
                                 "SELECT count(*) FROM pg_stat_activity WHERE pid = $1 AND wait_event_type = 'Lock'"));
  }

  std::unique_ptr<PgConnection> Connect() {
    auto conn = PgConnection::Connect(pg_.ConnectionUrl());
    EXPECT_TRUE(conn.ok()) << conn.error().ToString();
    return conn.ok() ? std::move(conn).value() : nullptr;
  }

  // An account write as the store will make it: the fence first, then the
  // row, in one transaction.
  static util::Status FencedWrite(PgConnection& conn, const Fence& fence, int64_t uid) {
    return conn.InTransaction([&]() -> util::Status {
      if (auto s = CheckFence(conn, fence); !s) return s;
      if (auto s = conn.Prepare("write",
                                "INSERT INTO watermarks (account, folder, uidvalidity, last_uid, updated_at) "
                                "VALUES ($1, 'INBOX', 1, $2, 0) ON CONFLICT (account, folder) DO UPDATE "
                                "SET last_uid = excluded.last_uid");
          !s) {
        return s;
      }
      if (auto r = conn.Exec("write", {fence.account, uid}); !r) return r.error();
      return util::Ok();
    });
  }

  int64_t Rows(const std::string& account) {
    auto rows = admin_->Exec("rows", {account});
    return rows.ok() ? rows->Int64(0, 0).value() : -1;
  }

  bool Expired(const std::string& account) {
    auto rows = admin_->Exec("expired", {account});
    return rows.ok() && rows->rows() == 1 && rows->Bool(0, 0).value();
  }

  PostgresServer pg_;
  std::unique_ptr<PgConnection> admin_;
};

TEST_F(PgLeasesTest, TwoReplicasSplitTenAccountsFiveFive) {
  auto conn_a = Connect();
  auto conn_b = Connect();
  ASSERT_TRUE(conn_a && conn_b);
  PgLeases a(*conn_a, milliseconds(2000));
  PgLeases b(*conn_b, milliseconds(2000));
  MH_ASSERT_OK(a.Register("host-a"));
  MH_ASSERT_OK(b.Register("host-b"));
  EXPECT_NE(a.replica_id(), b.replica_id());
  MH_ASSERT_OK_AND_ASSIGN(auto live, a.LiveReplicas());
  EXPECT_EQ(live.size(), 2u);
  MH_ASSERT_OK_AND_ASSIGN(int64_t share, a.FairShare(10));
  EXPECT_EQ(share, 5);
  MH_ASSERT_OK_AND_ASSIGN(int64_t share_of_11, a.FairShare(11));
  EXPECT_EQ(share_of_11, 6);

  // Both claim at the same moment, from the same list.
  const std::vector<std::string> accounts = TenAccounts();
  util::Result<std::vector<Fence>> claimed_a = std::vector<Fence>{};
  util::Result<std::vector<Fence>> claimed_b = std::vector<Fence>{};
  std::atomic<int> ready{0};
  auto run = [&](PgLeases& leases, util::Result<std::vector<Fence>>& out) {
    ++ready;
    while (ready.load() < 2) std::this_thread::yield();
    out = leases.Claim(accounts);
  };
  std::thread thread_a([&] { run(a, claimed_a); });
  std::thread thread_b([&] { run(b, claimed_b); });
  thread_a.join();
  thread_b.join();
  MH_ASSERT_OK(claimed_a);
  MH_ASSERT_OK(claimed_b);
  EXPECT_EQ(claimed_a->size(), 5u);
  EXPECT_EQ(claimed_b->size(), 5u);
  std::set<std::string> all = AccountsOf(*claimed_a);
  for (const std::string& account : AccountsOf(*claimed_b)) EXPECT_TRUE(all.insert(account).second) << account;
  EXPECT_EQ(all.size(), 10u);
  for (const Fence& f : *claimed_a) {
    EXPECT_EQ(f.owner, a.replica_id());
    EXPECT_EQ(f.generation, 1);
  }
  // Claiming again holds the same: the share is reached.
  MH_ASSERT_OK_AND_ASSIGN(auto again, a.Claim(accounts));
  EXPECT_EQ(again, *claimed_a);
  MH_ASSERT_OK_AND_ASSIGN(auto renewed, b.Renew());
  EXPECT_EQ(renewed, *claimed_b);
}

// A replica alone holds all 10; a second joins and finds none free; the first
// gives back exactly its surplus (10 - ceil(10/2) = 5), keeps the rest, and
// the newcomer takes those 5 over with generation 2.
TEST_F(PgLeasesTest, GiveBackFreesExactlyTheSurplusForAJoiningReplica) {
  auto conn_a = Connect();
  auto conn_b = Connect();
  ASSERT_TRUE(conn_a && conn_b);
  PgLeases a(*conn_a, milliseconds(2000));
  PgLeases b(*conn_b, milliseconds(2000));
  const std::vector<std::string> accounts = TenAccounts();
  MH_ASSERT_OK(a.Register("host-a"));
  MH_ASSERT_OK_AND_ASSIGN(auto all, a.Claim(accounts));
  ASSERT_EQ(all.size(), 10u);

  MH_ASSERT_OK(b.Register("host-b"));
  MH_ASSERT_OK_AND_ASSIGN(auto none, b.Claim(accounts));
  EXPECT_TRUE(none.empty());
  MH_ASSERT_OK_AND_ASSIGN(int64_t share, a.FairShare(10));
  ASSERT_EQ(share, 5);
  MH_ASSERT_OK_AND_ASSIGN(auto given, a.GiveBack(static_cast<int64_t>(all.size()) - share));
  ASSERT_EQ(given.size(), 5u);
  MH_ASSERT_OK_AND_ASSIGN(auto kept, a.Renew());
  EXPECT_EQ(kept.size(), 5u);
  for (const Fence& f : kept) EXPECT_EQ(std::count(given.begin(), given.end(), f.account), 0) << f.account;

  MH_ASSERT_OK_AND_ASSIGN(auto taken, b.Claim(accounts));
  ASSERT_EQ(taken.size(), 5u);
  std::vector<std::string> taken_accounts;
  for (const Fence& f : taken) {
    taken_accounts.push_back(f.account);
    EXPECT_EQ(f.generation, 2) << f.account;
    EXPECT_EQ(f.owner, b.replica_id());
  }
  EXPECT_EQ(taken_accounts, given);

  // Giving back by name frees only what this replica holds.
  MH_ASSERT_OK_AND_ASSIGN(auto by_name, a.GiveBack(std::vector<std::string>{kept[0].account, taken[0].account}));
  EXPECT_EQ(by_name, std::vector<std::string>{kept[0].account});
  MH_ASSERT_OK_AND_ASSIGN(auto b_still, b.Renew());
  EXPECT_EQ(b_still.size(), 5u);
  // A given-back lease fences its old holder at once.
  EXPECT_EQ(CodeOf(FencedWrite(*conn_a, kept[0], 1)), "store.fenced");
}

// A stops heartbeating and renewing. After the TTL, by the server's clock, B
// sees only itself live and takes all 10 over with generation 2. A's write
// under its old fence then fails with store.fenced and leaves nothing, while
// B's writes go through.
TEST_F(PgLeasesTest, DeadReplicaIsTakenOverAndItsWritesAreFenced) {
  auto conn_a = Connect();
  auto conn_b = Connect();
  ASSERT_TRUE(conn_a && conn_b);
  PgLeases a(*conn_a, milliseconds(1000));
  PgLeases b(*conn_b, milliseconds(1000));
  const std::vector<std::string> accounts = TenAccounts();
  MH_ASSERT_OK(a.Register("host-a"));
  MH_ASSERT_OK_AND_ASSIGN(auto held_by_a, a.Claim(accounts));
  ASSERT_EQ(held_by_a.size(), 10u);
  MH_ASSERT_OK(FencedWrite(*conn_a, held_by_a[0], 1));  // the fence holds while the lease does
  EXPECT_EQ(Rows(held_by_a[0].account), 1);
  MH_ASSERT_OK(b.Register("host-b"));

  // Nothing of A's is free until its leases expire by the server's clock.
  MH_ASSERT_OK_AND_ASSIGN(auto early, b.Claim(accounts));
  EXPECT_TRUE(early.empty());
  std::vector<Fence> held_by_b;
  ASSERT_TRUE(WaitFor([&] {
    if (!b.Heartbeat()) return false;
    auto claimed = b.Claim(accounts);
    if (!claimed) return false;
    held_by_b = *claimed;
    return held_by_b.size() == accounts.size();
  })) << "B took over "
      << held_by_b.size() << " of 10";
  MH_ASSERT_OK_AND_ASSIGN(auto live, b.LiveReplicas());
  EXPECT_EQ(live, std::vector<std::string>{b.replica_id()});
  for (const Fence& f : held_by_b) {
    EXPECT_EQ(f.generation, 2) << f.account;
    EXPECT_EQ(f.owner, b.replica_id());
  }

  // A wakes up: its renewal holds nothing; its fenced writes fail and write nothing.
  MH_ASSERT_OK_AND_ASSIGN(auto renewed, a.Renew());
  EXPECT_TRUE(renewed.empty());
  const Fence& old = held_by_a[3];
  util::Status fenced = FencedWrite(*conn_a, old, 7);
  ASSERT_FALSE(fenced.ok());
  EXPECT_EQ(fenced.error().code(), "store.fenced");
  // A routine lease loss: the watcher backs off until its stop, no operator alert.
  EXPECT_EQ(fenced.error().retry(), util::RetryClass::kBackoff);
  EXPECT_NE(fenced.error().message().find(old.account), std::string::npos) << fenced.error().message();
  EXPECT_NE(fenced.error().message().find("held by replica " + b.replica_id() + " at generation 2"), std::string::npos)
      << fenced.error().message();
  EXPECT_EQ(Rows(old.account), 0);
  // Written first, fenced after: rolled back all the same.
  util::Status late = conn_a->InTransaction([&]() -> util::Status {
    if (auto r = conn_a->Exec("write", {old.account, 8}); !r) return r.error();
    return CheckFence(*conn_a, old);
  });
  EXPECT_EQ(CodeOf(late), "store.fenced");
  EXPECT_EQ(Rows(old.account), 0);
  EXPECT_FALSE(conn_a->in_transaction());
  // B, the holder now, writes.
  MH_EXPECT_OK(FencedWrite(*conn_b, held_by_b[3], 9));
  EXPECT_EQ(Rows(old.account), 1);
  // The fence only means something inside a transaction.
  EXPECT_EQ(CodeOf(CheckFence(*conn_b, held_by_b[3])), "store.pg.sql");
}

// The FOR SHARE point: A's fenced transaction is open (its check passed)
// when its lease expires; B's takeover then blocks on the lease row (seen in
// pg_stat_activity) until A's transaction ends, and A's write is committed
// before B holds the account.
TEST_F(PgLeasesTest, TakeoverWaitsForTheOpenFencedTransaction) {
  auto conn_a = Connect();
  auto conn_b = Connect();
  ASSERT_TRUE(conn_a && conn_b);
  PgLeases a(*conn_a, milliseconds(1000));
  PgLeases b(*conn_b, milliseconds(1000));
  const std::vector<std::string> accounts = {"acct-x"};
  MH_ASSERT_OK(a.Register("host-a"));
  MH_ASSERT_OK_AND_ASSIGN(auto held, a.Claim(accounts));
  ASSERT_EQ(held.size(), 1u);
  MH_ASSERT_OK(b.Register("host-b"));

  std::atomic<bool> a_done{false};
  bool b_waited = false;
  bool b_returned_after_a = false;
  util::Result<std::vector<Fence>> taken = std::vector<Fence>{};
  std::thread thread_b;
  util::Status committed = conn_a->InTransaction([&]() -> util::Status {
    if (auto s = CheckFence(*conn_a, held[0]); !s) return s;
    if (!WaitFor([&] { return Expired("acct-x"); })) {
      return util::Error("test.timeout", util::RetryClass::kNeedsOperator, "the lease never expired");
    }
    thread_b = std::thread([&] {
      taken = b.Claim(accounts);
      b_returned_after_a = a_done.load();
    });
    b_waited = WaitFor(
        [&] {
          auto rows = admin_->Exec("lock_waits", {conn_b->backend_pid()});
          return rows.ok() && rows->Int64(0, 0).value() == 1;
        },
        std::chrono::seconds(5));  // well inside idle_in_transaction_session_timeout (10 s)
    if (auto s = conn_a->Prepare("write",
                                 "INSERT INTO watermarks (account, folder, uidvalidity, last_uid, updated_at) "
                                 "VALUES ($1, 'INBOX', 1, $2, 0) ON CONFLICT (account, folder) DO UPDATE "
                                 "SET last_uid = excluded.last_uid");
        !s) {
      return s;
    }
    if (auto r = conn_a->Exec("write", {"acct-x", 41}); !r) return r.error();
    a_done = true;  // COMMIT follows
    return util::Ok();
  });
  if (thread_b.joinable()) thread_b.join();
  MH_ASSERT_OK(committed);  // the check passed before expiry: A's last write counts
  EXPECT_TRUE(b_waited) << "B's takeover never waited on the lease row";
  EXPECT_TRUE(b_returned_after_a) << "B's takeover returned while A's transaction was open";
  MH_ASSERT_OK(taken);
  ASSERT_EQ(taken->size(), 1u);
  EXPECT_EQ((*taken)[0].generation, 2);
  EXPECT_EQ((*taken)[0].owner, b.replica_id());
  EXPECT_EQ(Rows("acct-x"), 1);  // A's commit is there for B to read
  EXPECT_EQ(CodeOf(FencedWrite(*conn_a, held[0], 42)), "store.fenced");
}

// Account names are the operator's: quotes, commas, braces, backslashes and
// words like NULL go through the array parameter as they are.
TEST_F(PgLeasesTest, OddAccountNamesAreClaimedAsWritten) {
  auto conn = Connect();
  ASSERT_TRUE(conn);
  PgLeases leases(*conn, milliseconds(2000));
  MH_ASSERT_OK(leases.Register("host-a"));
  std::vector<std::string> accounts = {"a,b", "we\"ird", "back\\slash", "{x}", "NULL", " spaced ", "grüße", ""};
  MH_ASSERT_OK_AND_ASSIGN(auto held, leases.Claim(accounts));
  std::sort(accounts.begin(), accounts.end());
  std::vector<std::string> names;
  for (const Fence& f : held) names.push_back(f.account);
  EXPECT_EQ(names, accounts);
  MH_ASSERT_OK_AND_ASSIGN(auto given, leases.GiveBack(std::vector<std::string>{"we\"ird", "NULL"}));
  EXPECT_EQ(given, (std::vector<std::string>{"NULL", "we\"ird"}));
}

// Three replicas claim 1,000 accounts at once: every account is held by
// exactly one, none above its share ceil(1000/3) = 334. Prints the claim
// time and what the fence adds to a one-row write transaction.
TEST_F(PgLeasesTest, ThreeReplicasShareAThousandAccounts) {
  std::vector<std::string> accounts;
  for (int i = 0; i < 1000; ++i) accounts.push_back("user" + std::to_string(i) + "@example.org");
  std::vector<std::unique_ptr<PgConnection>> conns;
  std::vector<std::unique_ptr<PgLeases>> replicas;
  for (int i = 0; i < 3; ++i) {
    conns.push_back(Connect());
    ASSERT_TRUE(conns.back());
    replicas.push_back(std::make_unique<PgLeases>(*conns.back(), milliseconds(2000)));
    MH_ASSERT_OK(replicas.back()->Register("host-" + std::to_string(i)));
  }
  std::vector<util::Result<std::vector<Fence>>> claimed(3, std::vector<Fence>{});
  std::vector<int64_t> claim_ms(3, 0);
  std::atomic<int> ready{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 3; ++i) {
    threads.emplace_back([&, i] {
      ++ready;
      while (ready.load() < 3) std::this_thread::yield();
      const auto start = std::chrono::steady_clock::now();
      claimed[i] = replicas[i]->Claim(accounts);
      claim_ms[i] = std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - start).count();
    });
  }
  for (std::thread& t : threads) t.join();
  std::set<std::string> all;
  for (int i = 0; i < 3; ++i) {
    MH_ASSERT_OK(claimed[i]);
    EXPECT_LE(claimed[i]->size(), 334u);
    for (const Fence& f : *claimed[i]) EXPECT_TRUE(all.insert(f.account).second) << f.account << " held twice";
  }
  EXPECT_EQ(all.size(), 1000u);

  // The fence's cost: 200 one-row write transactions with and without it.
  PgConnection& conn = *conns[0];
  const std::vector<Fence>& mine = *claimed[0];
  ASSERT_FALSE(mine.empty());
  auto run = [&](bool fenced) {
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < 200; ++i) {
      const Fence& fence = mine[static_cast<size_t>(i) % mine.size()];
      util::Status s = fenced ? FencedWrite(conn, fence, i) : conn.InTransaction([&]() -> util::Status {
        if (auto r = conn.Exec("write", {fence.account, i}); !r) return r.error();
        return util::Ok();
      });
      EXPECT_TRUE(s.ok()) << s.error().ToString();
    }
    return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - start).count() /
           200;
  };
  const int64_t fenced_us = run(true);  // prepares "write" too
  const int64_t plain_us = run(false);
  std::cerr << "claim of 1000 accounts by 3 replicas at once: " << claim_ms[0] << ", " << claim_ms[1] << ", "
            << claim_ms[2] << " ms (held " << claimed[0]->size() << "/" << claimed[1]->size() << "/"
            << claimed[2]->size() << "); write transaction " << plain_us << " us, with the fence " << fenced_us
            << " us\n";
}

// A replica that stops cleanly gives everything back and leaves the live
// set at once: the other takes its accounts over without waiting out the
// (here long) TTL. Rows of replicas silent too long are forgotten; a live one
// forgotten by mistake comes back at its next heartbeat.
TEST_F(PgLeasesTest, LeaveHandsOverAtOnceAndSilentReplicasAreForgotten) {
  auto conn_a = Connect();
  auto conn_b = Connect();
  ASSERT_TRUE(conn_a && conn_b);
  PgLeases a(*conn_a, milliseconds(60000));
  PgLeases b(*conn_b, milliseconds(60000));
  const std::vector<std::string> accounts = TenAccounts();
  MH_ASSERT_OK(a.Register("host-a"));
  MH_ASSERT_OK_AND_ASSIGN(auto held, a.Claim(accounts));
  ASSERT_EQ(held.size(), 10u);
  MH_ASSERT_OK(b.Register("host-b"));
  MH_ASSERT_OK_AND_ASSIGN(auto left, a.Leave());
  EXPECT_EQ(left, accounts);
  MH_ASSERT_OK_AND_ASSIGN(auto live, b.LiveReplicas());
  EXPECT_EQ(live, std::vector<std::string>{b.replica_id()});
  MH_ASSERT_OK_AND_ASSIGN(auto taken, b.Claim(accounts));
  ASSERT_EQ(taken.size(), 10u);
  EXPECT_EQ(taken[0].generation, 2);
  EXPECT_EQ(CodeOf(FencedWrite(*conn_a, held[0], 1)), "store.fenced");

  // Forgetting: nothing is silent for 60 s; A's heartbeat brings it back.
  MH_ASSERT_OK_AND_ASSIGN(int64_t none, b.ForgetReplicasSilentFor(milliseconds(60000)));
  EXPECT_EQ(none, 0);
  MH_ASSERT_OK(a.Heartbeat());
  MH_ASSERT_OK_AND_ASSIGN(auto both, b.LiveReplicas());
  EXPECT_EQ(both.size(), 2u);
  // A falls silent: once its heartbeat is 300 ms old by the server's clock
  // (B keeps beating), a forget of 300 ms removes exactly A's row.
  PgLeases short_view(*conn_b, milliseconds(300));
  ASSERT_TRUE(WaitFor([&] {
    auto seen = short_view.LiveReplicas();
    return b.Heartbeat().ok() && seen.ok() && *seen == std::vector<std::string>{b.replica_id()};
  }));
  MH_ASSERT_OK(b.Heartbeat());  // B's own row stays young
  MH_ASSERT_OK_AND_ASSIGN(int64_t forgotten, b.ForgetReplicasSilentFor(milliseconds(300)));
  EXPECT_EQ(forgotten, 1);
  MH_ASSERT_OK_AND_ASSIGN(auto after, b.LiveReplicas());
  EXPECT_EQ(after, std::vector<std::string>{b.replica_id()});
}

// Claim with a target claims up to that count (not the fair share), and a
// replica that rejoins under its id on a new connection keeps its leases:
// it renews them at the same generation.
TEST_F(PgLeasesTest, ClaimToATargetAndRejoinOnANewConnection) {
  auto conn_a = Connect();
  ASSERT_TRUE(conn_a);
  auto a = std::make_unique<PgLeases>(*conn_a, milliseconds(60000));
  const std::vector<std::string> accounts = TenAccounts();
  MH_ASSERT_OK(a->Register("host-a"));
  MH_ASSERT_OK_AND_ASSIGN(auto three, a->Claim(accounts, 3));
  EXPECT_EQ(three.size(), 3u);
  MH_ASSERT_OK_AND_ASSIGN(auto still_three, a->Claim(accounts, 2));  // never gives back
  EXPECT_EQ(still_three, three);
  MH_ASSERT_OK_AND_ASSIGN(auto seven, a->Claim(accounts, 7));
  EXPECT_EQ(seven.size(), 7u);
  const std::string id = a->replica_id();

  a.reset();
  conn_a.reset();
  auto conn_again = Connect();
  ASSERT_TRUE(conn_again);
  PgLeases again(*conn_again, milliseconds(60000));
  MH_ASSERT_OK(again.Rejoin(id, "host-a"));
  EXPECT_EQ(again.replica_id(), id);
  MH_ASSERT_OK_AND_ASSIGN(auto renewed, again.Renew());
  EXPECT_EQ(renewed, seven);
  MH_ASSERT_OK_AND_ASSIGN(auto live, again.LiveReplicas());
  EXPECT_EQ(live, std::vector<std::string>{id});
}

}  // namespace
}  // namespace mailhook::pgstore
