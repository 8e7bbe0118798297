#pragma once
/// SqliteOutbox: Outbox (store/outbox.h) over one SQLite connection (Db), with
/// its SQL; a second backend implements Outbox with its own.

#include "store/bodies.h"
#include "store/db.h"
#include "store/outbox.h"

namespace mailhook::store {

/// The SQLite Outbox.
class SqliteOutbox final : public Outbox {
 public:
  SqliteOutbox(Db& db, Bodies& bodies) : db_(db), bodies_(bodies) {}

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
  util::Result<std::vector<Delivery>> SelectDue(TimePoint now, int limit, const std::vector<std::string>& skip_targets);

  Db& db_;
  Bodies& bodies_;
};

}  // namespace mailhook::store
