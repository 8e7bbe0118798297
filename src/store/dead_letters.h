#pragma once
/// DeadLetters: rows that failed permanently or exhausted their retries,
/// kept until an operator replays or drops them (`mailhook deadletters`).
/// A dead letter keeps its outbox id, so ids stay meaningful across a replay.

#include <cstdint>
#include <span>
#include <vector>

#include "store/bodies.h"
#include "store/rows.h"
#include "util/result.h"

namespace mailhook::store {

/// The `dead_letters` table.
class DeadLetters {
 public:
  virtual ~DeadLetters() = default;

  virtual util::Result<int64_t> Count() = 0;
  /// Every dead letter with its payload, by id.
  virtual util::Result<std::vector<DeadLetter>> List() = 0;
  /// Every dead letter without its payload, by id: what a listing shows;
  /// payloads (megabytes with attachment contents) are never read.
  virtual util::Result<std::vector<DeadLetterInfo>> ListInfo() = 0;
  /// Moves the given dead letters back to the outbox, due now, attempts reset.
  /// Returns how many were moved (unknown ids are ignored).
  virtual util::Result<int64_t> Replay(std::span<const int64_t> ids) = 0;
  virtual util::Result<int64_t> ReplayAll() = 0;
  /// Deletes the given dead letters for good; returns how many were deleted.
  virtual util::Result<int64_t> Drop(std::span<const int64_t> ids) = 0;
  virtual util::Result<int64_t> DropAll() = 0;

 protected:
  DeadLetters() = default;
  DeadLetters(const DeadLetters&) = delete;
  DeadLetters& operator=(const DeadLetters&) = delete;
};

}  // namespace mailhook::store
