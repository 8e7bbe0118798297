#pragma once
/// PgOutbox: Outbox (store/outbox.h) over one PgConnection, with its SQL
/// against the schema of pg_schema.h. The outbox is shared by every replica
/// on the database: Claim takes its due rows with SELECT ... FOR UPDATE SKIP
/// LOCKED, so two dispatchers claiming at once (threads or replicas) never
/// take the same row nor wait for each other, and leases them as SQLite does
/// (lease_until), naming the claiming replica in lease_owner. A claim locks
/// the rows it selects (its `limit`, one more to tell `more`, and those left
/// for lack of room) until it commits: a claim at that moment passes them
/// over, the next one finds them.
///
/// A lease ends at lease_until, or at once when its owner is not a live
/// replica (no `replicas` row with a heartbeat newer than `replica_ttl` by
/// the server's clock, as PgLeases judges liveness): each start registers a
/// fresh replica id, so a crashed run's leases would otherwise hold rows
/// for the whole lease. A lease without an owner (NULL: a PgOutbox made
/// with lease_owner "", one process owning the outbox, as SQLite) ends only
/// at lease_until or by ReleaseAllLeases/ReleaseLease.
///
/// MarkDelivered, ScheduleRetry, MoveToDeadLetters and ReleaseLease act on
/// a row only while its lease_owner is this outbox's (NULL for ""): a stale
/// worker, whose lease ended and whose row another owner claimed, changes
/// nothing and gets ok; for MarkDelivered that means the row stays and the
/// other owner delivers it again (at-least-once).
/// Not thread-safe (the connection is not).

#include <chrono>
#include <string>

#include "pgstore/pg_connection.h"
#include "store/bodies.h"
#include "store/outbox.h"

namespace mailhook::pgstore {

/// The PostgreSQL Outbox.
class PgOutbox final : public store::Outbox {
 public:
  /// `conn` and `bodies` (over the same connection) must outlive this.
  /// `lease_owner`: this replica's uuid (PgLeases::replica_id()), written
  /// with every lease it takes; "" for none (NULL: a lone process, tools,
  /// tests). `replica_ttl`: PgLeases' TTL (store.lease_ttl), a replica
  /// whose heartbeat is older is dead and its leases are free.
  PgOutbox(PgConnection& conn, store::Bodies& bodies, std::string lease_owner,
           std::chrono::milliseconds replica_ttl = kDefaultReplicaTtl)
      : conn_(conn), bodies_(bodies), lease_owner_(std::move(lease_owner)), replica_ttl_(replica_ttl) {}

  /// store.lease_ttl's default (config.h).
  static constexpr std::chrono::milliseconds kDefaultReplicaTtl{30000};

  using store::Outbox::MarkDelivered;
  using store::Outbox::NextDueAt;

  util::Status Add(const std::vector<store::OutboxItem>& items) override;
  util::Result<store::ClaimResult> Claim(const store::ClaimRequest& request) override;
  util::Status MarkDelivered(const std::vector<int64_t>& ids) override;
  util::Status ScheduleRetry(int64_t id, int attempts, store::TimePoint next_attempt_at,
                             const std::string& last_error) override;
  util::Status MoveToDeadLetters(int64_t id, int attempts, const std::string& last_error) override;
  util::Status ReleaseLease(int64_t id) override;
  /// Gives back every lease this replica holds (`lease_owner`; with none,
  /// every lease without an owner) and every lease of a dead replica; never
  /// a live replica's, whatever `lease_owner` is.
  util::Status ReleaseAllLeases() override;
  util::Result<std::optional<store::TimePoint>> NextDueAt(const std::vector<std::string>& skip_targets) override;
  util::Result<int64_t> PendingCount() override;
  util::Result<std::vector<store::Delivery>> ListPending() override;
  util::Result<bool> AllDelivered(const std::string& event_id) override;
  util::Status PruneDelivered(store::TimePoint before) override;

 private:
  util::Status AddOne(const store::OutboxItem& item, int64_t now);
  /// Up to `limit` claimable rows, locked FOR UPDATE until the transaction ends.
  util::Result<std::vector<store::Delivery>> SelectDue(store::TimePoint now, int limit,
                                                       const std::vector<std::string>& skip_targets);
  PgParam Owner() const { return lease_owner_.empty() ? PgParam::Null() : PgParam(lease_owner_); }
  PgParam TtlMs() const { return static_cast<int64_t>(replica_ttl_.count()); }

  PgConnection& conn_;
  store::Bodies& bodies_;
  std::string lease_owner_;
  std::chrono::milliseconds replica_ttl_;
};

}  // namespace mailhook::pgstore
