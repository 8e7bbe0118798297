#pragma once
/// ReadClusterStatus: what `mailhook cluster status` shows — the replicas
/// (heartbeat ages, live or not by the TTL) and the account leases (owner,
/// generation, age since the last claim or renewal) — read in one snapshot
/// with ages on the server's clock (replicas' clocks may disagree).

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "pgstore/pg_connection.h"
#include "util/result.h"

namespace mailhook::pgstore {

struct ReplicaStatus {
  std::string id;  ///< uuid
  std::string host;
  std::chrono::milliseconds up{0};  ///< since it registered
  std::chrono::milliseconds since_heartbeat{0};
  bool live = false;  ///< heartbeat newer than the TTL
};

struct LeaseStatus {
  std::string account;
  std::string owner;  ///< replica uuid
  int64_t generation = 0;
  /// Until the lease ends; negative: it ended that long ago, unrenewed.
  std::chrono::milliseconds expires_in{0};
  /// Given back (a clean stop, a rebalance): it ended at once.
  bool given_back = false;

  bool held() const { return !given_back && expires_in.count() > 0; }
};

struct ClusterStatus {
  std::vector<ReplicaStatus> replicas;  ///< by start, oldest first
  std::vector<LeaseStatus> leases;      ///< by account
};

/// Reads both tables in one REPEATABLE READ snapshot. `ttl`: store.lease_ttl.
/// `conn` must be migrated (MigratePg). Errors: PgConnection's.
util::Result<ClusterStatus> ReadClusterStatus(PgConnection& conn, std::chrono::milliseconds ttl);

}  // namespace mailhook::pgstore
