#pragma once
/// PgPostActions: PostActions (store/post_actions.h) over one PgConnection,
/// with its SQL against the schema of pg_schema.h. Not thread-safe (the
/// connection is not).

#include "pgstore/pg_connection.h"
#include "store/post_actions.h"

namespace mailhook::pgstore {

/// The PostgreSQL PostActions.
class PgPostActions final : public store::PostActions {
 public:
  /// `conn` must outlive this and be migrated (MigratePg).
  explicit PgPostActions(PgConnection& conn) : conn_(conn) {}

  util::Status Add(const std::vector<store::PostAction>& actions) override;
  util::Result<std::vector<store::PostAction>> Ready(const std::string& account, const std::string& folder,
                                                     int limit) override;
  util::Status Finish(const std::string& event_id) override;
  util::Result<int64_t> Count() override;

 private:
  PgConnection& conn_;
};

}  // namespace mailhook::pgstore
