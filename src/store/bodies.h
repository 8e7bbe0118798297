#pragma once
/// Bodies: large event payloads (attachment contents), kept apart from their
/// outbox or dead-letter row under the row's id and written and read in
/// pieces, so a lease or retry UPDATE never rewrites them and no copy of a
/// payload is held twice. A row whose payload is here has payload ''.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "util/result.h"

namespace mailhook::store {

/// The `bodies` table.
class Bodies {
 public:
  virtual ~Bodies() = default;

  /// Stores the pieces (one after another, `size` bytes in all) as row `id`'s
  /// payload. Call inside a transaction, after inserting the row.
  virtual util::Status Write(int64_t id, uint64_t size,
                             const std::vector<std::shared_ptr<const std::string>>& pieces) = 0;
  /// Row `id`'s payload, read straight into one string of its size.
  virtual util::Result<std::string> Read(int64_t id) = 0;
  /// Deletes row `id`'s payload (the row was delivered).
  virtual util::Status Delete(int64_t id) = 0;
  /// Deletes the payloads of rows in neither the outbox nor the dead letters.
  virtual util::Status DeleteOrphans() = 0;

 protected:
  Bodies() = default;
  Bodies(const Bodies&) = delete;
  Bodies& operator=(const Bodies&) = delete;
};

}  // namespace mailhook::store
