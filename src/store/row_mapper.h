#pragma once
/// The one mapping from an outbox or dead-letter row to its values. Private
/// to src/store (uses Stmt). Both tables share their columns (a dead letter
/// keeps its outbox id and shape), so every query that hands out rows selects
/// RowColumns(...) and reads them with MapRow.

#include <cstdint>
#include <string>
#include <vector>

#include "store/bodies.h"
#include "store/db.h"
#include "store/rows.h"
#include "store/statement.h"
#include "util/result.h"

namespace mailhook::store {

/// The fields every outbox and dead-letter row has; `at` is the table's own
/// time (next_attempt_at or failed_at).
struct RowFields {
  int64_t id = 0;
  OutboxItem item;  ///< payload left empty unless MapRow was asked for it
  int attempts = 0;
  TimePoint created_at;
  TimePoint at;
  std::string last_error;
};

/// "id, event_id, ..., last_error[, payload]" in the order MapRow reads;
/// `at_column` is the table's own time column. Without `payload` the query
/// never reads a payload (a listing of large events stays small).
std::string RowColumns(const char* at_column, bool payload);

/// Reads the current row of a query over RowColumns(..., payload). With
/// `payload`, an empty payload column means the event is in `bodies`
/// (events are never empty) and is read from there.
util::Result<RowFields> MapRow(const Stmt& s, bool payload, Bodies* bodies);

/// The row as each table hands it out.
Delivery ToDelivery(RowFields f);
DeadLetter ToDeadLetter(RowFields f);
DeadLetterInfo ToDeadLetterInfo(RowFields f);

/// Every row of `s` (a query over RowColumns(..., payload)) through MapRow
/// and `to`; `what` names the query in errors ("listing outbox").
template <typename Row>
util::Result<std::vector<Row>> MapRows(Db& db, Stmt& s, bool payload, Bodies* bodies, Row (*to)(RowFields),
                                       const std::string& what) {
  std::vector<Row> out;
  while (s.Step()) {
    util::Result<RowFields> row = MapRow(s, payload, bodies);
    if (!row.ok()) return row.error();
    out.push_back(to(std::move(*row)));
  }
  if (!s.ok()) return db.SqlError(what);
  return out;
}

}  // namespace mailhook::store
