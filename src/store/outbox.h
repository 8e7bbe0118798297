#pragma once
/// Outbox: one row per event and target still to deliver, with its lease
/// (who is delivering it now), its retry schedule, and the delivered markers
/// that keep a replayed commit from sending an event twice.
///
/// Leases make several connections (the dispatcher's workers, another
/// process) safe: a claimed row is not claimed again until its lease ends.
/// SQLite holds them in the delivering process (store/sqlite_leases.h: one
/// process delivers from a file, and a claim then writes nothing); PostgreSQL
/// in its rows, for replicas sharing the database.

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "store/rows.h"
#include "util/result.h"

namespace mailhook::store {

/// An event given in pieces up to this size is joined and stored in its
/// row's `payload` (both backends); a larger one goes to Bodies. A `bodies`
/// row costs a write at commit, a read at every claim and a delete at
/// delivery (about 4 % of mailhook's CPU in a burst of small messages, issue
/// 8); a larger payload in `bodies` is never assembled and an UPDATE of the
/// row (lease, retry) does not rewrite it; at this size the row fits in
/// about one 4 KiB page anyway.
inline constexpr uint64_t kInlinePiecesMax = 4096;

/// The pieces joined, when an event of `size` bytes in pieces goes inline
/// (1..kInlinePiecesMax bytes); empty when it goes to Bodies.
std::string InlinePayload(const OutboxItem& item, uint64_t size);

/// One Outbox::Claim: what may be claimed, and the earlier claims delivered
/// meanwhile, recorded in the same write transaction (issue 8: a write
/// transaction per delivery instead of two, fewer when deliveries finish together).
struct ClaimRequest {
  TimePoint now;
  /// At most this many rows in all (0: record `delivered` only).
  int limit = 1;
  std::chrono::milliseconds lease = std::chrono::minutes(15);
  /// Targets whose rows are left alone (at their concurrency limit).
  std::vector<std::string> skip_targets;
  /// At most room[target] rows of a target named here (its free delivery slots).
  std::map<std::string, int> room;
  /// Claimed rows whose delivery succeeded: recorded as MarkDelivered does, first.
  std::vector<int64_t> delivered;
};

/// What an Outbox::Claim took.
struct ClaimResult {
  std::vector<Delivery> rows;
  /// More rows were due than `limit` allowed (another worker may look now).
  bool more = false;
};

/// The `outbox` and `delivered` tables.
class Outbox {
 public:
  virtual ~Outbox() = default;

  /// Inserts every item, due now. An (event_id, target) already in the
  /// outbox, the dead letters or delivered recently is skipped, so a replay
  /// after a crash creates no second row. Joins an open transaction (see
  /// Store::CommitMessages, which adds the watermark to it).
  virtual util::Status Add(const std::vector<OutboxItem>& items) = 0;

  /// Claims up to `limit` rows due at `now` (oldest first) that no one else holds:
  /// each claimed row gets a lease until now+lease, so another connection (thread
  /// or process) will not claim it meanwhile. Finish a claim with MarkDelivered,
  /// ScheduleRetry, MoveToDeadLetters or ReleaseLease. Rows whose target is in
  /// `skip_targets` are left alone (targets at their concurrency limit).
  /// Claim with only now, limit, lease and skip_targets set.
  util::Result<std::vector<Delivery>> ClaimDue(TimePoint now, int limit,
                                               std::chrono::milliseconds lease = std::chrono::minutes(15),
                                               const std::vector<std::string>& skip_targets = {});
  /// Records `request.delivered`, then claims as ClaimDue does (oldest first,
  /// within `limit` and `room`), all in one transaction: when it fails,
  /// nothing is recorded and nothing claimed (the delivered rows stay leased
  /// and are sent again when the lease ends: at-least-once).
  virtual util::Result<ClaimResult> Claim(const ClaimRequest& request) = 0;
  /// Deletes a delivered row and remembers (event_id, target) for deduplication.
  util::Status MarkDelivered(int64_t id);
  /// The same for several rows, in one transaction.
  virtual util::Status MarkDelivered(const std::vector<int64_t>& ids) = 0;
  /// Records a failed attempt; the row becomes due again at next_attempt_at.
  virtual util::Status ScheduleRetry(int64_t id, int attempts, TimePoint next_attempt_at,
                                     const std::string& last_error) = 0;
  /// Moves a row to the dead letters (keeping its id and payload).
  virtual util::Status MoveToDeadLetters(int64_t id, int attempts, const std::string& last_error) = 0;
  /// Gives a claimed row back without counting an attempt (shutdown mid-delivery).
  virtual util::Status ReleaseLease(int64_t id) = 0;
  /// Gives back every lease (daemon start-up: leases of a crashed run are stale).
  virtual util::Status ReleaseAllLeases() = 0;
  /// When the next row becomes claimable (due and not leased); nullopt when empty.
  util::Result<std::optional<TimePoint>> NextDueAt();
  /// The same, not considering rows whose target is in `skip_targets`.
  virtual util::Result<std::optional<TimePoint>> NextDueAt(const std::vector<std::string>& skip_targets) = 0;
  virtual util::Result<int64_t> PendingCount() = 0;
  /// The outbox rows with their payloads (for tests and inspection), oldest first.
  virtual util::Result<std::vector<Delivery>> ListPending() = 0;
  /// True when no outbox row and no dead letter exists for the event: every
  /// target it was sent to succeeded (used for post-actions).
  virtual util::Result<bool> AllDelivered(const std::string& event_id) = 0;
  /// Forgets delivered markers older than `before` (past the dedupe window).
  virtual util::Status PruneDelivered(TimePoint before) = 0;

 protected:
  Outbox() = default;
  Outbox(const Outbox&) = delete;
  Outbox& operator=(const Outbox&) = delete;
};

}  // namespace mailhook::store
