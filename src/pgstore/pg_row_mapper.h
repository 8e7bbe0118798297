#pragma once
/// The one mapping from a PostgreSQL outbox or dead-letter row to its values
/// (the twin of store/row_mapper.h): both tables share their columns, so
/// every query that hands out rows selects PgRowColumns(...) and reads them
/// with MapPgRows.

#include <string>
#include <vector>

#include "pgstore/pg_rows.h"
#include "store/bodies.h"
#include "store/rows.h"
#include "util/result.h"

namespace mailhook::pgstore {

/// "id, event_id, ..., last_error[, payload]" in the order MapPgRows reads;
/// `at_column` is the table's own time column (next_attempt_at, failed_at).
std::string PgRowColumns(const char* at_column, bool payload);

/// Every row of `rows` (a query over PgRowColumns(..., true)); an empty
/// payload means the event is in `bodies` and is read from there.
util::Result<std::vector<store::Delivery>> MapDeliveries(const PgRows& rows, store::Bodies& bodies);
util::Result<std::vector<store::DeadLetter>> MapDeadLetters(const PgRows& rows, store::Bodies& bodies);
/// Every row of `rows` (a query over PgRowColumns(..., false)).
util::Result<std::vector<store::DeadLetterInfo>> MapDeadLetterInfos(const PgRows& rows);

}  // namespace mailhook::pgstore
