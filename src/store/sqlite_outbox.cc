#include "store/sqlite_outbox.h"

#include <algorithm>
#include <optional>

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
  // `lease_until`: a lease written by an older version, until ReleaseAllLeases.
  Stmt sel(db_, "SELECT " + RowColumns("next_attempt_at", true) +
                    " FROM outbox WHERE next_attempt_at <= ?1 AND lease_until <= ?1" +
                    SkipTargetsClause(3, skip_targets.size()) + " ORDER BY next_attempt_at, id LIMIT ?2");
  sel.Bind(1, ToMs(now)).Bind(2, limit);
  for (size_t i = 0; i < skip_targets.size(); ++i) sel.Bind(static_cast<int>(i) + 3, skip_targets[i]);
  std::vector<Delivery> out;
  while (sel.Step()) {
    // The inline payload (up to 4 KiB) comes with the row; one in `bodies`
    // (left empty here) is read only for a row that is claimed.
    Result<RowFields> row = MapRow(sel, false, nullptr);
    if (!row.ok()) return row.error();
    out.push_back(ToDelivery(std::move(*row)));
    out.back().item.payload = sel.Text(11);
  }
  if (!sel.ok()) return db_.SqlError("claiming due deliveries");
  return out;
}

Status SqliteOutbox::ReadBody(Delivery& row) {
  if (!row.item.payload.empty()) return Ok();
  // Empty: the event is in `bodies` (events are never empty).
  Result<std::string> body = bodies_.Read(row.id);
  if (!body.ok()) return body.error();
  row.item.payload = std::move(*body);
  return Ok();
}

Result<ClaimResult> SqliteOutbox::ChooseDue(const ClaimRequest& request, const SqliteLeases::Held& held) {
  size_t held_now = 0;
  for (const auto& [id, until] : held) held_now += until > request.now;
  // One more than the limit (whether more are due), and as many again as are
  // held: those may be among the oldest due rows, and are passed over.
  Result<std::vector<Delivery>> due =
      SelectDue(request.now, request.limit + 1 + static_cast<int>(held_now), request.skip_targets);
  if (!due.ok()) return due.error();
  std::erase_if(*due, [&](const Delivery& d) {
    auto it = held.find(d.id);
    return it != held.end() && it->second > request.now;
  });
  if (due->size() > static_cast<size_t>(request.limit) + 1) due->resize(static_cast<size_t>(request.limit) + 1);
  // Rows left for lack of room stay unclaimed (selected, not held).
  ClaimResult out = ChooseClaimed(request, std::move(*due));
  // Payloads from `bodies` only for the rows claimed: a held or skipped row's may be large.
  for (auto& row : out.rows) {
    if (Status s = ReadBody(row); !s) return s.error();
  }
  return out;
}

Result<ClaimResult> SqliteOutbox::Claim(const ClaimRequest& request) {
  if (request.limit <= 0) {
    if (Status s = MarkDelivered(request.delivered); !s) return s.error();
    return ClaimResult{};
  }
  // The claim itself only reads: the lease is held in this process (see
  // SqliteLeases). The marks share its look at the outbox in one transaction,
  // so that a failure records nothing and claims nothing.
  Result<ClaimResult> out =
      leases_->Claim(request.now + request.lease, [&](const SqliteLeases::Held& held) -> Result<ClaimResult> {
        if (request.delivered.empty()) return ChooseDue(request, held);
        Result<ClaimResult> chosen = ClaimResult{};
        Status st = db_.InTransaction([&]() -> Status {
          if (Status s = MarkRows(request.delivered); !s) return s;
          chosen = ChooseDue(request, held);
          return chosen.ok() ? Ok() : Status(chosen.error());
        });
        if (!st) return st.error();
        return chosen;
      });
  if (out.ok()) leases_->Release(request.delivered);
  return out;
}

Status SqliteOutbox::MarkRows(const std::vector<int64_t>& ids) {
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
}

Status SqliteOutbox::MarkDelivered(const std::vector<int64_t>& ids) {
  if (ids.empty()) return Ok();
  Status s = db_.InTransaction([&] { return MarkRows(ids); });
  // After the commit (a failed mark leaves the rows held: sent again when
  // their leases end, at-least-once), and never inside a transaction: a
  // claim holds the lease table while it waits for the write lock.
  if (s) leases_->Release(ids);
  return s;
}

Status SqliteOutbox::ScheduleRetry(int64_t id, int attempts, TimePoint next_attempt_at, const std::string& last_error) {
  Status st = db_.InTransaction([&]() -> Status {
    Stmt s(db_, "UPDATE outbox SET attempts=?, next_attempt_at=?, last_error=?, lease_until=0 WHERE id=?");
    s.Bind(1, attempts).Bind(2, ToMs(next_attempt_at)).Bind(3, last_error).Bind(4, id);
    if (!s.Run()) return db_.SqlError("scheduling retry of " + std::to_string(id));
    return Ok();
  });
  if (st) leases_->Release({id});  // after the commit, as MarkDelivered
  return st;
}

Status SqliteOutbox::MoveToDeadLetters(int64_t id, int attempts, const std::string& last_error) {
  Status st = db_.InTransaction([&]() -> Status {
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
  // A replayed dead letter comes back under the same id: it must not be held.
  if (st) leases_->Release({id});
  return st;
}

Status SqliteOutbox::ReleaseLease(int64_t id) {
  // The lease is only in this process; the file has nothing to undo.
  leases_->Release({id});
  return Ok();
}

Status SqliteOutbox::ReleaseAllLeases() {
  // The file's column too: leases an older version wrote there.
  Status st = db_.InTransaction([&] { return db_.Exec("UPDATE outbox SET lease_until=0"); });
  if (st) leases_->ReleaseAll();
  return st;
}

Result<std::optional<TimePoint>> SqliteOutbox::NextDueAt(const std::vector<std::string>& skip_targets) {
  const SqliteLeases::Held held = leases_->Snapshot();
  // With rows held: the soonest rows by their own time, as many as are held
  // and one more. A held row becomes claimable only when its lease ends, so
  // the answer is among them (the first row not held bounds every later
  // one). Without: the soonest time alone (no sort).
  const std::string skip = SkipTargetsClause(2, skip_targets.size());
  Stmt s(db_, held.empty() ? "SELECT 0, MIN(MAX(next_attempt_at, lease_until)) FROM outbox WHERE 1" + skip + " LIMIT ?1"
                           : "SELECT id, MAX(next_attempt_at, lease_until) AS due FROM outbox WHERE 1" + skip +
                                 " ORDER BY due LIMIT ?1");
  s.Bind(1, static_cast<int64_t>(held.size()) + 1);
  for (size_t i = 0; i < skip_targets.size(); ++i) s.Bind(static_cast<int>(i) + 2, skip_targets[i]);
  std::optional<TimePoint> next;
  while (s.Step()) {
    if (s.IsNull(1)) break;  // MIN of no rows
    TimePoint due = FromMs(s.Int(1));
    auto it = held.find(s.Int(0));
    if (it != held.end()) due = std::max(due, it->second);
    if (!next || due < *next) next = due;
  }
  if (!s.ok()) return db_.SqlError("reading next due time");
  return next;
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
