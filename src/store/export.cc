#include "store/export.h"

#include <algorithm>
#include <filesystem>
#include <memory>

#include "store/schema.h"
#include "store/statement.h"

namespace mailhook::store {
namespace {

using util::Ok;
using util::RetryClass;
using util::Status;

/// One exported table: its name and the columns read (schema version 7).
struct ExportedTable {
  const char* name;
  std::vector<std::string> columns;
};

// The state at schema version 7 (schema.cc), every column but the outbox's
// lease_until: a lease is the exporting process's, and the importer starts
// without any. Keep in step with schema.cc (SchemaVersion is checked).
const std::vector<ExportedTable>& ExportedTables() {
  static const std::vector<ExportedTable> tables = {
      {"watermarks", {"account", "folder", "uidvalidity", "last_uid", "updated_at", "fp_floor"}},
      {"outbox",
       {"id", "event_id", "target", "account", "folder", "uidvalidity", "uid", "payload", "attempts", "created_at",
        "next_attempt_at", "last_error"}},
      {"dead_letters",
       {"id", "event_id", "target", "account", "folder", "uidvalidity", "uid", "payload", "attempts", "created_at",
        "failed_at", "last_error"}},
      {"delivered", {"event_id", "target", "delivered_at"}},
      {"post_actions", {"event_id", "account", "folder", "uidvalidity", "uid", "created_at"}},
      {"attempts", {"account", "folder", "uidvalidity", "uid", "count", "last_code", "last_error", "updated_at"}},
      {"fingerprints", {"account", "folder", "uidvalidity", "uid", "message_key", "size"}},
      {"smtp_sent", {"target", "sender", "message_id", "event_id", "sent_at"}},
      {"smtp_recipients", {"target", "event_id", "recipient", "state", "reply", "updated_at"}},
  };
  return tables;
}

util::Error ExportError(const std::string& message) {
  return StoreError("store.export", RetryClass::kNeedsOperator, message);
}

Status ExportTable(Db& db, const ExportedTable& table, ExportSink& sink) {
  if (auto s = sink.BeginTable(table.name, table.columns); !s) return s;
  std::string sql = "SELECT ";
  for (size_t i = 0; i < table.columns.size(); ++i) sql += (i ? ", " : "") + table.columns[i];
  sql += std::string(" FROM ") + table.name + " ORDER BY rowid";
  Stmt rows(db, sql);
  std::vector<ExportValue> values(table.columns.size());
  while (rows.Step()) {
    for (int c = 0; c < static_cast<int>(values.size()); ++c) {
      if (rows.IsInt(c)) {
        values[c] = rows.Int(c);
      } else {
        values[c] = rows.Text(c);
      }
    }
    if (auto s = sink.Row(values); !s) return s;
  }
  if (!rows.ok()) return db.SqlError(std::string("reading ") + table.name);
  return Ok();
}

// The payloads of rows still in the outbox or the dead letters (a payload
// whose row is gone is left behind), read through the blob API in 1 MiB
// pieces: one piece in memory at a time.
Status ExportBodies(Db& db, ExportSink& sink) {
  Stmt ids(db,
           "SELECT id FROM bodies WHERE id IN (SELECT id FROM outbox) OR id IN (SELECT id FROM dead_letters) "
           "ORDER BY id");
  std::string piece;
  while (ids.Step()) {
    const int64_t id = ids.Int(0);
    sqlite3_blob* raw = nullptr;
    int rc = sqlite3_blob_open(db.handle(), "main", "bodies", "body", id, 0, &raw);
    std::unique_ptr<sqlite3_blob, int (*)(sqlite3_blob*)> blob(raw, &sqlite3_blob_close);
    if (rc != SQLITE_OK) return db.SqlError("reading the payload of row " + std::to_string(id));
    const int size = sqlite3_blob_bytes(blob.get());
    if (auto s = sink.BeginBody(id, static_cast<uint64_t>(size)); !s) return s;
    constexpr int kPiece = 1 << 20;
    for (int at = 0; at < size; at += kPiece) {
      piece.resize(static_cast<size_t>(std::min(kPiece, size - at)));
      if (sqlite3_blob_read(blob.get(), piece.data(), static_cast<int>(piece.size()), at) != SQLITE_OK) {
        return db.SqlError("reading the payload of row " + std::to_string(id));
      }
      if (auto s = sink.BodyPiece(piece); !s) return s;
    }
  }
  if (!ids.ok()) return db.SqlError("listing the payloads");
  return Ok();
}

// The highest id the outbox handed out: AUTOINCREMENT's counter, or a row's
// id when higher (a dead letter keeps its outbox id).
util::Result<int64_t> LastOutboxId(Db& db) {
  return QueryInt(db,
                  "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'outbox'), 0), "
                  "coalesce((SELECT max(id) FROM outbox), 0), coalesce((SELECT max(id) FROM dead_letters), 0))",
                  "reading the last outbox id");
}

Status ExportAll(Db& db, ExportSink& sink) {
  auto version = QueryInt(db, "PRAGMA user_version", "reading the schema version");
  if (!version.ok()) return version.error();
  if (*version != SchemaVersion()) {
    return ExportError(db.path() + " has schema version " + std::to_string(*version) + ", this mailhook's is " +
                       std::to_string(SchemaVersion()) +
                       ": migrate it with the mailhook that runs on it (a newer file), or start this mailhook's "
                       "daemon on it once and stop it (it upgrades an older file), then migrate again");
  }
  for (const auto& table : ExportedTables()) {
    if (auto s = ExportTable(db, table, sink); !s) return s;
  }
  if (auto s = ExportBodies(db, sink); !s) return s;
  auto last = LastOutboxId(db);
  if (!last.ok()) return last.error();
  return sink.End(*last);
}

}  // namespace

Status ExportState(const std::string& db_path, ExportSink& sink) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(db_path, ec)) {
    return ExportError("there is no SQLite state at " + db_path +
                       ": name the daemon's state_dir, its mailhook.db, or sqlite:PATH");
  }
  auto db = Db::Open(db_path);
  if (!db.ok()) return db.error();
  // BEGIN IMMEDIATE: one snapshot of every table, and no writer meanwhile.
  // Nothing is written, so the COMMIT at the end leaves the file as it was.
  return (*db)->InTransaction([&]() -> Status { return ExportAll(**db, sink); });
}

}  // namespace mailhook::store
