#pragma once
/// ExportState: reads a SQLite state (mailhook.db) table by table into an
/// ExportSink, for `mailhook store migrate` (daemon/store_migrate_command.h),
/// whose sink writes the rows into another store (pgstore/pg_import.h).
///
/// Everything is read in one SQLite transaction that keeps writers out
/// (BEGIN IMMEDIATE), so the sink sees one consistent state; nothing is
/// written to the file. Large payloads (`bodies`) are handed over in pieces
/// of at most 1 MiB, one at a time, and rows one at a time: memory stays
/// bounded whatever the size of the state. Outbox leases are not exported
/// (the next owner starts fresh).

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "util/result.h"

namespace mailhook::store {

/// One column value. The store's columns are all INTEGER or TEXT, NOT NULL.
using ExportValue = std::variant<int64_t, std::string>;

/// Receives an exported state. Any Error returned stops the export, which
/// returns that Error.
class ExportSink {
 public:
  virtual ~ExportSink() = default;
  /// A table begins; each Row that follows has `columns`, in this order.
  /// Tables come in this order: watermarks, outbox, dead_letters, delivered,
  /// post_actions, attempts, fingerprints, smtp_sent, smtp_recipients.
  virtual util::Status BeginTable(const std::string& table, const std::vector<std::string>& columns) = 0;
  virtual util::Status Row(const std::vector<ExportValue>& values) = 0;
  /// After the tables: the payload (in `bodies`) of outbox or dead-letter row
  /// `id`, `size` bytes, given next as BodyPiece calls, in order.
  virtual util::Status BeginBody(int64_t id, uint64_t size) = 0;
  virtual util::Status BodyPiece(std::string_view piece) = 0;
  /// Last: the highest outbox id ever handed out (SQLite's AUTOINCREMENT
  /// counter, or a higher id of a row), so the receiver's ids go on above it.
  virtual util::Status End(int64_t last_outbox_id) = 0;

 protected:
  ExportSink() = default;
  ExportSink(const ExportSink&) = delete;
  ExportSink& operator=(const ExportSink&) = delete;
};

/// Reads the SQLite state at `db_path` (an existing mailhook.db) into `sink`.
/// Errors: store.export (no such file; a schema version other than this
/// mailhook's: the message says what to run), the file's SQLite errors
/// (store.busy when a process holds it for writing), or the sink's Error.
util::Status ExportState(const std::string& db_path, ExportSink& sink);

}  // namespace mailhook::store
