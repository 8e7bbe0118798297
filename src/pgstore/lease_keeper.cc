#include "pgstore/lease_keeper.h"

#include <algorithm>
#include <exception>
#include <utility>

#include <fmt/format.h>

#include "util/log.h"

namespace mailhook::pgstore {
namespace {

using std::chrono::milliseconds;
using util::MutexLock;
using util::Status;

// Rows of replicas silent this many TTLs are removed, every this many rounds
// (each start registers a fresh id; the rows of stopped processes pile up).
constexpr int64_t kForgetAfterTtls = 3;
constexpr int64_t kForgetEveryRounds = 10;

std::chrono::steady_clock::time_point SteadyNow() { return std::chrono::steady_clock::now(); }

std::vector<std::string> SortedUnique(std::vector<std::string> accounts) {
  std::sort(accounts.begin(), accounts.end());
  accounts.erase(std::unique(accounts.begin(), accounts.end()), accounts.end());
  return accounts;
}

milliseconds RoundInterval(milliseconds ttl) { return std::max(ttl / 3, milliseconds(1)); }

}  // namespace

LeaseKeeper::LeaseKeeper(LeaseKeeperOptions options, LeaseKeeperCallbacks callbacks)
    : options_(std::move(options)),
      callbacks_(std::move(callbacks)),
      book_(options_.ttl, options_.ttl / 6),
      accounts_(SortedUnique(options_.accounts)) {}

LeaseKeeper::~LeaseKeeper() { Stop(); }

util::Result<std::unique_ptr<LeaseKeeper>> LeaseKeeper::Open(LeaseKeeperOptions options,
                                                             LeaseKeeperCallbacks callbacks) {
  std::unique_ptr<LeaseKeeper> keeper(new LeaseKeeper(std::move(options), std::move(callbacks)));
  auto conn = keeper->options_.connect();
  if (!conn) return conn.error();
  keeper->conn_ = std::move(conn).value();
  keeper->leases_ = std::make_unique<PgLeases>(*keeper->conn_, keeper->options_.ttl);
  auto id = keeper->leases_->Register(keeper->options_.host);
  if (!id) return id.error();
  keeper->id_ = *id;
  util::Log(util::Area::kStore)
      .info("cluster.registered replica={} host={} ttl_ms={}", keeper->id_, keeper->options_.host,
            keeper->options_.ttl.count());
  return keeper;
}

void LeaseKeeper::Run() {
  MutexLock stop_lock(stop_mu_);
  if (ran_ || stopped_) return;
  ran_ = true;
  deadlines_ = std::thread([this] { RunDeadlines(); });
  const SteadyTime next = Round();
  rounds_ = std::thread([this, next] { RunRounds(next); });
}

util::Result<std::unique_ptr<LeaseKeeper>> LeaseKeeper::Start(LeaseKeeperOptions options,
                                                              LeaseKeeperCallbacks callbacks) {
  auto keeper = Open(std::move(options), std::move(callbacks));
  if (!keeper) return keeper;
  (*keeper)->Run();
  return keeper;
}

std::optional<Fence> LeaseKeeper::FenceFor(const std::string& account) const {
  MutexLock lock(mu_);
  return book_.Find(account, SteadyNow());
}

FenceSource LeaseKeeper::fences() const {
  return [this](const std::string& account) { return FenceFor(account); };
}

bool LeaseKeeper::reachable() const {
  MutexLock lock(mu_);
  return reachable_;
}

LeaseKeeperStats LeaseKeeper::stats() const {
  MutexLock lock(mu_);
  LeaseKeeperStats out = stats_;
  out.owned = book_.size();
  return out;
}

std::vector<std::string> LeaseKeeper::owned() const {
  MutexLock lock(mu_);
  return book_.Accounts();
}

void LeaseKeeper::SetAccounts(std::vector<std::string> accounts) {
  MutexLock lock(mu_);
  accounts_ = SortedUnique(std::move(accounts));
  accounts_changed_ = true;
  wake_rounds_.SignalAll();
}

void LeaseKeeper::Stop() {
  MutexLock stop_lock(stop_mu_);
  if (stopped_) return;
  stopped_ = true;
  if (!ran_) {
    if (!id_.empty()) Leave();  // registered, never run: no thread to do it
    return;
  }
  {
    MutexLock lock(mu_);
    stop_ = true;
    wake_rounds_.SignalAll();
  }
  // The round thread releases everything and leaves; the deadline thread
  // keeps watching until then (the round thread may be stuck in a call).
  if (rounds_.joinable()) rounds_.join();
  {
    MutexLock lock(mu_);
    stop_deadlines_ = true;
    wake_deadlines_.SignalAll();
  }
  if (deadlines_.joinable()) deadlines_.join();
}

void LeaseKeeper::RunRounds(SteadyTime next) {
  try {
    while (true) {
      {
        MutexLock lock(mu_);
        while (!stop_ && !accounts_changed_ && SteadyNow() < next) wake_rounds_.WaitUntil(mu_, next);
        if (stop_) break;
        accounts_changed_ = false;
      }
      next = Round();
    }
    Leave();
  } catch (const std::exception& e) {
    util::Log(util::Area::kStore).error("cluster.keeper_crashed replica={} cause=\"{}\"", id_, e.what());
  }
}

void LeaseKeeper::RunDeadlines() {
  try {
    while (true) {
      {
        MutexLock lock(mu_);
        if (stop_deadlines_) return;
        const std::optional<SteadyTime> next = book_.NextDeadline();
        if (!next) {
          wake_deadlines_.Wait(mu_);
          continue;
        }
        if (SteadyNow() < *next) {
          wake_deadlines_.WaitUntil(mu_, *next);
          continue;  // the book may have changed meanwhile: look again
        }
      }
      MutexLock cb(cb_mu_);
      std::vector<std::string> gone;
      {
        MutexLock lock(mu_);
        gone = book_.Expire(SteadyNow());
        stats_.losses += static_cast<int64_t>(gone.size());
      }
      Released(gone, "cluster.lease_deadline", true);
    }
  } catch (const std::exception& e) {
    util::Log(util::Area::kStore).error("cluster.deadlines_crashed replica={} cause=\"{}\"", id_, e.what());
  }
}

LeaseKeeper::SteadyTime LeaseKeeper::Round() {
  const SteadyTime started = SteadyNow();
  const Status s = RoundSteps(started);
  const milliseconds interval = RoundInterval(options_.ttl);
  if (s) {
    backoff_ = milliseconds(0);
    MutexLock lock(mu_);
    reachable_ = true;
    return started + interval;
  }
  // A broken connection is thrown away whole; the next round connects anew.
  if (conn_ && conn_->broken()) {
    leases_.reset();
    conn_.reset();
  }
  backoff_ = backoff_.count() == 0 ? std::max(options_.ttl / 24, milliseconds(10)) : std::min(backoff_ * 2, interval);
  int64_t failed = 0;
  {
    MutexLock lock(mu_);
    reachable_ = false;
    failed = ++stats_.rounds_failed;
  }
  util::Log(util::Area::kStore)
      .warn("cluster.round_failed replica={} failed_rounds={} delay_ms={} cause=\"{}\"", id_, failed, backoff_.count(),
            s.error().ToString());
  return SteadyNow() + backoff_;
}

Status LeaseKeeper::RoundSteps(SteadyTime started) {
  if (auto s = EnsureConnected(); !s) return s;
  if (auto s = leases_->Heartbeat(); !s) return s;
  std::vector<std::string> unconfigured;
  if (auto s = RenewHeld(started, unconfigured); !s) return s;
  if (!unconfigured.empty()) {
    if (auto s = GiveBack(unconfigured); !s) return s;
  }
  std::vector<std::string> accounts;
  {
    MutexLock lock(mu_);
    accounts = accounts_;
  }
  if (auto s = ClaimQuota(started, accounts); !s) return s;
  if (++round_count_ % kForgetEveryRounds == 0) {
    auto forgotten = leases_->ForgetReplicasSilentFor(options_.ttl * kForgetAfterTtls);
    if (!forgotten) return forgotten.error();
    if (*forgotten > 0) util::Log(util::Area::kStore).info("cluster.replicas_forgotten count={}", *forgotten);
  }
  return util::Ok();
}

Status LeaseKeeper::EnsureConnected() {
  if (conn_ && !conn_->broken()) return util::Ok();
  leases_.reset();
  conn_.reset();
  auto conn = options_.connect();
  if (!conn) return conn.error();
  auto leases = std::make_unique<PgLeases>(**conn, options_.ttl);
  if (auto s = leases->Rejoin(id_, options_.host); !s) return s;
  conn_ = std::move(conn).value();
  leases_ = std::move(leases);
  util::Log(util::Area::kStore).info("cluster.reconnected replica={}", id_);
  return util::Ok();
}

// Renews every lease this replica holds on the server; the book's leases
// missing from the answer expired unrenewed (a pause past the TTL) or were
// taken over: their sessions stop. Renewed leases of accounts no longer
// configured go to `unconfigured`, to be given back.
Status LeaseKeeper::RenewHeld(SteadyTime started, std::vector<std::string>& unconfigured) {
  auto renewed = leases_->Renew();
  if (!renewed) return renewed.error();
  MutexLock cb(cb_mu_);
  std::vector<std::string> lost;
  {
    MutexLock lock(mu_);
    for (const Fence& f : *renewed) {
      if (!std::binary_search(accounts_.begin(), accounts_.end(), f.account)) unconfigured.push_back(f.account);
    }
    lost = book_.Confirm(*renewed, started);
    stats_.renewals += static_cast<int64_t>(renewed->size());
    stats_.losses += static_cast<int64_t>(lost.size());
  }
  Released(lost, "cluster.lease_lost", true);
  return util::Ok();
}

// Claims up to this replica's quota; every lease held among `accounts` comes
// back, so one the deadline thread dropped while the server still held it is
// adopted again. Above the quota (a replica joined), gives a few back.
Status LeaseKeeper::ClaimQuota(SteadyTime started, const std::vector<std::string>& accounts) {
  auto live = leases_->LiveReplicas();
  if (!live) return live.error();
  const int64_t quota = QuotaOf(static_cast<int64_t>(accounts.size()), *live, id_);
  auto held = leases_->Claim(accounts, quota);
  if (!held) return held.error();
  std::vector<std::string> surplus;
  {
    MutexLock cb(cb_mu_);
    std::vector<std::string> lost;
    std::vector<std::string> gained;
    {
      MutexLock lock(mu_);
      lost = book_.Confirm(*held, started);
      stats_.losses += static_cast<int64_t>(lost.size());
    }
    Released(lost, "cluster.lease_lost", true);
    {
      MutexLock lock(mu_);
      gained = book_.Adopt(*held, started);
      surplus = SurplusToGiveBack(book_.Accounts(), quota, options_.give_back_per_round);
      wake_deadlines_.SignalAll();  // a first deadline, or an earlier one
    }
    if (!gained.empty()) {
      util::Log(util::Area::kStore)
          .info("cluster.lease_acquired replica={} accounts={} quota={}", id_, fmt::join(gained, ","), quota);
      if (callbacks_.acquired) callbacks_.acquired(gained);
    }
  }
  if (surplus.empty()) return util::Ok();
  return GiveBack(surplus);
}

Status LeaseKeeper::GiveBack(const std::vector<std::string>& accounts) {
  {
    MutexLock cb(cb_mu_);
    std::vector<std::string> removed;
    {
      MutexLock lock(mu_);
      removed = book_.Remove(accounts);
    }
    Released(removed, "cluster.lease_giving_back", false);
  }
  auto given = leases_->GiveBack(accounts);
  if (!given) return given.error();
  MutexLock lock(mu_);
  stats_.given_back += static_cast<int64_t>(given->size());
  return util::Ok();
}

void LeaseKeeper::Released(const std::vector<std::string>& gone, const char* event, bool lost) {
  if (gone.empty()) return;
  util::Log(util::Area::kStore)
      .log(lost ? spdlog::level::warn : spdlog::level::info, "{} replica={} accounts={}", event, id_,
           fmt::join(gone, ","));
  if (callbacks_.released) callbacks_.released(gone);
}

void LeaseKeeper::Leave() {
  {
    MutexLock cb(cb_mu_);
    std::vector<std::string> all;
    {
      MutexLock lock(mu_);
      all = book_.RemoveAll();
    }
    Released(all, "cluster.leaving", false);
  }
  Status s = EnsureConnected();
  if (s) {
    auto left = leases_->Leave();
    if (left) {
      MutexLock lock(mu_);
      stats_.given_back += static_cast<int64_t>(left->size());
    } else {
      s = left.error();
    }
  }
  {
    MutexLock lock(mu_);
    reachable_ = false;
  }
  if (s) {
    util::Log(util::Area::kStore).info("cluster.left replica={}", id_);
  } else {
    util::Log(util::Area::kStore)
        .warn("cluster.leave_failed replica={} cause=\"{}\" (its leases end after the TTL instead)", id_,
              s.error().ToString());
  }
  leases_.reset();
  conn_.reset();
}

}  // namespace mailhook::pgstore
