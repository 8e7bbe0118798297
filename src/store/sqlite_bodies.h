#pragma once
/// SqliteBodies: Bodies (store/bodies.h) over one SQLite connection (Db), with
/// its SQL; a second backend implements Bodies with its own.

#include "store/bodies.h"
#include "store/db.h"

namespace mailhook::store {

/// The SQLite Bodies.
class SqliteBodies final : public Bodies {
 public:
  explicit SqliteBodies(Db& db) : db_(db) {}

  util::Status Write(int64_t id, uint64_t size, const std::vector<std::shared_ptr<const std::string>>& pieces) override;
  util::Result<std::string> Read(int64_t id) override;
  util::Status Delete(int64_t id) override;
  util::Status DeleteOrphans() override;

 private:
  Db& db_;
};

}  // namespace mailhook::store
