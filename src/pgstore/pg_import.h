#pragma once
/// ImportState: writes an exported SQLite state (store/export.h) into the
/// PostgreSQL store behind a connection, for `mailhook store migrate`.
///
/// All or nothing: the schema is migrated (MigratePg), then the store's
/// tables are locked against other writers, found empty, and every row
/// copied in ONE transaction. Rows keep what makes them the same events:
/// outbox and dead-letter ids (the key of their payloads), event ids (the
/// webhook-id), attempts and due times; no outbox lease is copied. The
/// outbox's id sequence is set past the highest id the source handed out, so
/// a later insert never clashes with a copied row. Payloads arrive and are
/// written one piece (at most 1 MiB, one body_chunks row) at a time.
///
/// Texts PostgreSQL refuses (bytes that are not UTF-8, NUL) are repaired as
/// the table classes repair them (ValidUtf8; a fingerprint's key as
/// PgFingerprintKey), so a state SQLite accepted never fails to move.

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "pgstore/pg_connection.h"
#include "store/export.h"
#include "util/result.h"

namespace mailhook::pgstore {

/// What ImportState copied: (table, rows) in the export's order, then
/// ("bodies", payloads).
using ImportCounts = std::vector<std::pair<std::string, int64_t>>;

/// Migrates the schema, then runs `export_fn` with a sink that copies into
/// `conn` (not in a transaction) in one transaction. Failures: nothing is
/// written; store.migrate.not_empty (kNeedsOperator) when the store already
/// holds state (the message names the tables and what to do), else the
/// export's or the statement's Error.
util::Result<ImportCounts> ImportState(PgConnection& conn,
                                       const std::function<util::Status(store::ExportSink&)>& export_fn);

}  // namespace mailhook::pgstore
