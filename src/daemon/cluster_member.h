#pragma once
/// ClusterMember: which of the configured accounts this daemon watches. On
/// SQLite (one daemon per state) every one, as before. On PostgreSQL
/// (issue #11) this daemon is one replica of several: a LeaseKeeper
/// (pgstore/lease_keeper.h) claims its share of the accounts, and the member
/// starts an account's watcher when its lease is acquired and stops it —
/// joined, so nothing of it commits any more — when the lease is given back
/// or may end unrenewed. A config reload goes through the member too, so it
/// never starts an account this replica does not hold.
///
/// Owns the keeper: the stores the daemon opens for a replica check its
/// fences (ConfigureStore with keeper()), so the member outlives them (it is
/// made first and stopped after the watchers; the dispatcher stops after it).
///
/// Thread-safety: the keeper's callbacks run on its threads, Start/Apply/Stop
/// on the daemon's; one lock keeps them in order (so AccountSet sees one call
/// at a time). AddReadiness and the metrics collector may run on any thread.

#include <memory>
#include <set>
#include <string>

#include "config/config.h"
#include "config/config_fingerprint.h"
#include "config/store_url.h"
#include "daemon/account_set.h"
#include "http/server.h"
#include "util/metrics_catalog.h"
#include "util/mutex.h"
#include "util/result.h"
#include "util/thread_annotations.h"

namespace mailhook::pgstore {
class LeaseKeeper;
}  // namespace mailhook::pgstore

namespace mailhook::daemon {

/// This daemon's part of the configured accounts; see the file comment.
class ClusterMember {
 public:
  /// SQLite: a single node (no keeper). PostgreSQL: joins the cluster at
  /// `location` as a fresh replica (connects, migrates the schema, registers;
  /// no lease yet) with `config`'s accounts and store.lease_ttl, and sets
  /// `metrics`' collector to the keeper's counts (mailhook_cluster_*), so the
  /// member must outlive every Render (stop the HTTP server first). Fails
  /// with the connection's or the registration's Error (no password in it).
  static util::Result<std::unique_ptr<ClusterMember>> Join(const config::StoreLocation& location,
                                                           const config::Config& config, util::MetricsCatalog& metrics);
  /// Stop()s.
  ~ClusterMember();
  ClusterMember(const ClusterMember&) = delete;
  ClusterMember& operator=(const ClusterMember&) = delete;

  /// The lease keeper (null on a single node), for ConfigureStore.
  const pgstore::LeaseKeeper* keeper() const;

  /// Runs accounts on `accounts` (which must outlive Stop) from now on: every
  /// account of `config` on a single node; on a replica those whose leases it
  /// acquires (the keeper's first round runs on this thread, so the first
  /// share has started when this returns).
  void Start(AccountSet& accounts, std::shared_ptr<const config::Config> config) EXCLUDES(mu_);
  /// A reload's accounts (ConfigReloader step 4): removed and changed ones
  /// stop (log out) before changed ones restart; on a replica a changed one
  /// restarts and an added one starts only while this replica holds it, and
  /// the keeper learns the new account list (SetAccounts: leases of removed
  /// accounts are given back, added ones claimed by whichever replica has room).
  void Apply(const config::ConfigChanges& changes, std::shared_ptr<const config::Config> next) EXCLUDES(mu_);
  /// /readyz: not ready while the keeper's last round did not reach the store.
  /// Accounts held by other replicas do not run here and are not listed.
  void AddReadiness(http::Readiness& r) const;
  /// Stops every account here (their watchers joined); the leases stay held
  /// and no account starts any more. Idempotent.
  void StopAccounts() EXCLUDES(mu_);
  /// StopAccounts, then gives the leases back and leaves the cluster: the
  /// others take the accounts over at their next round, and this replica's
  /// claimed outbox rows at once (its replica row is gone), so the daemon
  /// stops its dispatcher before this. Idempotent.
  void Stop() EXCLUDES(mu_);

 private:
  struct Keeper;
  ClusterMember();
  /// The keeper's callbacks.
  void Acquired(const std::vector<std::string>& names) EXCLUDES(mu_);
  void Released(const std::vector<std::string>& names) EXCLUDES(mu_);
  /// Starts `name` from the running config, if it is in it.
  void StartLocked(const std::string& name) REQUIRES(mu_);
  /// Copies the keeper's counts into `metrics` (the collector).
  void Collect(util::MetricsCatalog& metrics) const EXCLUDES(collect_mu_);

  std::unique_ptr<Keeper> keeper_;  ///< null on a single node
  mutable util::Mutex mu_;
  AccountSet* accounts_ GUARDED_BY(mu_) = nullptr;
  std::shared_ptr<const config::Config> config_ GUARDED_BY(mu_);
  /// The accounts this daemon may run: all configured ones on a single node,
  /// the held leases on a replica.
  std::set<std::string> held_ GUARDED_BY(mu_);
  bool stopping_ GUARDED_BY(mu_) = false;
  mutable util::Mutex collect_mu_;  ///< one collector at a time (it adds deltas)
};

}  // namespace mailhook::daemon
