#include "pgstore/pg_smtp_sent.h"

#include "pgstore/pg_statement.h"
#include "util/strings.h"

namespace mailhook::pgstore {
namespace {

using store::ReplyReservation;
using util::Result;
using util::Status;

// The advisory locks' first key (the two-key form: a key space apart from
// the schema lock's single bigint key), "mh" + 1.
constexpr int kReplyLockClass = 0x6d6801;

constexpr PgStatement kSentLock = {
    "smtp_sent.lock", "SELECT pg_advisory_xact_lock($1::integer, hashtext($2::text || chr(10) || $3::text))"};
constexpr PgStatement kSentOwn = {"smtp_sent.own", "SELECT 1 FROM smtp_sent WHERE target = $1 AND event_id = $2"};
constexpr PgStatement kSentAnswered = {"smtp_sent.answered",
                                       "SELECT 1 FROM smtp_sent WHERE target = $1 AND message_id = $2"};
constexpr PgStatement kSentSince = {
    "smtp_sent.since", "SELECT count(*) FROM smtp_sent WHERE target = $1 AND sender = $2 AND sent_at > $3::bigint"};
// A second row for the same (target, event) is ignored (SQLite's OR IGNORE).
constexpr PgStatement kSentInsert = {"smtp_sent.insert", R"sql(
    INSERT INTO smtp_sent (target, sender, message_id, event_id, sent_at)
    VALUES ($1, $2, $3, $4, $5::bigint) ON CONFLICT DO NOTHING)sql"};
constexpr PgStatement kSentRelease = {"smtp_sent.release", "DELETE FROM smtp_sent WHERE target = $1 AND event_id = $2"};
constexpr PgStatement kSentPrune = {"smtp_sent.prune", "DELETE FROM smtp_sent WHERE sent_at < $1::bigint"};

// Whether the query found a row.
Result<bool> Found(Result<PgRows> rows) {
  if (!rows) return rows.error();
  return rows->rows() > 0;
}

}  // namespace

Result<ReplyReservation> PgSmtpSent::Decide(const store::SentReply& reply, const std::string& sender,
                                            store::ReplyLimit limit) {
  // A retry of the same event keeps its reservation (and its sent_at: the
  // window counts from the first attempt).
  auto own = Found(ExecStatement(conn_, kSentOwn, {reply.target, reply.event_id}));
  if (!own) return own.error();
  if (*own) return ReplyReservation::kReserved;
  if (!reply.message_id.empty()) {
    auto answered = Found(ExecStatement(conn_, kSentAnswered, {reply.target, reply.message_id}));
    if (!answered) return answered.error();
    if (*answered) return ReplyReservation::kAlreadyAnswered;
  }
  auto recent = FirstInt(ExecStatement(conn_, kSentSince, {reply.target, sender, PgMs(reply.sent_at - limit.window)}));
  if (!recent) return recent.error();
  if (recent->value_or(0) >= limit.per_sender) return ReplyReservation::kRateLimited;
  return ReplyReservation::kReserved;
}

Result<ReplyReservation> PgSmtpSent::ReserveReply(const store::SentReply& reply, store::ReplyLimit limit) {
  const std::string sender = util::Lower(reply.sender);
  ReplyReservation decision = ReplyReservation::kReserved;
  Status st = conn_.InTransaction([&]() -> Status {
    // Until the commit: another reservation for this sender waits here, then
    // counts this one. (The same message has the same sender: the "already
    // answered" check is covered too.)
    if (auto s = RunStatement(conn_, kSentLock, {kReplyLockClass, reply.target, sender}); !s) return s;
    auto d = Decide(reply, sender, limit);
    if (!d) return d.error();
    decision = *d;
    if (decision != ReplyReservation::kReserved) return util::Ok();
    // Ignored when this event's row exists.
    return RunStatement(conn_, kSentInsert,
                        {reply.target, sender, reply.message_id, reply.event_id, PgMs(reply.sent_at)});
  });
  if (!st) return st.error();
  return decision;
}

Status PgSmtpSent::ReleaseReply(const std::string& target, const std::string& event_id) {
  return RunStatement(conn_, kSentRelease, {target, event_id});
}

Result<bool> PgSmtpSent::AlreadyAnswered(const std::string& target, const std::string& message_id) {
  if (message_id.empty()) return false;
  return Found(ExecStatement(conn_, kSentAnswered, {target, message_id}));
}

Result<int64_t> PgSmtpSent::SentSince(const std::string& target, const std::string& sender, store::TimePoint since) {
  auto n = FirstInt(ExecStatement(conn_, kSentSince, {target, util::Lower(sender), PgMs(since)}));
  if (!n) return n.error();
  return n->value_or(0);
}

Status PgSmtpSent::RecordSent(const store::SentReply& reply) {
  return RunStatement(conn_, kSentInsert,
                      {reply.target, util::Lower(reply.sender), reply.message_id, reply.event_id, PgMs(reply.sent_at)});
}

Status PgSmtpSent::PruneSentBefore(store::TimePoint before) { return RunStatement(conn_, kSentPrune, {PgMs(before)}); }

}  // namespace mailhook::pgstore
