#include "pgstore/pg_post_actions.h"

#include "pgstore/pg_statement.h"

namespace mailhook::pgstore {
namespace {

using util::Status;

// A second action for an event is ignored (SQLite's INSERT OR IGNORE).
constexpr PgStatement kPostAdd = {"post_actions.add", R"sql(
    INSERT INTO post_actions (event_id, account, folder, uidvalidity, uid, created_at)
    VALUES ($1, $2, $3, $4::bigint, $5::bigint, $6::bigint) ON CONFLICT DO NOTHING)sql"};
// Ready = no outbox row and no dead letter left for the event: every target
// succeeded. A dead letter holds the action until it is replayed and
// delivered (or dropped, which releases it).
constexpr PgStatement kPostReady = {"post_actions.ready", R"sql(
    SELECT event_id, account, folder, uidvalidity, uid FROM post_actions p
    WHERE account = $1 AND folder = $2
      AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.event_id = p.event_id)
      AND NOT EXISTS (SELECT 1 FROM dead_letters d WHERE d.event_id = p.event_id)
    ORDER BY uid LIMIT $3::bigint)sql"};
constexpr PgStatement kPostFinish = {"post_actions.finish", "DELETE FROM post_actions WHERE event_id = $1"};
constexpr PgStatement kPostCount = {"post_actions.count", "SELECT count(*) FROM post_actions"};

util::Result<store::PostAction> ReadPostAction(const PgRows& rows, int i) {
  auto event_id = rows.Text(i, 0);
  auto account = rows.Text(i, 1);
  auto folder = rows.Text(i, 2);
  auto uidvalidity = rows.Int64(i, 3);
  auto uid = rows.Int64(i, 4);
  if (!event_id) return event_id.error();
  if (!account) return account.error();
  if (!folder) return folder.error();
  if (!uidvalidity) return uidvalidity.error();
  if (!uid) return uid.error();
  return store::PostAction{std::string(*event_id), std::string(*account), std::string(*folder),
                           static_cast<uint32_t>(*uidvalidity), static_cast<uint32_t>(*uid)};
}

}  // namespace

Status PgPostActions::Add(const std::vector<store::PostAction>& actions) {
  return conn_.InTransaction([&]() -> Status {
    const int64_t now = PgMs(store::Clock::now());
    for (const auto& p : actions) {
      if (auto s = RunStatement(conn_, kPostAdd, {p.event_id, p.account, p.folder, p.uidvalidity, p.uid, now}); !s) {
        return s;
      }
    }
    return util::Ok();
  });
}

util::Result<std::vector<store::PostAction>> PgPostActions::Ready(const std::string& account, const std::string& folder,
                                                                  int limit) {
  auto rows = ExecStatement(conn_, kPostReady, {account, folder, limit});
  if (!rows) return rows.error();
  std::vector<store::PostAction> out;
  for (int i = 0; i < rows->rows(); ++i) {
    auto p = ReadPostAction(*rows, i);
    if (!p) return p.error();
    out.push_back(std::move(*p));
  }
  return out;
}

Status PgPostActions::Finish(const std::string& event_id) { return RunStatement(conn_, kPostFinish, {event_id}); }

util::Result<int64_t> PgPostActions::Count() {
  auto n = FirstInt(ExecStatement(conn_, kPostCount, {}));
  if (!n) return n.error();
  return n->value_or(0);
}

}  // namespace mailhook::pgstore
