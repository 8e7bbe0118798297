#pragma once
/// PgDeadLetters: DeadLetters (store/dead_letters.h) over one PgConnection,
/// with its SQL against the schema of pg_schema.h. Not thread-safe (the
/// connection is not).

#include "pgstore/pg_connection.h"
#include "store/dead_letters.h"

namespace mailhook::pgstore {

/// The PostgreSQL DeadLetters.
class PgDeadLetters final : public store::DeadLetters {
 public:
  /// `conn` and `bodies` (over the same connection) must outlive this.
  PgDeadLetters(PgConnection& conn, store::Bodies& bodies) : conn_(conn), bodies_(bodies) {}

  util::Result<int64_t> Count() override;
  util::Result<std::vector<store::DeadLetter>> List() override;
  util::Result<std::vector<store::DeadLetterInfo>> ListInfo() override;
  util::Result<int64_t> Replay(std::span<const int64_t> ids) override;
  util::Result<int64_t> ReplayAll() override;
  util::Result<int64_t> Drop(std::span<const int64_t> ids) override;
  util::Result<int64_t> DropAll() override;

 private:
  /// Replays (or drops) the dead letters in `ids`, or all of them when `all`.
  util::Result<int64_t> Move(std::span<const int64_t> ids, bool all, bool replay);

  PgConnection& conn_;
  store::Bodies& bodies_;
};

}  // namespace mailhook::pgstore
