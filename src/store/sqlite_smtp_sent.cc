#include "store/sqlite_smtp_sent.h"

#include "store/statement.h"
#include "util/strings.h"

namespace mailhook::store {

using util::Ok;
using util::Result;
using util::Status;

namespace {

// The checks of ReserveReply in their order, inside its transaction.
Result<ReplyReservation> Decide(Db& db, const SentReply& reply, const std::string& sender, ReplyLimit limit) {
  // A retry of the same event keeps its reservation (and its sent_at: the
  // window counts from the first attempt).
  Stmt own(db, "SELECT 1 FROM smtp_sent WHERE target=? AND event_id=?");
  own.Bind(1, reply.target).Bind(2, reply.event_id);
  if (own.Step()) return ReplyReservation::kReserved;
  if (!own.ok()) return db.SqlError("reading the reply reservation of event " + reply.event_id);
  if (!reply.message_id.empty()) {
    Stmt answered(db, "SELECT 1 FROM smtp_sent WHERE target=? AND message_id=?");
    answered.Bind(1, reply.target).Bind(2, reply.message_id);
    if (answered.Step()) return ReplyReservation::kAlreadyAnswered;
    if (!answered.ok()) return db.SqlError("looking up replies to " + reply.message_id);
  }
  Stmt recent(db, "SELECT COUNT(*) FROM smtp_sent WHERE target=? AND sender=? AND sent_at>?");
  recent.Bind(1, reply.target).Bind(2, sender).Bind(3, ToMs(reply.sent_at - limit.window));
  if (!recent.Step()) return db.SqlError("counting recent replies of " + reply.target);
  if (recent.Int(0) >= limit.per_sender) return ReplyReservation::kRateLimited;
  return ReplyReservation::kReserved;
}

Status Insert(Db& db, const SentReply& reply, const std::string& sender) {
  Stmt add(db, "INSERT OR IGNORE INTO smtp_sent (target, sender, message_id, event_id, sent_at) VALUES (?,?,?,?,?)");
  add.Bind(1, reply.target).Bind(2, sender).Bind(3, reply.message_id).Bind(4, reply.event_id);
  add.Bind(5, ToMs(reply.sent_at));
  if (!add.Run()) return db.SqlError("recording the reply of event " + reply.event_id);
  return Ok();
}

}  // namespace

Result<ReplyReservation> SqliteSmtpSent::ReserveReply(const SentReply& reply, ReplyLimit limit) {
  const std::string sender = util::Lower(reply.sender);
  ReplyReservation decision = ReplyReservation::kReserved;
  auto s = db_.InTransaction([&]() -> Status {
    auto d = Decide(db_, reply, sender, limit);
    if (!d.ok()) return d.error();
    decision = *d;
    if (decision != ReplyReservation::kReserved) return Ok();
    return Insert(db_, reply, sender);  // ignored when this event's row exists
  });
  if (!s) return s.error();
  return decision;
}

Status SqliteSmtpSent::ReleaseReply(const std::string& target, const std::string& event_id) {
  return db_.InTransaction([&]() -> Status {
    Stmt del(db_, "DELETE FROM smtp_sent WHERE target=? AND event_id=?");
    del.Bind(1, target).Bind(2, event_id);
    if (!del.Run()) return db_.SqlError("releasing the reply reservation of event " + event_id);
    return Ok();
  });
}

Result<bool> SqliteSmtpSent::AlreadyAnswered(const std::string& target, const std::string& message_id) {
  if (message_id.empty()) return false;
  Stmt s(db_, "SELECT 1 FROM smtp_sent WHERE target=? AND message_id=?");
  s.Bind(1, target).Bind(2, message_id);
  if (s.Step()) return true;
  if (!s.ok()) return db_.SqlError("looking up replies to " + message_id);
  return false;
}

Result<int64_t> SqliteSmtpSent::SentSince(const std::string& target, const std::string& sender, TimePoint since) {
  Stmt s(db_, "SELECT COUNT(*) FROM smtp_sent WHERE target=? AND sender=? AND sent_at>?");
  s.Bind(1, target).Bind(2, util::Lower(sender)).Bind(3, ToMs(since));
  if (!s.Step()) return db_.SqlError("counting recent replies of " + target);
  return s.Int(0);
}

Status SqliteSmtpSent::RecordSent(const SentReply& reply) {
  return db_.InTransaction([&]() -> Status { return Insert(db_, reply, util::Lower(reply.sender)); });
}

Status SqliteSmtpSent::PruneSentBefore(TimePoint before) {
  return db_.InTransaction([&]() -> Status {
    Stmt prune(db_, "DELETE FROM smtp_sent WHERE sent_at < ?");
    prune.Bind(1, ToMs(before));
    if (!prune.Run()) return db_.SqlError("pruning sent replies");
    return Ok();
  });
}

}  // namespace mailhook::store
