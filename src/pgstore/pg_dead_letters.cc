#include "pgstore/pg_dead_letters.h"

#include "pgstore/pg_row_mapper.h"
#include "pgstore/pg_statement.h"

namespace mailhook::pgstore {
namespace {

using util::Result;
using util::Status;

constexpr PgStatement kDeadCount = {"dead_letters.count", "SELECT count(*) FROM dead_letters"};

// A listing's SQL, with or without the payload column.
const std::string& DeadListSql(bool payload) {
  static const std::string with = "SELECT " + PgRowColumns("failed_at", true) + " FROM dead_letters ORDER BY id";
  static const std::string without = "SELECT " + PgRowColumns("failed_at", false) + " FROM dead_letters ORDER BY id";
  return payload ? with : without;
}

// Move's statements take the dead letters in $1, or all of them when $2.
// The id is kept: `deadletters list` output stays meaningful across a
// replay, and the payload in `bodies` stays attached. DO NOTHING (SQLite's
// OR IGNORE) on any conflict: a row with that id or (event_id, target) is
// in the outbox already.
constexpr PgStatement kDeadReplay = {"dead_letters.replay", R"sql(
    INSERT INTO outbox (id, event_id, target, account, folder, uidvalidity, uid, payload, attempts,
                        created_at, next_attempt_at, last_error)
    SELECT id, event_id, target, account, folder, uidvalidity, uid, payload, 0, created_at, $3::bigint, last_error
    FROM dead_letters WHERE id = ANY($1::bigint[]) OR $2::boolean
    ON CONFLICT DO NOTHING)sql"};
constexpr PgStatement kDeadRemove = {"dead_letters.remove",
                                     "DELETE FROM dead_letters WHERE id = ANY($1::bigint[]) OR $2::boolean"};

}  // namespace

Result<int64_t> PgDeadLetters::Count() {
  auto n = FirstInt(ExecStatement(conn_, kDeadCount, {}));
  if (!n) return n.error();
  return n->value_or(0);
}

Result<std::vector<store::DeadLetter>> PgDeadLetters::List() {
  // The rows and their payloads from one snapshot (pg_statement.h).
  std::vector<store::DeadLetter> out;
  Status st = InReadSnapshot(conn_, [&]() -> Status {
    auto rows = ExecStatement(conn_, {"dead_letters.list", DeadListSql(true).c_str()}, {});
    if (!rows) return rows.error();
    auto mapped = MapDeadLetters(*rows, bodies_);
    if (!mapped) return mapped.error();
    out = std::move(*mapped);
    return util::Ok();
  });
  if (!st) return st.error();
  return out;
}

Result<std::vector<store::DeadLetterInfo>> PgDeadLetters::ListInfo() {
  // No payload column: a listing never reads a payload (see ListInfo's doc).
  auto rows = ExecStatement(conn_, {"dead_letters.list_info", DeadListSql(false).c_str()}, {});
  if (!rows) return rows.error();
  return MapDeadLetterInfos(*rows);
}

Result<int64_t> PgDeadLetters::Move(std::span<const int64_t> ids, bool all, bool replay) {
  int64_t moved = 0;
  const std::string chosen = PgIntArray(ids);
  // A boolean parameter in text format: "true" or "false".
  const char* every = all ? "true" : "false";
  Status st = conn_.InTransaction([&]() -> Status {
    if (replay) {
      if (auto r = ExecStatement(conn_, kDeadReplay, {chosen, every, PgMs(store::Clock::now())}); !r) {
        return r.error();
      }
    }
    auto removed = ExecStatement(conn_, kDeadRemove, {chosen, every});
    if (!removed) return removed.error();
    moved = removed->affected();
    return bodies_.DeleteOrphans();  // dropped ones (a replayed one is in the outbox again)
  });
  if (!st) return st.error();
  return moved;
}

Result<int64_t> PgDeadLetters::Replay(std::span<const int64_t> ids) {
  if (ids.empty()) return int64_t{0};
  return Move(ids, false, true);
}
Result<int64_t> PgDeadLetters::ReplayAll() { return Move({}, true, true); }
Result<int64_t> PgDeadLetters::Drop(std::span<const int64_t> ids) {
  if (ids.empty()) return int64_t{0};
  return Move(ids, false, false);
}
Result<int64_t> PgDeadLetters::DropAll() { return Move({}, true, false); }

}  // namespace mailhook::pgstore
