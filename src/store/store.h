#pragma once
/// Store: the daemon's durable state in one SQLite file, <state_dir>/mailhook.db.
///
/// What lives here: the IMAP watermark per (account, folder), the outbox (one row
/// per event and target still to deliver) and the dead letters (rows that failed
/// permanently or exhausted their retries). The watermark only moves in the same
/// transaction that makes the events durable (CommitMessages), so a crash replays
/// and never skips.
///
/// Threads and processes: one Store object per thread; a Store (and its sqlite3*)
/// must never be used by two threads. Several Store objects, in this process or in
/// another one (`mailhook deadletters ...` while the daemon runs), may open the same
/// file at once: the database is in WAL mode with a busy timeout, so writers wait
/// for each other instead of failing.
///
/// Failures: every method returns a Result/Status; the Error names the file and the
/// fix (disk full, read-only directory, corrupt file). A failed write changes
/// nothing: each write is one transaction.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "util/result.h"

struct sqlite3;

namespace mailhook::store {

using Clock = std::chrono::system_clock;
using TimePoint = Clock::time_point;

/// Where a folder's processing stands: every UID <= last_uid under this
/// UIDVALIDITY is durably in the outbox (or was delivered).
struct Watermark {
  uint32_t uidvalidity = 0;
  uint32_t last_uid = 0;
  bool operator==(const Watermark&) const = default;
};

/// One event for one target, as handed to CommitMessages.
struct OutboxItem {
  std::string event_id;  ///< evt_..., deterministic per message
  std::string target;    ///< "webhook:<name>" or "hook:<name>"
  std::string account;
  std::string folder;
  uint32_t uidvalidity = 0;
  uint32_t uid = 0;
  std::string payload;  ///< the event JSON sent to this target
  /// For CommitMessages only: when not empty, the payload is these pieces one
  /// after another (`payload` is ignored). A large event (attachment contents
  /// shared between targets) is then written in pieces, never assembled in
  /// memory to be stored. Rows read back always have `payload`.
  std::vector<std::shared_ptr<const std::string>> pieces;
};

/// A post-action (on_delivered: mark seen, add flags, move) waiting until
/// every target of its event succeeded; done by the folder's watcher.
struct PostAction {
  std::string event_id;
  std::string account;
  std::string folder;
  uint32_t uidvalidity = 0;
  uint32_t uid = 0;
};

/// A message that failed extraction before: how often it was tried (an
/// attempt is counted when it starts, so a crash mid-message counts too)
/// and why the last one failed.
struct Attempt {
  uint32_t uid = 0;
  int count = 0;
  std::string last_error;  ///< "" while unknown (the process died meanwhile)
  std::string last_code;   ///< the Error code of the last failure, "" while unknown
};

/// An outbox row claimed for delivery.
struct Delivery {
  int64_t id = 0;
  OutboxItem item;
  int attempts = 0;  ///< failed attempts so far
  TimePoint created_at;
  TimePoint next_attempt_at;
  std::string last_error;
};

/// A row that failed permanently or exhausted its retries.
struct DeadLetter {
  int64_t id = 0;
  OutboxItem item;
  int attempts = 0;
  TimePoint created_at;
  TimePoint failed_at;
  std::string last_error;
};

/// The SQLite-backed state. Not thread-safe: one object per thread.
class Store {
 public:
  /// Opens (creating the directory and file when missing) and migrates the schema.
  static util::Result<std::unique_ptr<Store>> Open(const std::string& state_dir);

  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  /// The database file's path, for messages.
  const std::string& path() const { return path_; }

  // --- watermarks ---
  util::Result<std::optional<Watermark>> GetWatermark(const std::string& account,
                                                      const std::string& folder);
  util::Status SetWatermark(const std::string& account, const std::string& folder,
                            Watermark mark);

  /// ONE transaction: inserts every item (an (event_id, target) already in the
  /// outbox, the dead letters or delivered recently is skipped, so a replay after
  /// a crash creates no second row) and sets the watermark (unless nullopt: the
  /// first pass over a folder's unseen messages leaves it unset until the end).
  /// All or nothing. `post_actions` are recorded in the same transaction.
  util::Status CommitMessages(const std::string& account, const std::string& folder,
                              std::optional<Watermark> new_mark, const std::vector<OutboxItem>& items,
                              const std::vector<PostAction>& post_actions = {});
  util::Status CommitMessages(const std::string& account, const std::string& folder, Watermark new_mark,
                              const std::vector<OutboxItem>& items,
                              const std::vector<PostAction>& post_actions = {}) {
    return CommitMessages(account, folder, std::optional<Watermark>(new_mark), items, post_actions);
  }

  // --- attempts (poison messages) ---
  /// Counts one more extraction attempt, durably, before the attempt starts:
  /// a message that crashes or hangs the process is counted too. A batch of
  /// several UIDs is not counted against each of them (one guilty message
  /// would doom its neighbours): it only marks them, so that each is tried
  /// alone next time; a single UID counts. Rows of another UIDVALIDITY are
  /// reset. CommitMessages forgets the attempts of the UIDs it makes durable.
  util::Status BeginAttempts(const std::string& account, const std::string& folder, uint32_t uidvalidity,
                             std::span<const uint32_t> uids);
  /// Takes back one attempt of each UID (the failure was not the message's:
  /// a shutdown, a full disk).
  util::Status RefundAttempts(const std::string& account, const std::string& folder,
                              std::span<const uint32_t> uids);
  /// Records why the attempt at `uid` failed (code and message of the Error);
  /// `count` adds the attempt to its count (it failed inside a batch, where
  /// BeginAttempts did not count it, but it is known to be this message's).
  util::Status RecordAttemptFailure(const std::string& account, const std::string& folder, uint32_t uid,
                                    const std::string& code, const std::string& message, bool count = false);
  /// The folder's messages with attempts counted under `uidvalidity`, by UID.
  util::Result<std::vector<Attempt>> ListAttempts(const std::string& account, const std::string& folder,
                                                  uint32_t uidvalidity);

  // --- post-actions ---
  /// Post-actions of this folder whose event has no outbox row and no dead
  /// letter left (every target succeeded), lowest UID first.
  util::Result<std::vector<PostAction>> ReadyPostActions(const std::string& account,
                                                         const std::string& folder, int limit);
  /// Forgets a post-action once done (or given up), so a restart neither
  /// repeats nor forgets it.
  util::Status FinishPostAction(const std::string& event_id);
  util::Result<int64_t> PostActionCount();

  // --- outbox ---
  /// Claims up to `limit` rows due at `now` (oldest first) that no one else holds:
  /// each claimed row gets a lease until now+lease, so another Store (thread or
  /// process) will not claim it meanwhile. Finish a claim with MarkDelivered,
  /// ScheduleRetry, MoveToDeadLetters or ReleaseLease. Rows whose target is in
  /// `skip_targets` are left alone (targets at their concurrency limit).
  util::Result<std::vector<Delivery>> ClaimDue(
      TimePoint now, int limit, std::chrono::milliseconds lease = std::chrono::minutes(15),
      const std::vector<std::string>& skip_targets = {});
  /// Deletes a delivered row and remembers (event_id, target) for deduplication.
  util::Status MarkDelivered(int64_t id);
  /// Records a failed attempt; the row becomes due again at next_attempt_at.
  util::Status ScheduleRetry(int64_t id, int attempts, TimePoint next_attempt_at,
                             const std::string& last_error);
  /// Moves a row to the dead letters.
  util::Status MoveToDeadLetters(int64_t id, int attempts, const std::string& last_error);
  /// Gives a claimed row back without counting an attempt (shutdown mid-delivery).
  util::Status ReleaseLease(int64_t id);
  /// Gives back every lease (daemon start-up: leases of a crashed run are stale).
  util::Status ReleaseAllLeases();
  /// When the next row becomes claimable (due and not leased); nullopt when empty.
  /// Rows whose target is in `skip_targets` are not considered.
  util::Result<std::optional<TimePoint>> NextDueAt(const std::vector<std::string>& skip_targets = {});
  util::Result<int64_t> PendingCount();
  /// The outbox rows (for tests and inspection), oldest first.
  util::Result<std::vector<Delivery>> ListPending();

  /// True when no outbox row and no dead letter exists for the event: every
  /// target it was sent to succeeded (used for post-actions).
  util::Result<bool> AllDelivered(const std::string& event_id);

  // --- dead letters ---
  util::Result<int64_t> DeadLetterCount();
  util::Result<std::vector<DeadLetter>> ListDeadLetters();
  /// Moves the given dead letters back to the outbox, due now, attempts reset.
  /// Returns how many were moved (unknown ids are ignored).
  util::Result<int64_t> ReplayDeadLetters(std::span<const int64_t> ids);
  util::Result<int64_t> ReplayAllDeadLetters();
  /// Deletes the given dead letters for good; returns how many were deleted.
  util::Result<int64_t> DropDeadLetters(std::span<const int64_t> ids);
  util::Result<int64_t> DropAllDeadLetters();

  /// Test-only fault injection: called at named points inside write transactions
  /// ("commit_messages.inserted", "commit_messages.before_commit").
  void SetFaultHookForTesting(std::function<void(std::string_view point)> hook) {
    fault_hook_ = std::move(hook);
  }

 private:
  Store(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}

  util::Status Exec(const char* sql);
  util::Status WriteBody(int64_t id, uint64_t size, const std::vector<std::shared_ptr<const std::string>>& pieces);
  /// Deletes the bodies of rows in neither the outbox nor the dead letters.
  util::Status DeleteOrphanBodies();
  util::Status Migrate();
  util::Error SqlError(const std::string& what) const;
  /// Runs fn inside BEGIN IMMEDIATE ... COMMIT, rolling back on failure.
  util::Status InTransaction(const std::function<util::Status()>& fn);
  util::Result<int64_t> MoveDeadLetters(const std::string& where,
                                        std::span<const int64_t> ids, bool replay);
  void Fault(std::string_view point) {
    if (fault_hook_) fault_hook_(point);
  }

  sqlite3* db_;  // owned; closed in the destructor
  std::string path_;
  std::function<void(std::string_view)> fault_hook_;
};

}  // namespace mailhook::store
