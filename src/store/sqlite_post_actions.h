#pragma once
/// SqlitePostActions: PostActions (store/post_actions.h) over one SQLite connection (Db), with
/// its SQL; a second backend implements PostActions with its own.

#include "store/db.h"
#include "store/post_actions.h"

namespace mailhook::store {

/// The SQLite PostActions.
class SqlitePostActions final : public PostActions {
 public:
  explicit SqlitePostActions(Db& db) : db_(db) {}

  util::Status Add(const std::vector<PostAction>& actions) override;
  util::Result<std::vector<PostAction>> Ready(const std::string& account, const std::string& folder,
                                              int limit) override;
  util::Status Finish(const std::string& event_id) override;
  util::Result<int64_t> Count() override;

 private:
  Db& db_;
};

}  // namespace mailhook::store
