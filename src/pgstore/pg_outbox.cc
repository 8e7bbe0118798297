#include "pgstore/pg_outbox.h"

#include <map>

#include "pgstore/pg_row_mapper.h"
#include "pgstore/pg_statement.h"
#include "store/claim_rows.h"

namespace mailhook::pgstore {
namespace {

using util::Ok;
using util::Result;
using util::Status;

// DO NOTHING covers a row still in the outbox (its (event_id, target), as
// SQLite's OR IGNORE); the NOT EXISTS clauses a row that already failed for
// good or was delivered: either way a replay of the same message must not
// deliver it a second time. The conflict target is named: a clash of the id
// (a row inserted with an explicit id ahead of the identity sequence) is an
// error, not an event silently dropped. RETURNING: the id of a row inserted
// (none when skipped).
constexpr PgStatement kOutboxAdd = {"outbox.add", R"sql(
    INSERT INTO outbox (event_id, target, account, folder, uidvalidity, uid, payload, created_at, next_attempt_at)
    SELECT $1::text, $2::text, $3::text, $4::text, $5::bigint, $6::bigint, $7::text, $8::bigint, $8::bigint
    WHERE NOT EXISTS (SELECT 1 FROM dead_letters WHERE event_id = $1::text AND target = $2::text)
      AND NOT EXISTS (SELECT 1 FROM delivered WHERE event_id = $1::text AND target = $2::text)
    ON CONFLICT (event_id, target) DO NOTHING RETURNING id)sql"};
// READ COMMITTED lets Add's NOT EXISTS (delivered) miss a MarkDelivered of
// the same (event_id, target) not yet committed on another connection (and
// its INSERT then waits for that row's delete and inserts): a second
// delivery. So Add, and MarkDelivered and MoveToDeadLetters before they
// delete a row and write its marker, first take a transaction-scoped
// advisory lock per (event_id, target): an Add waits for the delivery's
// commit, and its next statement's snapshot sees the marker. The locks are
// taken in order of their keys, so two transactions cannot deadlock over
// them (a hash collision only serialises two unrelated pairs).
constexpr PgStatement kOutboxLockPairs = {"outbox.lock_pairs", R"sql(
    SELECT pg_advisory_xact_lock(k.h) FROM (
      SELECT DISTINCT hashtextextended(e || chr(10) || t, 0) AS h
      FROM unnest($1::text[], $2::text[]) AS u(e, t) ORDER BY h OFFSET 0) k)sql"};
constexpr PgStatement kOutboxLockRows = {"outbox.lock_rows", R"sql(
    SELECT pg_advisory_xact_lock(k.h) FROM (
      SELECT DISTINCT hashtextextended(event_id || chr(10) || target, 0) AS h
      FROM outbox WHERE id = ANY($1::bigint[]) ORDER BY h OFFSET 0) k)sql"};
constexpr PgStatement kOutboxLease = {
    "outbox.lease", "UPDATE outbox SET lease_until = $1::bigint, lease_owner = $2::uuid WHERE id = ANY($3::bigint[])"};
// One statement for the batch: the rows go with their payloads in `bodies`,
// their markers come (replacing an older marker's time, as SQLite's INSERT OR
// REPLACE). Only rows still leased by us ($3; none: rows without an owner):
// a row another owner took over after our lease ended stays for it to
// deliver (a second delivery: at-least-once), its lease untouched.
constexpr PgStatement kOutboxDelivered = {"outbox.delivered", R"sql(
    WITH gone AS (DELETE FROM outbox WHERE id = ANY($2::bigint[]) AND lease_owner IS NOT DISTINCT FROM $3::uuid
                  RETURNING id, event_id, target),
      marked AS (INSERT INTO delivered (event_id, target, delivered_at) SELECT event_id, target, $1::bigint FROM gone
                 ON CONFLICT (event_id, target) DO UPDATE SET delivered_at = excluded.delivered_at),
      chunks AS (DELETE FROM body_chunks WHERE id IN (SELECT id FROM gone))
    DELETE FROM bodies WHERE id IN (SELECT id FROM gone))sql"};
// Retry, release and the dead-letter move, like the delivered statement, act
// on a row only while we hold its lease: a stale worker (its lease ended and
// another owner claimed the row) must not clear the new owner's lease.
constexpr PgStatement kOutboxRetry = {"outbox.retry", R"sql(
    UPDATE outbox SET attempts = $1::integer, next_attempt_at = $2::bigint, last_error = $3,
      lease_until = 0, lease_owner = NULL
    WHERE id = $4::bigint AND lease_owner IS NOT DISTINCT FROM $5::uuid)sql"};
// SQLite's INSERT OR REPLACE into dead_letters drops any dead letter with the
// row's id or its (event_id, target) first: so does this, then the move.
constexpr PgStatement kOutboxDeadReplace = {"outbox.dead_replace", R"sql(
    DELETE FROM dead_letters d USING outbox o
    WHERE o.id = $1::bigint AND o.lease_owner IS NOT DISTINCT FROM $2::uuid
      AND (d.id = o.id OR (d.event_id = o.event_id AND d.target = o.target)))sql"};
constexpr PgStatement kOutboxDeadMove = {"outbox.dead_move", R"sql(
    WITH gone AS (DELETE FROM outbox WHERE id = $1::bigint AND lease_owner IS NOT DISTINCT FROM $5::uuid RETURNING *)
    INSERT INTO dead_letters (id, event_id, target, account, folder, uidvalidity, uid, payload, attempts,
                              created_at, failed_at, last_error)
    SELECT id, event_id, target, account, folder, uidvalidity, uid, payload, $2::integer, created_at,
           $3::bigint, $4::text FROM gone)sql"};
constexpr PgStatement kOutboxRelease = {"outbox.release",
                                        "UPDATE outbox SET lease_until = 0, lease_owner = NULL WHERE id = $1::bigint"
                                        " AND lease_owner IS NOT DISTINCT FROM $2::uuid"};
// A lease's owner is dead when no replica row has a heartbeat newer than the
// TTL ($2 ms) by the server's clock, as PgLeases judges it (pg_leases.cc):
// its claims are free at once (pg_schema.cc), not only when lease_until ends.
#define MH_PG_OUTBOX_OWNER_DEAD(ttl)                                                                \
  "(lease_owner IS NOT NULL AND NOT EXISTS (SELECT 1 FROM replicas r WHERE r.id = lease_owner AND " \
  "r.heartbeat_at > clock_timestamp() - " ttl "::bigint * interval '1 millisecond'))"
// Our own leases ($1; with no owner, those without one) and a dead replica's;
// never a live replica's.
constexpr PgStatement kOutboxReleaseAll = {
    "outbox.release_all",
    "UPDATE outbox SET lease_until = 0, lease_owner = NULL WHERE lease_until <> 0"
    " AND (lease_owner IS NOT DISTINCT FROM $1::uuid OR " MH_PG_OUTBOX_OWNER_DEAD("$2") ")"};
constexpr PgStatement kOutboxNextDue = {
    "outbox.next_due",
    "SELECT min(CASE WHEN lease_owner IS DISTINCT FROM $2::uuid AND " MH_PG_OUTBOX_OWNER_DEAD("$3")
    " THEN next_attempt_at ELSE greatest(next_attempt_at, lease_until) END)"
    " FROM outbox WHERE NOT (target = ANY($1::text[]))"};
constexpr PgStatement kOutboxCount = {"outbox.count", "SELECT count(*) FROM outbox"};
constexpr PgStatement kOutboxAllDelivered = {"outbox.all_delivered", R"sql(
    SELECT (SELECT count(*) FROM outbox WHERE event_id = $1)
         + (SELECT count(*) FROM dead_letters WHERE event_id = $1))sql"};
constexpr PgStatement kOutboxPrune = {"outbox.prune", "DELETE FROM delivered WHERE delivered_at < $1::bigint"};

// The SQL of the row queries (their column list is PgRowColumns').
const std::string& OutboxDueSql() {
  // SKIP LOCKED: rows another dispatcher is claiming right now are not ours
  // to wait for; its lease keeps them from us once it commits. A row leased
  // by a dead replica is claimable at once (never one leased by ourselves:
  // our own worker may still be delivering it).
  static const std::string sql = "SELECT " + PgRowColumns("next_attempt_at", true) +
                                 " FROM outbox WHERE next_attempt_at <= $1::bigint AND (lease_until <= $1::bigint"
                                 " OR (lease_owner IS DISTINCT FROM $4::uuid AND " MH_PG_OUTBOX_OWNER_DEAD("$5") "))"
                                 " AND NOT (target = ANY($3::text[])) ORDER BY next_attempt_at, id LIMIT $2::bigint"
                                 " FOR UPDATE SKIP LOCKED";
  return sql;
}
#undef MH_PG_OUTBOX_OWNER_DEAD
const std::string& OutboxListSql() {
  static const std::string sql =
      "SELECT " + PgRowColumns("next_attempt_at", true) + " FROM outbox ORDER BY next_attempt_at, id";
  return sql;
}

}  // namespace

Status PgOutbox::AddOne(const store::OutboxItem& item, int64_t now) {
  uint64_t body_size = 0;
  for (const auto& piece : item.pieces) body_size += piece->size();
  const std::string joined = item.pieces.empty() ? std::string() : store::InlinePayload(item, body_size);
  const bool in_bodies = !item.pieces.empty() && joined.empty();
  // In `bodies`: payload '' (events are never empty).
  const std::string_view payload = item.pieces.empty() ? std::string_view(item.payload)
                                   : in_bodies         ? std::string_view()
                                                       : std::string_view(joined);
  auto rows =
      ExecStatement(conn_, kOutboxAdd,
                    {item.event_id, item.target, item.account, item.folder, item.uidvalidity, item.uid, payload, now});
  if (!rows) return rows.error();
  if (in_bodies && rows->rows() == 1) {
    auto id = rows->Int64(0, 0);
    if (!id) return id.error();
    return bodies_.Write(*id, body_size, item.pieces);
  }
  return Ok();
}

Status PgOutbox::Add(const std::vector<store::OutboxItem>& items) {
  if (items.empty()) return Ok();
  return conn_.InTransaction([&]() -> Status {
    std::vector<std::string> events;
    std::vector<std::string> targets;
    for (const auto& item : items) {
      events.push_back(item.event_id);
      targets.push_back(item.target);
    }
    if (auto s = RunStatement(conn_, kOutboxLockPairs, {PgTextArray(events), PgTextArray(targets)}); !s) return s;
    const int64_t now = PgMs(store::Clock::now());
    for (const auto& item : items) {
      if (auto s = AddOne(item, now); !s) return s;
    }
    return Ok();
  });
}

Result<std::vector<store::Delivery>> PgOutbox::SelectDue(store::TimePoint now, int limit,
                                                         const std::vector<std::string>& skip_targets) {
  auto rows = ExecStatement(conn_, {"outbox.due", OutboxDueSql().c_str()},
                            {PgMs(now), limit, PgTextArray(skip_targets), Owner(), TtlMs()});
  if (!rows) return rows.error();
  return MapDeliveries(*rows, bodies_);
}

Result<store::ClaimResult> PgOutbox::Claim(const store::ClaimRequest& request) {
  store::ClaimResult out;
  Status st = conn_.InTransaction([&]() -> Status {
    if (Status s = MarkDelivered(request.delivered); !s) return s;
    if (request.limit <= 0) return Ok();
    // One more than the limit: whether more are due, not leased.
    auto due = SelectDue(request.now, request.limit + 1, request.skip_targets);
    if (!due) return due.error();
    // Rows left for lack of room stay unclaimed (locked until the commit, not leased).
    out = store::ChooseClaimed(request, std::move(*due));
    if (out.rows.empty()) return Ok();
    std::vector<int64_t> ids;
    for (const auto& d : out.rows) ids.push_back(d.id);
    return RunStatement(conn_, kOutboxLease, {PgMs(request.now + request.lease), Owner(), PgIntArray(ids)});
  });
  if (!st) return st.error();
  return out;
}

Status PgOutbox::MarkDelivered(const std::vector<int64_t>& ids) {
  if (ids.empty()) return Ok();
  const std::string chosen = PgIntArray(ids);
  return conn_.InTransaction([&]() -> Status {
    if (auto s = RunStatement(conn_, kOutboxLockRows, {chosen}); !s) return s;
    return RunStatement(conn_, kOutboxDelivered, {PgMs(store::Clock::now()), chosen, Owner()});
  });
}

Status PgOutbox::ScheduleRetry(int64_t id, int attempts, store::TimePoint next_attempt_at,
                               const std::string& last_error) {
  return RunStatement(conn_, kOutboxRetry, {attempts, PgMs(next_attempt_at), ValidUtf8(last_error), id, Owner()});
}

Status PgOutbox::MoveToDeadLetters(int64_t id, int attempts, const std::string& last_error) {
  // The id is kept, so the payload in `bodies` stays attached without a copy.
  return conn_.InTransaction([&]() -> Status {
    if (auto s = RunStatement(conn_, kOutboxLockRows, {PgIntArray(std::vector<int64_t>{id})}); !s) return s;
    if (auto s = RunStatement(conn_, kOutboxDeadReplace, {id, Owner()}); !s) return s;
    return RunStatement(conn_, kOutboxDeadMove,
                        {id, attempts, PgMs(store::Clock::now()), ValidUtf8(last_error), Owner()});
  });
}

Status PgOutbox::ReleaseLease(int64_t id) { return RunStatement(conn_, kOutboxRelease, {id, Owner()}); }

Status PgOutbox::ReleaseAllLeases() { return RunStatement(conn_, kOutboxReleaseAll, {Owner(), TtlMs()}); }

Result<std::optional<store::TimePoint>> PgOutbox::NextDueAt(const std::vector<std::string>& skip_targets) {
  auto at = FirstInt(ExecStatement(conn_, kOutboxNextDue, {PgTextArray(skip_targets), Owner(), TtlMs()}));
  if (!at) return at.error();
  if (!*at) return std::optional<store::TimePoint>();
  return std::optional<store::TimePoint>(PgTime(**at));
}

Result<int64_t> PgOutbox::PendingCount() {
  auto n = FirstInt(ExecStatement(conn_, kOutboxCount, {}));
  if (!n) return n.error();
  return n->value_or(0);
}

Result<std::vector<store::Delivery>> PgOutbox::ListPending() {
  // The rows and their payloads in `bodies` from one snapshot: a row
  // delivered meanwhile is listed whole, not a payload missing.
  std::vector<store::Delivery> out;
  Status st = InReadSnapshot(conn_, [&]() -> Status {
    auto rows = ExecStatement(conn_, {"outbox.list", OutboxListSql().c_str()}, {});
    if (!rows) return rows.error();
    auto mapped = MapDeliveries(*rows, bodies_);
    if (!mapped) return mapped.error();
    out = std::move(*mapped);
    return Ok();
  });
  if (!st) return st.error();
  return out;
}

Result<bool> PgOutbox::AllDelivered(const std::string& event_id) {
  auto n = FirstInt(ExecStatement(conn_, kOutboxAllDelivered, {event_id}));
  if (!n) return n.error();
  return n->value_or(0) == 0;
}

Status PgOutbox::PruneDelivered(store::TimePoint before) { return RunStatement(conn_, kOutboxPrune, {PgMs(before)}); }

}  // namespace mailhook::pgstore
