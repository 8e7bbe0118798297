#pragma once
/// PostActions: on_delivered actions (mark seen, add flags, move) waiting
/// until every target of their event succeeded; the folder's watcher does
/// them and then forgets them, so a restart neither repeats nor loses one.

#include <cstdint>
#include <string>
#include <vector>

#include "store/db.h"
#include "store/rows.h"
#include "util/result.h"

namespace mailhook::store {

/// The `post_actions` table.
class PostActions {
 public:
  explicit PostActions(Db& db) : db_(db) {}

  /// Records the actions (one per event; a second one for an event is
  /// ignored). Joins an open transaction (Store::CommitMessages).
  util::Status Add(const std::vector<PostAction>& actions);
  /// Post-actions of this folder whose event has no outbox row and no dead
  /// letter left (every target succeeded), lowest UID first.
  util::Result<std::vector<PostAction>> Ready(const std::string& account, const std::string& folder, int limit);
  /// Forgets a post-action once done (or given up).
  util::Status Finish(const std::string& event_id);
  util::Result<int64_t> Count();

 private:
  Db& db_;
};

}  // namespace mailhook::store
