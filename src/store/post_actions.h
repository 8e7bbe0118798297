#pragma once
/// PostActions: on_delivered actions (mark seen, add flags, move) waiting
/// until every target of their event succeeded; the folder's watcher does
/// them and then forgets them, so a restart neither repeats nor loses one.

#include <cstdint>
#include <string>
#include <vector>

#include "store/rows.h"
#include "util/result.h"

namespace mailhook::store {

/// The `post_actions` table.
class PostActions {
 public:
  virtual ~PostActions() = default;

  /// Records the actions (one per event; a second one for an event is
  /// ignored). Joins an open transaction (Store::CommitMessages).
  virtual util::Status Add(const std::vector<PostAction>& actions) = 0;
  /// Post-actions of this folder whose event has no outbox row and no dead
  /// letter left (every target succeeded), lowest UID first.
  virtual util::Result<std::vector<PostAction>> Ready(const std::string& account, const std::string& folder,
                                                      int limit) = 0;
  /// Forgets a post-action once done (or given up).
  virtual util::Status Finish(const std::string& event_id) = 0;
  virtual util::Result<int64_t> Count() = 0;

 protected:
  PostActions() = default;
  PostActions(const PostActions&) = delete;
  PostActions& operator=(const PostActions&) = delete;
};

}  // namespace mailhook::store
