#pragma once
/// PgLeases: the cluster's bookkeeping in PostgreSQL, as SQL over one
/// PgConnection (no threads of its own; the cluster code of step 7 drives
/// it): a replica registers itself (a fresh uuid) and heartbeats; the live
/// replicas are those whose heartbeat is newer than the TTL; each claims
/// accounts up to its fair share ceil(accounts / live replicas), renews what
/// it holds and gives accounts back when a replica joins. Every time is the
/// server's clock_timestamp(), never a replica's: replicas' clocks may
/// disagree, the server's is one.
///
/// A lease is the right to write an account's rows. Its generation grows by
/// one at each takeover (a claim of a lease that expired or was given back),
/// so an old owner's Fence {account, owner, generation} never matches again;
/// CheckFence, run first inside every account write transaction, locks the
/// lease row FOR SHARE: a takeover's UPDATE waits for that transaction's
/// commit, so the old owner's last commit precedes the takeover or fails.
///
/// Not thread-safe (its PgConnection is not).

#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "pgstore/pg_connection.h"
#include "util/result.h"

namespace mailhook::pgstore {

/// The lease a writer believes it holds: checked by CheckFence in the write's
/// transaction. `owner` is the replica's uuid as text.
struct Fence {
  std::string account;
  std::string owner;
  int64_t generation = 0;

  bool operator==(const Fence&) const = default;
};

/// Inside conn's open transaction: ok when `fence` still holds (same owner
/// and generation, not expired by the server's clock), and then the lease row
/// is locked FOR SHARE until the transaction ends (a takeover waits for it).
/// Otherwise store.fenced (kBackoff, a routine lease loss, not an operator's
/// problem: stop the account's sessions, the
/// replica that holds the lease now goes on; roll back, nothing is written).
/// Outside a transaction: store.pg.sql (a bug: the lock would end at once).
util::Status CheckFence(PgConnection& conn, const Fence& fence);

/// One replica's view of the cluster tables; see the file comment.
class PgLeases {
 public:
  /// `conn` must outlive this (and be migrated: pg_schema.h). `ttl`: a
  /// replica whose heartbeat is older is dead; a lease lasts this long after
  /// its claim or renewal.
  PgLeases(PgConnection& conn, std::chrono::milliseconds ttl);

  /// Inserts this process's replica row with a fresh uuid (gen_random_uuid)
  /// and the heartbeat now; returns the uuid (also replica_id()).
  util::Result<std::string> Register(std::string_view host);
  /// Goes on as the replica `id` (Register'ed earlier on a connection that
  /// broke) over this connection: its leases stay this replica's. Heartbeats
  /// at once, so the row comes back if it was forgotten meanwhile.
  util::Status Rejoin(std::string_view id, std::string_view host);
  /// Moves the heartbeat to now (re-inserting the row if it was removed).
  util::Status Heartbeat();
  /// The ids of the replicas whose heartbeat is newer than the TTL, sorted.
  util::Result<std::vector<std::string>> LiveReplicas();
  /// ceil(account_count / live replicas), this one counted as live.
  util::Result<int64_t> FairShare(int64_t account_count);

  /// Claims accounts of `accounts` (every replica passes the same list: the
  /// configured accounts) that have no lease or an expired one, until this
  /// replica holds its fair share; a takeover raises the generation by one
  /// (also of this replica's own expired lease: write with the Fences
  /// returned, never with older ones). Returns every lease held now among
  /// `accounts` (claimed or held before), sorted by account.
  util::Result<std::vector<Fence>> Claim(std::span<const std::string> accounts);
  /// The same, but up to `target` leases held among `accounts` instead of
  /// the fair share: a quota the caller worked out (LeaseKeeper's, which
  /// sums to the account count over the live replicas).
  util::Result<std::vector<Fence>> Claim(std::span<const std::string> accounts, int64_t target);
  /// Extends every unexpired lease of this replica by the TTL; returns them,
  /// sorted by account. A lease that expired is not renewed (another replica
  /// may have written since): its sessions must stop.
  util::Result<std::vector<Fence>> Renew();
  /// Gives back the leases of `accounts` this replica holds (after stopping
  /// their sessions): they expire at once and keep their generation, so
  /// another replica's Claim takes them over with generation + 1. Returns the
  /// accounts given back, sorted.
  util::Result<std::vector<std::string>> GiveBack(std::span<const std::string> accounts);
  /// Gives back `n` of the held leases (the last by account name).
  util::Result<std::vector<std::string>> GiveBack(int64_t n);

  /// A clean shutdown (after stopping every session): gives back every
  /// lease and removes this replica's row, so the others count one replica
  /// fewer and take the accounts over at once instead of after the TTL.
  /// Returns the accounts given back, sorted.
  util::Result<std::vector<std::string>> Leave();
  /// Removes the rows of replicas silent for longer than `age` (each start
  /// registers a fresh id: the rows of stopped processes would pile up).
  /// A replica still running comes back at its next Heartbeat. Returns how
  /// many rows went.
  util::Result<int64_t> ForgetReplicasSilentFor(std::chrono::milliseconds age);

  const std::string& replica_id() const { return id_; }
  std::chrono::milliseconds ttl() const { return ttl_; }

 private:
  util::Status Prepare();
  util::Result<int64_t> HeldCount(std::span<const std::string> accounts);
  /// One round: up to `want` free accounts of `accounts`; returns how many.
  util::Result<int64_t> ClaimRound(const std::string& accounts, int64_t want);
  util::Result<std::vector<Fence>> Held(const std::string& accounts);

  PgConnection& conn_;
  std::chrono::milliseconds ttl_;
  std::string id_;
  std::string host_;
};

}  // namespace mailhook::pgstore
