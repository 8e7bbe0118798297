#include "store/sqlite_post_actions.h"

#include "store/statement.h"

namespace mailhook::store {

using util::Ok;
using util::Status;

Status SqlitePostActions::Add(const std::vector<PostAction>& actions) {
  return db_.InTransaction([&]() -> Status {
    Stmt post(db_,
              "INSERT OR IGNORE INTO post_actions (event_id, account, folder, uidvalidity, uid, "
              "created_at) VALUES (?,?,?,?,?,?)");
    const int64_t now = ToMs(Clock::now());
    for (const auto& p : actions) {
      post.Bind(1, p.event_id).Bind(2, p.account).Bind(3, p.folder).Bind(4, p.uidvalidity);
      post.Bind(5, p.uid).Bind(6, now);
      if (!post.Run()) return db_.SqlError("recording post-action for " + p.event_id);
      post.Reset();
    }
    return Ok();
  });
}

util::Result<std::vector<PostAction>> SqlitePostActions::Ready(const std::string& account, const std::string& folder,
                                                               int limit) {
  // Ready = no outbox row and no dead letter left for the event: every
  // target succeeded. A dead letter holds the action until it is replayed
  // and delivered (or dropped, which releases it).
  Stmt sel(db_,
           "SELECT event_id, account, folder, uidvalidity, uid FROM post_actions p "
           "WHERE account=?1 AND folder=?2 "
           "AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.event_id=p.event_id) "
           "AND NOT EXISTS (SELECT 1 FROM dead_letters d WHERE d.event_id=p.event_id) "
           "ORDER BY uid LIMIT ?3");
  sel.Bind(1, account).Bind(2, folder).Bind(3, limit);
  std::vector<PostAction> out;
  while (sel.Step()) {
    out.push_back(PostAction{sel.Text(0), sel.Text(1), sel.Text(2), static_cast<uint32_t>(sel.Int(3)),
                             static_cast<uint32_t>(sel.Int(4))});
  }
  if (!sel.ok()) return db_.SqlError("reading post-actions");
  return out;
}

Status SqlitePostActions::Finish(const std::string& event_id) {
  // Through the one write path like every write: as an autocommit DELETE it
  // would start as a read and could fail at once with SQLITE_BUSY instead
  // of waiting its turn behind another writer.
  return RunKeyed(db_, "DELETE FROM post_actions WHERE event_id=?", event_id, "finishing post-action " + event_id);
}

util::Result<int64_t> SqlitePostActions::Count() {
  return QueryInt(db_, "SELECT COUNT(*) FROM post_actions", "counting post-actions");
}

}  // namespace mailhook::store
