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
/// Not thread-safe (the connection is not).

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
  /// with every lease it takes; "" for none (NULL).
  PgOutbox(PgConnection& conn, store::Bodies& bodies, std::string lease_owner)
      : conn_(conn), bodies_(bodies), lease_owner_(std::move(lease_owner)) {}

  using store::Outbox::MarkDelivered;
  using store::Outbox::NextDueAt;

  util::Status Add(const std::vector<store::OutboxItem>& items) override;
  util::Result<store::ClaimResult> Claim(const store::ClaimRequest& request) override;
  util::Status MarkDelivered(const std::vector<int64_t>& ids) override;
  util::Status ScheduleRetry(int64_t id, int attempts, store::TimePoint next_attempt_at,
                             const std::string& last_error) override;
  util::Status MoveToDeadLetters(int64_t id, int attempts, const std::string& last_error) override;
  util::Status ReleaseLease(int64_t id) override;
  /// Gives back every lease this replica holds (`lease_owner`); with no
  /// lease_owner, every lease (as SQLite: one process owns the outbox).
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

  PgConnection& conn_;
  store::Bodies& bodies_;
  std::string lease_owner_;
};

}  // namespace mailhook::pgstore
