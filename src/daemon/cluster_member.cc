#include "daemon/cluster_member.h"

#include <unistd.h>

#include <algorithm>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "util/log.h"

#ifdef MAILHOOK_HAVE_PGSTORE
#include "pgstore/lease_keeper.h"
#include "pgstore/pg_schema.h"
#endif

namespace mailhook::daemon {
namespace {

const config::Account* FindConfiguredAccount(const config::Config& config, const std::string& name) {
  for (const auto& a : config.accounts)
    if (a.name == name) return &a;
  return nullptr;
}

std::vector<std::string> AccountNames(const config::Config& config) {
  std::vector<std::string> names;
  for (const auto& a : config.accounts) names.push_back(a.name);
  return names;
}

// "a,b,c" for logs (account names are configuration, not secrets); "-" for none.
std::string CommaList(const std::vector<std::string>& names) {
  return names.empty() ? "-" : fmt::format("{}", fmt::join(names, ","));
}

// Written in replicas.host for `cluster status`: which machine a replica is.
std::string HostName() {
  char name[256] = {};
  if (::gethostname(name, sizeof(name) - 1) != 0) return "unknown";
  return name;
}

}  // namespace

#ifdef MAILHOOK_HAVE_PGSTORE
struct ClusterMember::Keeper {
  std::unique_ptr<pgstore::LeaseKeeper> keeper;
};
#else
struct ClusterMember::Keeper {};
#endif

ClusterMember::ClusterMember() = default;

ClusterMember::~ClusterMember() { Stop(); }

#ifdef MAILHOOK_HAVE_PGSTORE
util::Result<std::unique_ptr<ClusterMember>> ClusterMember::Join(const config::StoreLocation& location,
                                                                 const config::Config& config,
                                                                 util::MetricsCatalog& metrics) {
  std::unique_ptr<ClusterMember> member(new ClusterMember());
  if (location.kind != config::StoreKind::kPostgres) return member;
  pgstore::LeaseKeeperOptions options;
  // Each reconnect migrates too (a no-op once done): the keeper may be the
  // first of the replicas to reach a fresh database.
  options.connect = [url = location.url]() -> util::Result<std::unique_ptr<pgstore::PgConnection>> {
    auto conn = pgstore::PgConnection::Connect(url.reveal());
    if (!conn.ok()) return conn.error();
    if (auto s = pgstore::MigratePg(**conn); !s) return s.error();
    return std::move(*conn);
  };
  options.ttl = config.store.lease_ttl;
  const std::string host = HostName();
  options.host = host;
  options.accounts = AccountNames(config);
  // Rebalancing moves at most 1/20 of the accounts per round and replica:
  // no storm of session restarts when a replica joins, yet 1,000 accounts
  // rebalance in about ten rounds (one account a round would take 500).
  options.give_back_per_round = std::max<int64_t>(1, (static_cast<int64_t>(options.accounts.size()) + 19) / 20);
  ClusterMember* self = member.get();
  pgstore::LeaseKeeperCallbacks callbacks{[self](const std::vector<std::string>& names) { self->Acquired(names); },
                                          [self](const std::vector<std::string>& names) { self->Released(names); }};
  auto keeper = pgstore::LeaseKeeper::Open(std::move(options), std::move(callbacks));
  if (!keeper.ok()) return keeper.error();
  member->keeper_ = std::make_unique<Keeper>(Keeper{std::move(*keeper)});
  metrics.SetCollector([self, &metrics] { self->Collect(metrics); });
  util::Log(util::Area::kDaemon)
      .info("cluster.joined replica={} host={} accounts={} lease_ttl_ms={}", self->keeper()->replica_id(), host,
            config.accounts.size(), config.store.lease_ttl.count());
  return member;
}

const pgstore::LeaseKeeper* ClusterMember::keeper() const { return keeper_ ? keeper_->keeper.get() : nullptr; }

void ClusterMember::Collect(util::MetricsCatalog& metrics) const {
  util::MutexLock lock(collect_mu_);
  const pgstore::LeaseKeeperStats stats = keeper_->keeper->stats();
  metrics.cluster_accounts_owned.Set(static_cast<double>(stats.owned));
  // Counters only go up: add what the keeper counted since the last Render.
  metrics.cluster_lease_renewals.Inc(static_cast<double>(stats.renewals) - metrics.cluster_lease_renewals.Value());
  metrics.cluster_lease_losses.Inc(static_cast<double>(stats.losses) - metrics.cluster_lease_losses.Value());
  metrics.cluster_store_reachable.Set(keeper_->keeper->reachable() ? 1 : 0);
}

void ClusterMember::AddReadiness(http::Readiness& r) const {
  if (!keeper_ || keeper_->keeper->reachable()) return;
  r.ready = false;
  r.not_ready.push_back(
      "store: unreachable (the lease keeper's last round did not reach PostgreSQL; accounts stop when their leases "
      "run out)");
}
#else
util::Result<std::unique_ptr<ClusterMember>> ClusterMember::Join(const config::StoreLocation& location,
                                                                 const config::Config& /*config*/,
                                                                 util::MetricsCatalog& /*metrics*/) {
  if (location.kind == config::StoreKind::kPostgres) {
    return util::Error("store.no_postgres", util::RetryClass::kNeedsOperator,
                       "this mailhook was built without PostgreSQL (libpq-dev was missing at build time); install "
                       "libpq-dev and rebuild, or remove store.url to use SQLite in state_dir");
  }
  return std::unique_ptr<ClusterMember>(new ClusterMember());
}

const pgstore::LeaseKeeper* ClusterMember::keeper() const { return nullptr; }
void ClusterMember::Collect(util::MetricsCatalog& /*metrics*/) const {}
void ClusterMember::AddReadiness(http::Readiness& /*r*/) const {}
#endif

void ClusterMember::Start(AccountSet& accounts, std::shared_ptr<const config::Config> config) {
  {
    util::MutexLock lock(mu_);
    accounts_ = &accounts;
    config_ = std::move(config);
    if (!keeper_) {
      for (const auto& a : config_->accounts) {
        held_.insert(a.name);
        StartLocked(a.name);
      }
      return;
    }
  }
#ifdef MAILHOOK_HAVE_PGSTORE
  keeper_->keeper->Run();  // calls Acquired: not under mu_
#endif
}

void ClusterMember::StartLocked(const std::string& name) {
  if (stopping_ || !accounts_) return;
  // Absent: removed by a reload the keeper has not applied yet; it gives
  // the lease back in its next round.
  if (const config::Account* account = FindConfiguredAccount(*config_, name)) accounts_->Start(config_, *account);
}

void ClusterMember::Acquired(const std::vector<std::string>& names) {
  util::MutexLock lock(mu_);
  for (const auto& name : names) {
    held_.insert(name);
    StartLocked(name);
  }
  util::Log(util::Area::kDaemon).info("cluster.accounts_acquired count={} accounts={}", names.size(), CommaList(names));
}

void ClusterMember::Released(const std::vector<std::string>& names) {
  util::MutexLock lock(mu_);
  for (const auto& name : names) held_.erase(name);
  // Joined before the keeper gives the leases back: another replica may
  // start them the moment it does.
  if (accounts_) accounts_->Stop(names);
  util::Log(util::Area::kDaemon).info("cluster.accounts_released count={} accounts={}", names.size(), CommaList(names));
}

void ClusterMember::Apply(const config::ConfigChanges& changes, std::shared_ptr<const config::Config> next) {
  spdlog::logger& log = util::Log(util::Area::kDaemon);
  const std::vector<std::string> configured = AccountNames(*next);
  {
    util::MutexLock lock(mu_);
    config_ = std::move(next);
    // Stopped before their successors start: two watchers of one folder
    // would both deliver what arrives meanwhile.
    for (const auto& name : changes.accounts_removed) {
      accounts_->Stop(name);
      if (!keeper_) held_.erase(name);
      log.info("daemon.reload_account account={} change=removed", name);
    }
    for (const auto& name : changes.accounts_changed) {
      accounts_->Stop(name);
      if (held_.count(name) == 0) {
        log.info("daemon.reload_account account={} change=updated note=\"held by another replica\"", name);
        continue;
      }
      StartLocked(name);
      log.info("daemon.reload_account account={} change=restarted", name);
    }
    for (const auto& name : changes.accounts_added) {
      if (!keeper_) held_.insert(name);
      if (held_.count(name) != 0) StartLocked(name);
      log.info("daemon.reload_account account={} change=added", name);
    }
  }
#ifdef MAILHOOK_HAVE_PGSTORE
  if (keeper_) keeper_->keeper->SetAccounts(configured);
#else
  (void)configured;
#endif
}

void ClusterMember::StopAccounts() {
  util::MutexLock lock(mu_);
  if (stopping_) return;
  stopping_ = true;
  if (accounts_) accounts_->StopAll();  // each logs out on its stop signal
}

void ClusterMember::Stop() {
  StopAccounts();
#ifdef MAILHOOK_HAVE_PGSTORE
  // Released with nothing left to stop, then Leave: the others take the
  // accounts over at once rather than after the TTL.
  if (keeper_) keeper_->keeper->Stop();
#endif
}

}  // namespace mailhook::daemon
