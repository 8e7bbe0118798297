#include "store/sqlite_dead_letters.h"

#include "store/row_mapper.h"
#include "store/statement.h"

namespace mailhook::store {
namespace {

using util::Ok;
using util::Result;
using util::Status;

// "id IN (1,2,3)". The ids are integers we format ourselves, so building the
// list is safe.
std::string IdsIn(std::span<const int64_t> ids) {
  std::string out;
  for (int64_t id : ids) {
    if (!out.empty()) out += ',';
    out += std::to_string(id);
  }
  return "id IN (" + out + ")";
}

}  // namespace

Result<int64_t> SqliteDeadLetters::Count() {
  return QueryInt(db_, "SELECT COUNT(*) FROM dead_letters", "counting dead letters");
}

Result<std::vector<DeadLetter>> SqliteDeadLetters::List() {
  Stmt s(db_, "SELECT " + RowColumns("failed_at", true) + " FROM dead_letters ORDER BY id");
  return MapRows(db_, s, true, &bodies_, ToDeadLetter, "listing dead letters");
}

Result<std::vector<DeadLetterInfo>> SqliteDeadLetters::ListInfo() {
  // No payload column: a listing never reads a payload (see ListInfo's doc).
  Stmt s(db_, "SELECT " + RowColumns("failed_at", false) + " FROM dead_letters ORDER BY id");
  return MapRows(db_, s, false, nullptr, ToDeadLetterInfo, "listing dead letters");
}

Result<int64_t> SqliteDeadLetters::Move(const std::string& where, bool replay) {
  int64_t moved = 0;
  Status st = db_.InTransaction([&]() -> Status {
    if (replay) {
      // Keep the id: `deadletters list` output stays meaningful across a
      // replay, and the payload in `bodies` stays attached.
      Stmt ins(db_,
               "INSERT OR IGNORE INTO outbox (id, event_id, target, account, folder, "
               "uidvalidity, uid, payload, attempts, created_at, next_attempt_at, "
               "last_error) SELECT id, event_id, target, account, folder, uidvalidity, "
               "uid, payload, 0, created_at, ?, last_error FROM dead_letters WHERE " +
                   where);
      ins.Bind(1, ToMs(Clock::now()));
      if (!ins.Run()) return db_.SqlError("replaying dead letters");
    }
    Stmt del(db_, "DELETE FROM dead_letters WHERE " + where);
    if (!del.Run()) return db_.SqlError("removing dead letters");
    moved = db_.Changes();
    return bodies_.DeleteOrphans();  // dropped ones (a replayed one is in the outbox again)
  });
  if (!st) return st.error();
  return moved;
}

Result<int64_t> SqliteDeadLetters::Replay(std::span<const int64_t> ids) {
  if (ids.empty()) return int64_t{0};
  return Move(IdsIn(ids), true);
}
Result<int64_t> SqliteDeadLetters::ReplayAll() { return Move("1=1", true); }
Result<int64_t> SqliteDeadLetters::Drop(std::span<const int64_t> ids) {
  if (ids.empty()) return int64_t{0};
  return Move(IdsIn(ids), false);
}
Result<int64_t> SqliteDeadLetters::DropAll() { return Move("1=1", false); }

}  // namespace mailhook::store
