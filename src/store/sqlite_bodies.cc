#include "store/sqlite_bodies.h"

#include <algorithm>
#include <climits>

#include "store/statement.h"

namespace mailhook::store {

using util::Error;
using util::Ok;
using util::RetryClass;
using util::Status;

Status SqliteBodies::Write(int64_t id, uint64_t size, const std::vector<std::shared_ptr<const std::string>>& pieces) {
  if (size > static_cast<uint64_t>(INT32_MAX)) {
    return StoreError(
        "store.too_large", RetryClass::kNeedsOperator,
        "an event of " + std::to_string(size >> 20) + " MiB is over SQLite's 2 GiB limit; lower max_attachment_bytes");
  }
  return db_.InTransaction([&]() -> Status {
    Stmt ins(db_, "INSERT OR REPLACE INTO bodies (id, body) VALUES (?, ?)");
    ins.Bind(1, id).BindZeroBlob(2, size);
    if (!ins.Run()) return db_.SqlError("reserving the payload of row " + std::to_string(id));
    sqlite3_blob* blob = nullptr;
    int rc = sqlite3_blob_open(db_.handle(), "main", "bodies", "body", id, 1, &blob);
    int64_t at = 0;
    for (auto it = pieces.begin(); rc == SQLITE_OK && it != pieces.end(); ++it) {
      const std::string& piece = **it;
      // sqlite3_blob_write takes an int: large pieces go in 1 MiB steps.
      constexpr size_t kStep = 1 << 20;
      for (size_t done = 0; done < piece.size() && rc == SQLITE_OK; done += kStep) {
        int n = static_cast<int>(std::min(kStep, piece.size() - done));
        rc = sqlite3_blob_write(blob, piece.data() + done, n, static_cast<int>(at));
        at += n;
      }
    }
    sqlite3_blob_close(blob);
    if (rc != SQLITE_OK) return db_.SqlError("writing the payload of row " + std::to_string(id));
    return Ok();
  });
}

util::Result<std::string> SqliteBodies::Read(int64_t id) {
  // Column access would hold the payload twice (SQLite's copy and ours).
  sqlite3_blob* blob = nullptr;
  int rc = sqlite3_blob_open(db_.handle(), "main", "bodies", "body", id, 0, &blob);
  std::string out;
  if (rc == SQLITE_OK) {
    const int size = sqlite3_blob_bytes(blob);
    out.resize(static_cast<size_t>(size));
    constexpr int kPiece = 1 << 20;
    for (int at = 0; at < size && rc == SQLITE_OK; at += kPiece) {
      rc = sqlite3_blob_read(blob, out.data() + at, std::min(kPiece, size - at), at);
    }
  }
  sqlite3_blob_close(blob);
  if (rc != SQLITE_OK) {
    return StoreError("store.sqlite", RetryClass::kBackoff,
                      "reading the payload of row " + std::to_string(id) + ": " + sqlite3_errmsg(db_.handle()) +
                          "; check the state file (PRAGMA integrity_check on mailhook.db)");
  }
  return out;
}

Status SqliteBodies::Delete(int64_t id) {
  return RunKeyed(db_, "DELETE FROM bodies WHERE id=?", id, "deleting the payload of row " + std::to_string(id));
}

Status SqliteBodies::DeleteOrphans() {
  return db_.InTransaction([&]() -> Status {
    Stmt del(db_,
             "DELETE FROM bodies WHERE id NOT IN (SELECT id FROM outbox) "
             "AND id NOT IN (SELECT id FROM dead_letters)");
    if (!del.Run()) return db_.SqlError("deleting payloads of removed rows");
    return Ok();
  });
}

}  // namespace mailhook::store
