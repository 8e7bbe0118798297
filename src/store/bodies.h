#pragma once
/// Bodies: large event payloads (attachment contents), kept apart from their
/// outbox or dead-letter row under the row's id and written and read in
/// pieces, so a lease or retry UPDATE never rewrites them and no copy of a
/// payload is held twice. A row whose payload is here has payload ''.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "store/db.h"
#include "util/result.h"

namespace mailhook::store {

/// The `bodies` table.
class Bodies {
 public:
  explicit Bodies(Db& db) : db_(db) {}

  /// Stores the pieces (one after another, `size` bytes in all) as row `id`'s
  /// payload. Call inside a transaction, after inserting the row.
  util::Status Write(int64_t id, uint64_t size, const std::vector<std::shared_ptr<const std::string>>& pieces);
  /// Row `id`'s payload, read straight into one string of its size.
  util::Result<std::string> Read(int64_t id);
  /// Deletes row `id`'s payload (the row was delivered).
  util::Status Delete(int64_t id);
  /// Deletes the payloads of rows in neither the outbox nor the dead letters.
  util::Status DeleteOrphans();

 private:
  Db& db_;
};

}  // namespace mailhook::store
