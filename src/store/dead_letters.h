#pragma once
/// DeadLetters: rows that failed permanently or exhausted their retries,
/// kept until an operator replays or drops them (`mailhook deadletters`).
/// A dead letter keeps its outbox id, so ids stay meaningful across a replay.

#include <cstdint>
#include <span>
#include <vector>

#include "store/bodies.h"
#include "store/db.h"
#include "store/rows.h"
#include "util/result.h"

namespace mailhook::store {

/// The `dead_letters` table.
class DeadLetters {
 public:
  DeadLetters(Db& db, Bodies& bodies) : db_(db), bodies_(bodies) {}

  util::Result<int64_t> Count();
  /// Every dead letter with its payload, by id.
  util::Result<std::vector<DeadLetter>> List();
  /// Every dead letter without its payload, by id: what a listing shows;
  /// payloads (megabytes with attachment contents) are never read.
  util::Result<std::vector<DeadLetterInfo>> ListInfo();
  /// Moves the given dead letters back to the outbox, due now, attempts reset.
  /// Returns how many were moved (unknown ids are ignored).
  util::Result<int64_t> Replay(std::span<const int64_t> ids);
  util::Result<int64_t> ReplayAll();
  /// Deletes the given dead letters for good; returns how many were deleted.
  util::Result<int64_t> Drop(std::span<const int64_t> ids);
  util::Result<int64_t> DropAll();

 private:
  util::Result<int64_t> Move(const std::string& where, bool replay);

  Db& db_;
  Bodies& bodies_;
};

}  // namespace mailhook::store
