#pragma once
/// PgBodies: Bodies (store/bodies.h) over one PgConnection: a payload's size
/// in `bodies` and its bytes in `body_chunks`, pieces of at most 1 MiB (one
/// bytea parameter each, never one value of the whole payload: no escaping
/// copy, no 1 GiB field limit), read back one chunk per query in one
/// snapshot (InReadSnapshot), so a read holds the payload plus one chunk.
/// Not thread-safe (the connection is not).

#include "pgstore/pg_connection.h"
#include "store/bodies.h"

namespace mailhook::pgstore {

/// The PostgreSQL Bodies.
class PgBodies final : public store::Bodies {
 public:
  /// `conn` must outlive this and be migrated (MigratePg).
  explicit PgBodies(PgConnection& conn) : conn_(conn) {}

  util::Status Write(int64_t id, uint64_t size, const std::vector<std::shared_ptr<const std::string>>& pieces) override;
  util::Result<std::string> Read(int64_t id) override;
  util::Status Delete(int64_t id) override;
  util::Status DeleteOrphans() override;

 private:
  PgConnection& conn_;
};

}  // namespace mailhook::pgstore
