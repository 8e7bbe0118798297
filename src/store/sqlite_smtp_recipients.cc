#include "store/sqlite_smtp_recipients.h"

#include "store/statement.h"

namespace mailhook::store {

using util::Ok;
using util::Result;
using util::Status;

Result<std::vector<RecipientState>> SqliteSmtpRecipients::ForEvent(const std::string& target,
                                                                   const std::string& event_id) {
  Stmt s(db_,
         "SELECT recipient, state, reply, updated_at FROM smtp_recipients WHERE target=? AND event_id=? "
         "ORDER BY recipient");
  s.Bind(1, target).Bind(2, event_id);
  std::vector<RecipientState> out;
  while (s.Step()) {
    out.push_back({s.Text(0), s.Text(1) == "sent" ? RecipientState::Status::kSent : RecipientState::Status::kRefused,
                   s.Text(2), TimePoint(std::chrono::milliseconds(s.Int(3)))});
  }
  if (!s.ok()) return db_.SqlError("reading the recipients of event " + event_id);
  return out;
}

Status SqliteSmtpRecipients::Record(const std::string& target, const std::string& event_id,
                                    const std::vector<RecipientState>& states) {
  if (states.empty()) return Ok();
  return db_.InTransaction([&]() -> Status {
    Stmt add(db_,
             "INSERT OR REPLACE INTO smtp_recipients (target, event_id, recipient, state, reply, updated_at) "
             "VALUES (?,?,?,?,?,?)");
    for (const RecipientState& r : states) {
      add.Reset();
      add.Bind(1, target).Bind(2, event_id).Bind(3, r.recipient);
      add.Bind(4, std::string(r.status == RecipientState::Status::kSent ? "sent" : "refused"));
      add.Bind(5, r.reply).Bind(6, ToMs(r.at));
      if (!add.Run()) return db_.SqlError("recording the recipients of event " + event_id);
    }
    return Ok();
  });
}

Status SqliteSmtpRecipients::Forget(const std::string& target, const std::string& event_id) {
  return db_.InTransaction([&]() -> Status {
    Stmt del(db_, "DELETE FROM smtp_recipients WHERE target=? AND event_id=?");
    del.Bind(1, target).Bind(2, event_id);
    if (!del.Run()) return db_.SqlError("forgetting the recipients of event " + event_id);
    return Ok();
  });
}

Status SqliteSmtpRecipients::PruneEnded() {
  return db_.InTransaction([&]() -> Status {
    // Both lookups use the UNIQUE (event_id, target) indexes.
    Stmt prune(db_,
               "DELETE FROM smtp_recipients WHERE NOT EXISTS (SELECT 1 FROM outbox o WHERE "
               "o.event_id=smtp_recipients.event_id AND o.target=smtp_recipients.target) AND NOT EXISTS "
               "(SELECT 1 FROM dead_letters d WHERE d.event_id=smtp_recipients.event_id AND "
               "d.target=smtp_recipients.target)");
    if (!prune.Run()) return db_.SqlError("pruning the recipients of ended smtp deliveries");
    return Ok();
  });
}

}  // namespace mailhook::store
