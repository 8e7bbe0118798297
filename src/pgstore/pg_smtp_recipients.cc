#include "pgstore/pg_smtp_recipients.h"

#include "pgstore/pg_statement.h"

namespace mailhook::pgstore {
namespace {

using store::RecipientState;
using util::Status;

// COLLATE "C": byte order, as SQLite's BINARY, whatever the database's locale.
constexpr PgStatement kRecipientsOf = {"smtp_recipients.of", R"sql(
    SELECT recipient, state, reply, updated_at FROM smtp_recipients WHERE target = $1 AND event_id = $2
    ORDER BY recipient COLLATE "C")sql"};
constexpr PgStatement kRecipientsRecord = {"smtp_recipients.record", R"sql(
    INSERT INTO smtp_recipients (target, event_id, recipient, state, reply, updated_at)
    VALUES ($1, $2, $3, $4, $5, $6::bigint)
    ON CONFLICT (target, event_id, recipient) DO UPDATE SET
      state = excluded.state, reply = excluded.reply, updated_at = excluded.updated_at)sql"};
constexpr PgStatement kRecipientsForget = {"smtp_recipients.forget",
                                           "DELETE FROM smtp_recipients WHERE target = $1 AND event_id = $2"};
// Both lookups use the UNIQUE (event_id, target) indexes.
constexpr PgStatement kRecipientsPrune = {"smtp_recipients.prune", R"sql(
    DELETE FROM smtp_recipients r
    WHERE NOT EXISTS (SELECT 1 FROM outbox o WHERE o.event_id = r.event_id AND o.target = r.target)
      AND NOT EXISTS (SELECT 1 FROM dead_letters d WHERE d.event_id = r.event_id AND d.target = r.target))sql"};

util::Result<RecipientState> ReadRecipient(const PgRows& rows, int i) {
  auto recipient = rows.Text(i, 0);
  auto state = rows.Text(i, 1);
  auto reply = rows.Text(i, 2);
  auto at = rows.Int64(i, 3);
  if (!recipient) return recipient.error();
  if (!state) return state.error();
  if (!reply) return reply.error();
  if (!at) return at.error();
  return RecipientState{std::string(*recipient),
                        *state == "sent" ? RecipientState::Status::kSent : RecipientState::Status::kRefused,
                        std::string(*reply), PgTime(*at)};
}

}  // namespace

util::Result<std::vector<RecipientState>> PgSmtpRecipients::ForEvent(const std::string& target,
                                                                     const std::string& event_id) {
  auto rows = ExecStatement(conn_, kRecipientsOf, {target, event_id});
  if (!rows) return rows.error();
  std::vector<RecipientState> out;
  for (int i = 0; i < rows->rows(); ++i) {
    auto r = ReadRecipient(*rows, i);
    if (!r) return r.error();
    out.push_back(std::move(*r));
  }
  return out;
}

Status PgSmtpRecipients::Record(const std::string& target, const std::string& event_id,
                                const std::vector<RecipientState>& states) {
  if (states.empty()) return util::Ok();
  return conn_.InTransaction([&]() -> Status {
    for (const RecipientState& r : states) {
      const char* state = r.status == RecipientState::Status::kSent ? "sent" : "refused";
      // A server's reply is not always UTF-8: see ValidUtf8.
      if (auto s = RunStatement(conn_, kRecipientsRecord,
                                {target, event_id, r.recipient, state, ValidUtf8(r.reply), PgMs(r.at)});
          !s) {
        return s;
      }
    }
    return util::Ok();
  });
}

Status PgSmtpRecipients::Forget(const std::string& target, const std::string& event_id) {
  return RunStatement(conn_, kRecipientsForget, {target, event_id});
}

Status PgSmtpRecipients::PruneEnded() { return RunStatement(conn_, kRecipientsPrune, {}); }

}  // namespace mailhook::pgstore
