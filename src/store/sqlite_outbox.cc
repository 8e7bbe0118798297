#include "store/sqlite_outbox.h"

#include "store/claim_rows.h"
#include "store/row_mapper.h"
#include "store/statement.h"

namespace mailhook::store {
namespace {

using util::Ok;
using util::Result;
using util::Status;

constexpr const char* kDeleteRow = "DELETE FROM outbox WHERE id=?";

// " AND target NOT IN (?first, ...)" for `count` targets; empty for none.
std::string SkipTargetsClause(int first, size_t count) {
  if (count == 0) return "";
  std::string out = " AND target NOT IN (";
  for (size_t i = 0; i < count; ++i) {
    out += (i ? ", ?" : "?") + std::to_string(first + static_cast<int>(i));
  }
  return out + ")";
}

}  // namespace

Status SqliteOutbox::Add(const std::vector<OutboxItem>& items) {
  return db_.InTransaction([&]() -> Status {
    // OR IGNORE covers a row still in the outbox; the NOT EXISTS clauses cover a
    // row that already failed for good or was delivered: either way a replay of
    // the same message must not deliver it a second time.
    Stmt ins(db_,
             "INSERT OR IGNORE INTO outbox (event_id, target, account, folder, uidvalidity, "
             "uid, payload, created_at, next_attempt_at) "
             "SELECT ?1,?2,?3,?4,?5,?6,?7,?8,?8 WHERE NOT EXISTS "
             "(SELECT 1 FROM dead_letters WHERE event_id=?1 AND target=?2) AND NOT EXISTS "
             "(SELECT 1 FROM delivered WHERE event_id=?1 AND target=?2)");
    const int64_t now = ToMs(Clock::now());
    for (const auto& item : items) {
      ins.Bind(1, item.event_id).Bind(2, item.target).Bind(3, item.account);
      ins.Bind(4, item.folder).Bind(5, item.uidvalidity).Bind(6, item.uid).Bind(8, now);
      uint64_t body_size = 0;
      for (const auto& piece : item.pieces) body_size += piece->size();
      const std::string joined = item.pieces.empty() ? std::string() : InlinePayload(item, body_size);
      const bool in_bodies = !item.pieces.empty() && joined.empty();
      // In `bodies`: '' (not NULL: NOT NULL + OR IGNORE would silently drop the row).
      // NOLINTNEXTLINE(bugprone-string-constructor): a non-null empty view binds '', not NULL
      ins.BindView(7, item.pieces.empty() ? std::string_view(item.payload)
                      : in_bodies         ? std::string_view("", 0)
                                          : std::string_view(joined));
      if (!ins.Run()) return db_.SqlError("inserting event " + item.event_id);
      ins.Reset();
      if (in_bodies && db_.Changes() == 1) {
        if (Status s = bodies_.Write(db_.LastInsertId(), body_size, item.pieces); !s.ok()) return s;
      }
    }
    return Ok();
  });
}

Result<std::vector<Delivery>> SqliteOutbox::SelectDue(TimePoint now, int limit,
                                                      const std::vector<std::string>& skip_targets) {
  Stmt sel(db_, "SELECT " + RowColumns("next_attempt_at", true) +
                    " FROM outbox WHERE next_attempt_at <= ?1 AND lease_until <= ?1" +
                    SkipTargetsClause(3, skip_targets.size()) + " ORDER BY next_attempt_at, id LIMIT ?2");
  sel.Bind(1, ToMs(now)).Bind(2, limit);
  for (size_t i = 0; i < skip_targets.size(); ++i) sel.Bind(static_cast<int>(i) + 3, skip_targets[i]);
  return MapRows(db_, sel, true, &bodies_, ToDelivery, "claiming due deliveries");
}

Result<ClaimResult> SqliteOutbox::Claim(const ClaimRequest& request) {
  ClaimResult out;
  Status st = db_.InTransaction([&]() -> Status {
    if (Status s = MarkDelivered(request.delivered); !s) return s;
    if (request.limit <= 0) return Ok();
    // One more than the limit: whether more are due, not leased.
    Result<std::vector<Delivery>> due = SelectDue(request.now, request.limit + 1, request.skip_targets);
    if (!due.ok()) return due.error();
    // Rows left for lack of room stay unclaimed (selected, not leased).
    out = ChooseClaimed(request, std::move(*due));
    Stmt upd(db_, "UPDATE outbox SET lease_until=? WHERE id=?");
    for (const auto& d : out.rows) {
      upd.Bind(1, ToMs(request.now + request.lease)).Bind(2, d.id);
      if (!upd.Run()) return db_.SqlError("leasing delivery " + std::to_string(d.id));
      upd.Reset();
    }
    return Ok();
  });
  if (!st) return st.error();
  return out;
}

Status SqliteOutbox::MarkDelivered(const std::vector<int64_t>& ids) {
  if (ids.empty()) return Ok();
  return db_.InTransaction([&]() -> Status {
    Stmt mark(db_,
              "INSERT OR REPLACE INTO delivered (event_id, target, delivered_at) "
              "SELECT event_id, target, ? FROM outbox WHERE id=?");
    const int64_t now = ToMs(Clock::now());
    for (int64_t id : ids) {
      mark.Bind(1, now).Bind(2, id);
      if (!mark.Run()) return db_.SqlError("recording delivery " + std::to_string(id));
      mark.Reset();
      if (auto s = RunKeyed(db_, kDeleteRow, id, "deleting delivered row " + std::to_string(id)); !s) return s;
      if (auto s = bodies_.Delete(id); !s) return s;
    }
    return Ok();
  });
}

Status SqliteOutbox::ScheduleRetry(int64_t id, int attempts, TimePoint next_attempt_at, const std::string& last_error) {
  return db_.InTransaction([&]() -> Status {
    Stmt s(db_, "UPDATE outbox SET attempts=?, next_attempt_at=?, last_error=?, lease_until=0 WHERE id=?");
    s.Bind(1, attempts).Bind(2, ToMs(next_attempt_at)).Bind(3, last_error).Bind(4, id);
    if (!s.Run()) return db_.SqlError("scheduling retry of " + std::to_string(id));
    return Ok();
  });
}

Status SqliteOutbox::MoveToDeadLetters(int64_t id, int attempts, const std::string& last_error) {
  return db_.InTransaction([&]() -> Status {
    // The id is kept, so the payload in `bodies` stays attached without a copy.
    Stmt ins(db_,
             "INSERT OR REPLACE INTO dead_letters (id, event_id, target, account, folder, "
             "uidvalidity, uid, payload, attempts, created_at, failed_at, last_error) "
             "SELECT id, event_id, target, account, folder, uidvalidity, uid, payload, ?, "
             "created_at, ?, ? FROM outbox WHERE id=?");
    ins.Bind(1, attempts).Bind(2, ToMs(Clock::now())).Bind(3, last_error).Bind(4, id);
    if (!ins.Run()) return db_.SqlError("moving " + std::to_string(id) + " to dead letters");
    return RunKeyed(db_, kDeleteRow, id, "deleting dead-lettered row " + std::to_string(id));
  });
}

Status SqliteOutbox::ReleaseLease(int64_t id) {
  return RunKeyed(db_, "UPDATE outbox SET lease_until=0 WHERE id=?", id, "releasing lease of " + std::to_string(id));
}

Status SqliteOutbox::ReleaseAllLeases() {
  return db_.InTransaction([&] { return db_.Exec("UPDATE outbox SET lease_until=0"); });
}

Result<std::optional<TimePoint>> SqliteOutbox::NextDueAt(const std::vector<std::string>& skip_targets) {
  Stmt s(db_, "SELECT MIN(MAX(next_attempt_at, lease_until)) FROM outbox WHERE 1" +
                  SkipTargetsClause(1, skip_targets.size()));
  for (size_t i = 0; i < skip_targets.size(); ++i) s.Bind(static_cast<int>(i) + 1, skip_targets[i]);
  if (!s.Step()) return db_.SqlError("reading next due time");
  if (s.IsNull(0)) return std::optional<TimePoint>();
  return std::optional<TimePoint>(FromMs(s.Int(0)));
}

Result<int64_t> SqliteOutbox::PendingCount() { return QueryInt(db_, "SELECT COUNT(*) FROM outbox", "counting outbox"); }

Result<std::vector<Delivery>> SqliteOutbox::ListPending() {
  Stmt s(db_, "SELECT " + RowColumns("next_attempt_at", true) + " FROM outbox ORDER BY next_attempt_at, id");
  return MapRows(db_, s, true, &bodies_, ToDelivery, "listing outbox");
}

Result<bool> SqliteOutbox::AllDelivered(const std::string& event_id) {
  Stmt s(db_,
         "SELECT (SELECT COUNT(*) FROM outbox WHERE event_id=?1) + "
         "(SELECT COUNT(*) FROM dead_letters WHERE event_id=?1)");
  s.Bind(1, event_id);
  if (!s.Step()) return db_.SqlError("checking event " + event_id);
  return s.Int(0) == 0;
}

Status SqliteOutbox::PruneDelivered(TimePoint before) {
  return db_.InTransaction([&]() -> Status {
    Stmt prune(db_, "DELETE FROM delivered WHERE delivered_at < ?");
    prune.Bind(1, ToMs(before));
    if (!prune.Run()) return db_.SqlError("pruning delivered markers");
    return Ok();
  });
}

}  // namespace mailhook::store
