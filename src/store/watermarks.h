#pragma once
/// Watermarks: the IMAP position per (account, folder). The watermark only
/// moves in the same transaction that makes the events below it durable
/// (Store::CommitMessages), so a crash replays and never skips.

#include <optional>
#include <string>

#include "store/db.h"
#include "store/rows.h"
#include "util/result.h"

namespace mailhook::store {

/// The `watermarks` table.
class Watermarks {
 public:
  explicit Watermarks(Db& db) : db_(db) {}

  /// nullopt when the folder was never seen.
  util::Result<std::optional<Watermark>> Get(const std::string& account, const std::string& folder);
  /// Sets (or replaces) the folder's watermark; joins an open transaction.
  util::Status Set(const std::string& account, const std::string& folder, Watermark mark);

 private:
  Db& db_;
};

}  // namespace mailhook::store
