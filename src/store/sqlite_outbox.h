#pragma once
/// SqliteOutbox: Outbox (store/outbox.h) over one SQLite connection (Db), with
/// its SQL; a second backend implements Outbox with its own. Its leases are
/// held in this process (SqliteLeases, shared by every SqliteOutbox on the
/// same file), not in the file: a claim writes nothing.

#include <memory>
#include <utility>

#include "store/bodies.h"
#include "store/db.h"
#include "store/outbox.h"
#include "store/sqlite_leases.h"

namespace mailhook::store {

/// The SQLite Outbox.
class SqliteOutbox final : public Outbox {
 public:
  /// `leases`: the table of db's file (SqliteLeases::ForFile).
  SqliteOutbox(Db& db, Bodies& bodies, std::shared_ptr<SqliteLeases> leases)
      : db_(db), bodies_(bodies), leases_(std::move(leases)) {}

  using Outbox::MarkDelivered;
  using Outbox::NextDueAt;

  util::Status Add(const std::vector<OutboxItem>& items) override;
  util::Result<ClaimResult> Claim(const ClaimRequest& request) override;
  util::Status MarkDelivered(const std::vector<int64_t>& ids) override;
  util::Status ScheduleRetry(int64_t id, int attempts, TimePoint next_attempt_at,
                             const std::string& last_error) override;
  util::Status MoveToDeadLetters(int64_t id, int attempts, const std::string& last_error) override;
  util::Status ReleaseLease(int64_t id) override;
  util::Status ReleaseAllLeases() override;
  util::Result<std::optional<TimePoint>> NextDueAt(const std::vector<std::string>& skip_targets) override;
  util::Result<int64_t> PendingCount() override;
  util::Result<std::vector<Delivery>> ListPending() override;
  util::Result<bool> AllDelivered(const std::string& event_id) override;
  util::Status PruneDelivered(TimePoint before) override;

 private:
  /// The rows `request` claims, given those `held`: due, not held, within
  /// its limit and room, each with its payload.
  util::Result<ClaimResult> ChooseDue(const ClaimRequest& request, const SqliteLeases::Held& held);
  /// Up to `limit` due rows at `now`, oldest first, with their inline
  /// payloads (one in `bodies` is left empty: see ReadBody).
  util::Result<std::vector<Delivery>> SelectDue(TimePoint now, int limit, const std::vector<std::string>& skip_targets);
  /// Reads a claimed row's payload from `bodies` when it is not inline.
  util::Status ReadBody(Delivery& row);
  /// MarkDelivered's writes, in the caller's transaction.
  util::Status MarkRows(const std::vector<int64_t>& ids);

  Db& db_;
  Bodies& bodies_;
  std::shared_ptr<SqliteLeases> leases_;
};

}  // namespace mailhook::store
