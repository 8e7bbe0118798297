// src/pgstore/lease_keeper against a real PostgreSQL (PostgresServer):
// replicas (each a LeaseKeeper on connections of its own, with a TTL of
// 1.5 s) whose callbacks start and stop pretend sessions. Checked: 3 keepers
// over 10 accounts hold 4/3/3 with every account held once (FenceFor, the
// sessions and the account_leases table agree); a keeper that joins two gets
// its quota while the others give back exactly the surplus, and no session
// ever starts while another keeper's fence for the account is visible; a
// keeper that stops hands over within a round and its replica row goes; a
// keeper cut off from the database (its backend terminated, reconnects
// refused) stops every session before its leases expire on the server, and
// reclaims them (a new generation; the old fence is refused) when let back;
// the same while its round thread hangs in a reconnect; a keeper back from a
// hang past its TTL rejoins and gets its share back; Open/Run; a config
// reload; a stopped PostgreSQL server is lived through. Waits are on
// conditions. Skipped with the reason when PostgreSQL is missing.

#include "pgstore/lease_keeper.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
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
using Clock = std::chrono::steady_clock;
using testsupport::PostgresServer;

constexpr milliseconds kTtl(1500);

template <typename Fn>
bool WaitFor(Fn done, milliseconds timeout = milliseconds(20000)) {
  const auto deadline = Clock::now() + timeout;
  while (!done()) {
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(milliseconds(5));
  }
  return true;
}

std::vector<std::string> Accounts(int n) {
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) out.push_back("acct-" + std::to_string(i));
  return out;
}

// The sessions the keepers' callbacks start and stop, for all keepers of a
// test: an account's session may start only while no other keeper shows a
// fence for it, and never runs twice. Thread-safe.
class Sessions {
 public:
  void Register(const std::string& name, const LeaseKeeper* keeper) {
    std::lock_guard lock(mu_);
    keepers_[name] = keeper;
  }
  void Unregister(const std::string& name) {
    std::lock_guard lock(mu_);
    keepers_.erase(name);
  }

  void Acquired(const std::string& name, const std::vector<std::string>& accounts) {
    std::lock_guard lock(mu_);
    for (const std::string& account : accounts) {
      ++acquired_[name];
      auto [it, inserted] = running_.emplace(account, name);
      if (!inserted) failures_.push_back(name + " started " + account + " still run by " + it->second);
      for (const auto& [other, keeper] : keepers_) {
        if (other != name && keeper->FenceFor(account)) {
          failures_.push_back(name + " started " + account + " while " + other + " holds its fence");
        }
      }
    }
  }
  void Released(const std::string& name, const std::vector<std::string>& accounts) {
    std::lock_guard lock(mu_);
    for (const std::string& account : accounts) {
      ++released_[name];
      released_at_[account] = Clock::now();
      auto it = running_.find(account);
      if (it == running_.end() || it->second != name) {
        failures_.push_back(name + " stopped " + account + " which it did not run");
      } else {
        running_.erase(it);
      }
    }
  }

  // The accounts whose sessions `name` runs.
  std::set<std::string> RunBy(const std::string& name) {
    std::lock_guard lock(mu_);
    std::set<std::string> out;
    for (const auto& [account, owner] : running_) {
      if (owner == name) out.insert(account);
    }
    return out;
  }
  int64_t acquired(const std::string& name) {
    std::lock_guard lock(mu_);
    return acquired_[name];
  }
  int64_t released(const std::string& name) {
    std::lock_guard lock(mu_);
    return released_[name];
  }
  std::map<std::string, Clock::time_point> released_at() {
    std::lock_guard lock(mu_);
    return released_at_;
  }
  std::vector<std::string> failures() {
    std::lock_guard lock(mu_);
    return failures_;
  }

 private:
  std::mutex mu_;
  std::map<std::string, const LeaseKeeper*> keepers_;
  std::map<std::string, std::string> running_;  // account -> keeper
  std::map<std::string, int64_t> acquired_;
  std::map<std::string, int64_t> released_;
  std::map<std::string, Clock::time_point> released_at_;
  std::vector<std::string> failures_;
};

// One replica: its keeper, and switches that make its reconnects fail at
// once (`cut`) or hang first, as to a black-holed server (`hang_ms`).
struct Replica {
  std::string name;
  std::atomic<bool> cut{false};
  std::atomic<int> hang_ms{0};
  std::atomic<bool> hanging{false};
  std::unique_ptr<LeaseKeeper> keeper;
};

class LeaseKeeperTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::string why = PostgresServer::WhyCannotRun(); !why.empty()) GTEST_SKIP() << why;
    MH_ASSERT_OK(pg_.Start());
    MH_ASSERT_OK(ConnectAdmin());
  }

  void TearDown() override {
    for (auto& r : replicas_) sessions_.Unregister(r->name);
    for (auto& r : replicas_) r->keeper.reset();
    for (const std::string& failure : sessions_.failures()) ADD_FAILURE() << failure;
  }

  util::Status ConnectAdmin() {
    auto conn = PgConnection::Connect(pg_.ConnectionUrl());
    if (!conn) return conn.error();
    admin_ = std::move(conn).value();
    if (auto s = MigratePg(*admin_); !s) return s;
    const std::pair<const char*, const char*> statements[] = {
        {"held_by",
         "SELECT owner::text, count(*) FROM account_leases WHERE expires_at > clock_timestamp() "
         "GROUP BY owner"},
        {"lease_of",
         "SELECT owner::text, generation FROM account_leases "
         "WHERE account = $1 AND expires_at > clock_timestamp()"},
        {"remaining_ms",
         "SELECT account, (extract(epoch FROM expires_at - clock_timestamp()) * 1000)::bigint "
         "FROM account_leases WHERE owner = $1::uuid AND expires_at > clock_timestamp()"},
        {"live_leases", "SELECT count(*) FROM account_leases WHERE expires_at > clock_timestamp()"},
        {"replica_rows", "SELECT count(*) FROM replicas WHERE id = $1::uuid"},
        {"terminate", "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1"},
    };
    for (const auto& [name, sql] : statements) {
      if (auto s = admin_->Prepare(name, sql); !s) return s;
    }
    return util::Ok();
  }

  Replica* StartReplica(const std::string& name, std::vector<std::string> accounts) {
    Replica* r = OpenReplica(name, std::move(accounts));
    if (r) r->keeper->Run();
    return r;
  }

  // The replica registered (LeaseKeeper::Open), not yet Run.
  Replica* OpenReplica(const std::string& name, std::vector<std::string> accounts) {
    auto replica = std::make_unique<Replica>();
    replica->name = name;
    Replica* raw = replica.get();
    LeaseKeeperOptions options;
    options.ttl = kTtl;
    options.host = name;
    options.accounts = std::move(accounts);
    const std::string url = pg_.ConnectionUrl() + "?application_name=" + name;
    options.connect = [raw, url]() -> util::Result<std::unique_ptr<PgConnection>> {
      if (raw->hang_ms > 0) {
        raw->hanging = true;
        std::this_thread::sleep_for(milliseconds(raw->hang_ms.load()));  // the black hole, not a test wait
        raw->hanging = false;
      }
      if (raw->cut) {
        return util::Error(util::ErrorKind::kStore, "store.pg.connection", util::RetryClass::kBackoff,
                           "the test cut this replica off");
      }
      PgConnectOptions connect;
      connect.connect_timeout = milliseconds(1000);
      return PgConnection::Connect(url, connect);
    };
    LeaseKeeperCallbacks callbacks;
    callbacks.acquired = [this, name](const std::vector<std::string>& a) { sessions_.Acquired(name, a); };
    callbacks.released = [this, name](const std::vector<std::string>& a) { sessions_.Released(name, a); };
    auto keeper = LeaseKeeper::Open(std::move(options), std::move(callbacks));
    EXPECT_TRUE(keeper.ok()) << keeper.error().ToString();
    if (!keeper.ok()) return nullptr;
    replica->keeper = std::move(keeper).value();
    sessions_.Register(name, replica->keeper.get());
    replicas_.push_back(std::move(replica));
    return raw;
  }

  void StopReplica(Replica& replica) {
    sessions_.Unregister(replica.name);
    replica.keeper->Stop();
  }

  // Terminates the replica's backend (its reconnects are the caller's to refuse).
  void CutOff(const Replica& r) {
    auto terminated = admin_->Exec("terminate", {r.name});
    ASSERT_TRUE(terminated.ok()) << terminated.error().ToString();
    EXPECT_EQ(terminated->Int64(0, 0).value(), 1);
  }

  // When the replica's live leases expire by the server's clock, as local
  // times (a lower bound: the query's latency is on the safe side). Read
  // after a cut, nothing renews them any more: these are final.
  std::map<std::string, Clock::time_point> ServerExpiries(const Replica& r) {
    const auto asked = Clock::now();
    auto remaining = admin_->Exec("remaining_ms", {r.keeper->replica_id()});
    EXPECT_TRUE(remaining.ok()) << remaining.error().ToString();
    std::map<std::string, Clock::time_point> out;
    if (!remaining.ok()) return out;
    for (int i = 0; i < remaining->rows(); ++i) {
      out[std::string(remaining->Text(i, 0).value())] = asked + milliseconds(remaining->Int64(i, 1).value());
    }
    return out;
  }

  // Waits until `r` runs no session, then checks each was stopped before
  // its lease expired on the server, and prints by how much.
  void ExpectReleasedBeforeExpiry(const Replica& r, const std::map<std::string, Clock::time_point>& expires) {
    ASSERT_FALSE(expires.empty());
    ASSERT_TRUE(WaitFor([&] { return sessions_.RunBy(r.name).empty(); }));
    const std::map<std::string, Clock::time_point> released = sessions_.released_at();
    for (const auto& [account, expiry] : expires) {
      ASSERT_TRUE(released.count(account)) << account;
      const auto before_expiry = std::chrono::duration_cast<milliseconds>(expiry - released.at(account));
      std::cerr << account << " released " << (kTtl - before_expiry).count() << " ms after its last renewal, "
                << before_expiry.count() << " ms before its lease expired on the server (ttl " << kTtl.count()
                << " ms)\n";
      EXPECT_GT(before_expiry.count(), 0) << account << " was released after its lease expired";
    }
  }

  // Every account held by exactly one of `rs`, each at its quota among them.
  // Each holds its quota, every account is held, and each replica runs the
  // sessions of exactly what it holds: a keeper counts a lease as owned as
  // soon as it took it, and starts the session right after (a clean-clone
  // ASan run met owned 4 while 2 sessions ran).
  bool Balanced(const std::vector<Replica*>& rs, int64_t account_count) {
    std::vector<std::string> ids;
    for (Replica* r : rs) ids.push_back(r->keeper->replica_id());
    std::sort(ids.begin(), ids.end());
    std::set<std::string> all;
    for (Replica* r : rs) {
      const std::vector<std::string> owned = r->keeper->owned();
      if (static_cast<int64_t>(owned.size()) != QuotaOf(account_count, ids, r->keeper->replica_id())) return false;
      if (sessions_.RunBy(r->name) != std::set<std::string>(owned.begin(), owned.end())) return false;
      all.insert(owned.begin(), owned.end());
    }
    return static_cast<int64_t>(all.size()) == account_count;
  }

  std::map<std::string, int64_t> HeldByOwner() {
    std::map<std::string, int64_t> out;
    auto rows = admin_->Exec("held_by");
    EXPECT_TRUE(rows.ok()) << rows.error().ToString();
    if (!rows.ok()) return out;
    for (int i = 0; i < rows->rows(); ++i) out[std::string(rows->Text(i, 0).value())] = rows->Int64(i, 1).value();
    return out;
  }

  // The live lease of `account` as the table has it (owner "" for none).
  Fence LeaseOf(const std::string& account) {
    auto rows = admin_->Exec("lease_of", {account});
    if (!rows.ok() || rows->rows() != 1) return Fence{account, "", 0};
    return Fence{account, std::string(rows->Text(0, 0).value()), rows->Int64(0, 1).value()};
  }

  PostgresServer pg_;
  std::unique_ptr<PgConnection> admin_;
  Sessions sessions_;
  std::vector<std::unique_ptr<Replica>> replicas_;
};

TEST_F(LeaseKeeperTest, ThreeKeepersShareTenAccountsEachHeldOnce) {
  const std::vector<std::string> accounts = Accounts(10);
  std::vector<Replica*> rs;
  for (const char* name : {"r1", "r2", "r3"}) {
    rs.push_back(StartReplica(name, accounts));
    ASSERT_TRUE(rs.back());
  }
  ASSERT_TRUE(WaitFor([&] { return Balanced(rs, 10); }));

  // FenceFor, the sessions and the table agree, account by account.
  for (const std::string& account : accounts) {
    int holders = 0;
    for (Replica* r : rs) {
      std::optional<Fence> fence = r->keeper->FenceFor(account);
      if (!fence) continue;
      ++holders;
      EXPECT_EQ(fence->owner, r->keeper->replica_id());
      EXPECT_EQ(*fence, LeaseOf(account));
      EXPECT_EQ(sessions_.RunBy(r->name).count(account), 1u) << account;
    }
    EXPECT_EQ(holders, 1) << account;
  }
  const std::map<std::string, int64_t> held = HeldByOwner();
  int64_t total = 0;
  for (Replica* r : rs) {
    const int64_t owned = r->keeper->stats().owned;
    EXPECT_TRUE(owned == 3 || owned == 4) << r->name << " holds " << owned;
    EXPECT_EQ(held.count(r->keeper->replica_id()) ? held.at(r->keeper->replica_id()) : 0, owned) << r->name;
    EXPECT_TRUE(r->keeper->reachable());
    total += owned;
  }
  EXPECT_EQ(total, 10);
}

// Two keepers hold 5/5; a third joins and ends at its quota. The two give
// back exactly what it takes, one account per round each, and no session
// of theirs restarts.
TEST_F(LeaseKeeperTest, AJoinerGetsItsShareWithoutOverlapOrChurn) {
  const std::vector<std::string> accounts = Accounts(10);
  Replica* a = StartReplica("a", accounts);
  Replica* b = StartReplica("b", accounts);
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(WaitFor([&] { return Balanced({a, b}, 10); }));
  const int64_t acquired_before = sessions_.acquired("a") + sessions_.acquired("b");
  const int64_t given_before = a->keeper->stats().given_back + b->keeper->stats().given_back;

  Replica* c = StartReplica("c", accounts);
  ASSERT_TRUE(c);
  ASSERT_TRUE(WaitFor([&] { return Balanced({a, b, c}, 10); }));
  std::vector<std::string> ids = {a->keeper->replica_id(), b->keeper->replica_id(), c->keeper->replica_id()};
  std::sort(ids.begin(), ids.end());
  const int64_t joiner_share = QuotaOf(10, ids, c->keeper->replica_id());
  EXPECT_EQ(c->keeper->stats().owned, joiner_share);
  EXPECT_EQ(static_cast<int64_t>(sessions_.RunBy("c").size()), joiner_share);
  EXPECT_EQ(a->keeper->stats().given_back + b->keeper->stats().given_back - given_before, joiner_share);
  EXPECT_EQ(sessions_.acquired("a") + sessions_.acquired("b"), acquired_before) << "an old keeper restarted a session";
  EXPECT_EQ(a->keeper->stats().losses + b->keeper->stats().losses + c->keeper->stats().losses, 0);
  EXPECT_TRUE(sessions_.failures().empty());
}

// A clean stop releases every session, removes the replica row and gives its
// accounts back: the others take them within about one round (ttl/3), far
// from the TTL a crash would cost.
TEST_F(LeaseKeeperTest, StopHandsOverWithinARoundAndRemovesTheReplicaRow) {
  const std::vector<std::string> accounts = Accounts(10);
  Replica* a = StartReplica("a", accounts);
  Replica* b = StartReplica("b", accounts);
  Replica* c = StartReplica("c", accounts);
  ASSERT_TRUE(a && b && c);
  ASSERT_TRUE(WaitFor([&] { return Balanced({a, b, c}, 10); }));
  ASSERT_FALSE(sessions_.RunBy("c").empty());
  const std::string c_id = c->keeper->replica_id();

  const auto stopped = Clock::now();
  StopReplica(*c);
  EXPECT_TRUE(sessions_.RunBy("c").empty());
  EXPECT_FALSE(c->keeper->FenceFor(accounts[0]) || c->keeper->FenceFor(accounts[9]));
  auto rows = admin_->Exec("replica_rows", {c_id});
  MH_ASSERT_OK(rows);
  EXPECT_EQ(rows->Int64(0, 0).value(), 0);
  ASSERT_TRUE(WaitFor([&] { return Balanced({a, b}, 10); }));
  const auto handover = std::chrono::duration_cast<milliseconds>(Clock::now() - stopped);
  std::cerr << "handover after a clean stop: " << handover.count() << " ms (ttl " << kTtl.count() << " ms)\n";
  EXPECT_LT(handover, kTtl * 2 / 3);
  c->keeper->Stop();  // idempotent
}

// The keeper's backend is terminated and its reconnects refused: every
// session stops before its lease expires by the server's clock (the expiry
// read after the cut, when nothing can renew it any more), FenceFor goes
// nullopt and reachable() false. Let back, it reclaims its accounts at a new
// generation, and the fence it held before is refused by CheckFence.
TEST_F(LeaseKeeperTest, ACutOffKeeperStopsBeforeItsLeasesExpireAndReclaimsAfter) {
  const std::vector<std::string> accounts = Accounts(4);
  Replica* a = StartReplica("a", accounts);
  ASSERT_TRUE(a);
  ASSERT_TRUE(WaitFor([&] { return Balanced({a}, 4); }));
  const std::optional<Fence> old = a->keeper->FenceFor(accounts[0]);
  ASSERT_TRUE(old);

  a->cut = true;
  CutOff(*a);
  ExpectReleasedBeforeExpiry(*a, ServerExpiries(*a));
  EXPECT_FALSE(a->keeper->FenceFor(accounts[0]));
  EXPECT_TRUE(WaitFor([&] { return !a->keeper->reachable(); }));
  EXPECT_GE(a->keeper->stats().losses, 1);
  EXPECT_EQ(a->keeper->stats().owned, 0);

  // Let back once its leases expired on the server: it takes them over anew.
  ASSERT_TRUE(WaitFor([&] {
    auto live = admin_->Exec("live_leases");
    return live.ok() && live->Int64(0, 0).value() == 0;
  }));
  a->cut = false;
  ASSERT_TRUE(WaitFor([&] { return sessions_.RunBy("a").size() == accounts.size(); }));
  EXPECT_TRUE(a->keeper->reachable());
  EXPECT_GE(a->keeper->stats().rounds_failed, 1);
  const std::optional<Fence> fresh = a->keeper->FenceFor(accounts[0]);
  ASSERT_TRUE(fresh);
  EXPECT_EQ(fresh->owner, old->owner);
  EXPECT_EQ(fresh->generation, old->generation + 1);
  util::Status fenced = admin_->InTransaction([&] { return CheckFence(*admin_, *old); });
  ASSERT_FALSE(fenced.ok());
  EXPECT_EQ(fenced.error().code(), "store.fenced");
  MH_EXPECT_OK(admin_->InTransaction([&] { return CheckFence(*admin_, *fresh); }));
}

// The same while the round thread hangs in a reconnect longer than the TTL
// (a black-holed server): the deadline thread releases on time all the same.
TEST_F(LeaseKeeperTest, LeasesAreReleasedOnTimeWhileTheRoundThreadHangs) {
  const std::vector<std::string> accounts = Accounts(3);
  Replica* a = StartReplica("a", accounts);
  ASSERT_TRUE(a);
  ASSERT_TRUE(WaitFor([&] { return Balanced({a}, 3); }));
  a->cut = true;
  a->hang_ms = static_cast<int>(kTtl.count() * 2);
  CutOff(*a);
  ExpectReleasedBeforeExpiry(*a, ServerExpiries(*a));
  EXPECT_TRUE(a->hanging) << "the round thread was not stuck: the test proves nothing";
  EXPECT_FALSE(a->keeper->FenceFor(accounts[2]));
  EXPECT_EQ(a->keeper->stats().losses, 3);
  a->hang_ms = 0;  // the teardown's Stop waits for the hang under way, then leaves
}

// As a paused replica (SIGSTOP) looks to the others: A hangs past its TTL,
// B takes A's accounts over (never while A shows a fence: Sessions checks),
// A comes back, finds its leases gone and rejoins as a member: the two end
// at 2/2 again, A's sessions on new generations.
TEST_F(LeaseKeeperTest, AReplicaBackFromAHangRejoinsAndGetsItsShareBack) {
  const std::vector<std::string> accounts = Accounts(4);
  Replica* a = StartReplica("a", accounts);
  Replica* b = StartReplica("b", accounts);
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(WaitFor([&] { return Balanced({a, b}, 4); }));
  const std::vector<std::string> a_accounts = a->keeper->owned();
  ASSERT_EQ(a_accounts.size(), 2u);
  const std::optional<Fence> old = a->keeper->FenceFor(a_accounts[0]);
  ASSERT_TRUE(old);

  a->cut = true;
  a->hang_ms = static_cast<int>(kTtl.count() * 3);
  CutOff(*a);
  ASSERT_TRUE(WaitFor([&] { return b->keeper->owned().size() == accounts.size(); }));
  EXPECT_TRUE(sessions_.RunBy("a").empty());
  EXPECT_TRUE(a->hanging);
  a->cut = false;
  a->hang_ms = 0;
  ASSERT_TRUE(WaitFor([&] { return Balanced({a, b}, 4); }));
  const std::optional<Fence> again = a->keeper->FenceFor(a->keeper->owned()[0]);
  ASSERT_TRUE(again);
  EXPECT_GE(again->generation, 2);
  EXPECT_EQ(again->owner, old->owner);  // the same replica, rejoined
  EXPECT_GE(a->keeper->stats().losses, 2);
  EXPECT_GE(b->keeper->stats().given_back, 2);
  EXPECT_TRUE(a->keeper->reachable());
  EXPECT_TRUE(sessions_.failures().empty());
}

// Open registers the replica and claims nothing (the caller wires replica_id()
// and fences() first); Run claims. A keeper opened and never run still leaves.
TEST_F(LeaseKeeperTest, OpenRegistersRunClaimsAndAnUnrunKeeperLeaves) {
  Replica* a = OpenReplica("a", Accounts(2));
  ASSERT_TRUE(a);
  const std::string id = a->keeper->replica_id();
  EXPECT_FALSE(id.empty());
  auto rows = admin_->Exec("replica_rows", {id});
  MH_ASSERT_OK(rows);
  EXPECT_EQ(rows->Int64(0, 0).value(), 1);
  EXPECT_EQ(sessions_.acquired("a"), 0);
  EXPECT_FALSE(a->keeper->FenceFor("acct-0"));
  EXPECT_FALSE(a->keeper->reachable());
  a->keeper->Run();
  EXPECT_EQ(sessions_.RunBy("a"), (std::set<std::string>{"acct-0", "acct-1"}));  // the first round runs in Run
  EXPECT_TRUE(a->keeper->FenceFor("acct-0"));
  EXPECT_TRUE(a->keeper->reachable());

  Replica* b = OpenReplica("b", Accounts(2));
  ASSERT_TRUE(b);
  const std::string b_id = b->keeper->replica_id();
  b->keeper->Stop();
  b->keeper->Run();  // a no-op after Stop
  rows = admin_->Exec("replica_rows", {b_id});
  MH_ASSERT_OK(rows);
  EXPECT_EQ(rows->Int64(0, 0).value(), 0);
  EXPECT_EQ(sessions_.acquired("b"), 0);
}

// A config reload: accounts no longer configured are released and given
// back (free in the table), a new one is claimed, the rest run on.
TEST_F(LeaseKeeperTest, SetAccountsGivesBackRemovedAccountsAndClaimsNewOnes) {
  Replica* a = StartReplica("a", {"keep", "drop-1", "drop-2"});
  ASSERT_TRUE(a);
  ASSERT_EQ(sessions_.RunBy("a").size(), 3u);  // the first round runs in Start
  a->keeper->SetAccounts({"keep", "new"});
  ASSERT_TRUE(WaitFor([&] { return sessions_.RunBy("a") == std::set<std::string>{"keep", "new"}; }));
  EXPECT_EQ(a->keeper->owned(), (std::vector<std::string>{"keep", "new"}));
  EXPECT_EQ(LeaseOf("drop-1").owner, "");
  EXPECT_EQ(LeaseOf("drop-2").owner, "");
  EXPECT_EQ(LeaseOf("keep").owner, a->keeper->replica_id());
  EXPECT_EQ(a->keeper->stats().given_back, 2);
  EXPECT_EQ(sessions_.acquired("a"), 4);  // keep, drop-1, drop-2, then new: keep never restarted
  EXPECT_EQ(a->keeper->stats().losses, 0);
}

// The PostgreSQL server stops: the keeper releases every session within the
// TTL of the stop and reports unreachable; once the server is back (same
// port, same data) it reconnects and holds every account again.
TEST_F(LeaseKeeperTest, AStoppedServerIsLivedThrough) {
  const std::vector<std::string> accounts = Accounts(4);
  Replica* a = StartReplica("a", accounts);
  ASSERT_TRUE(a);
  ASSERT_TRUE(WaitFor([&] { return Balanced({a}, 4); }));
  admin_.reset();
  const auto stopped = Clock::now();
  MH_ASSERT_OK(pg_.Stop());
  ASSERT_TRUE(WaitFor([&] { return sessions_.RunBy("a").empty(); }));
  const auto released = std::chrono::duration_cast<milliseconds>(Clock::now() - stopped);
  std::cerr << "every session stopped " << released.count() << " ms after the server stop began (ttl " << kTtl.count()
            << " ms)\n";
  EXPECT_LT(released, kTtl);
  EXPECT_TRUE(WaitFor([&] { return !a->keeper->reachable(); }));
  EXPECT_FALSE(a->keeper->FenceFor(accounts[1]));

  MH_ASSERT_OK(pg_.Start());
  ASSERT_TRUE(WaitFor([&] { return sessions_.RunBy("a").size() == accounts.size(); }));
  EXPECT_TRUE(a->keeper->reachable());
  EXPECT_TRUE(a->keeper->FenceFor(accounts[1]));
}

}  // namespace
}  // namespace mailhook::pgstore
