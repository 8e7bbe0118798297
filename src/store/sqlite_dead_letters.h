#pragma once
/// SqliteDeadLetters: DeadLetters (store/dead_letters.h) over one SQLite connection (Db), with
/// its SQL; a second backend implements DeadLetters with its own.

#include "store/db.h"
#include "store/dead_letters.h"

namespace mailhook::store {

/// The SQLite DeadLetters.
class SqliteDeadLetters final : public DeadLetters {
 public:
  SqliteDeadLetters(Db& db, Bodies& bodies) : db_(db), bodies_(bodies) {}

  util::Result<int64_t> Count() override;
  util::Result<std::vector<DeadLetter>> List() override;
  util::Result<std::vector<DeadLetterInfo>> ListInfo() override;
  util::Result<int64_t> Replay(std::span<const int64_t> ids) override;
  util::Result<int64_t> ReplayAll() override;
  util::Result<int64_t> Drop(std::span<const int64_t> ids) override;
  util::Result<int64_t> DropAll() override;

 private:
  util::Result<int64_t> Move(const std::string& where, bool replay);

  Db& db_;
  Bodies& bodies_;
};

}  // namespace mailhook::store
