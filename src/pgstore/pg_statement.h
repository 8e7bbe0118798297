#pragma once
/// The pieces every PostgreSQL table class (pg_watermarks.h, pg_outbox.h, ...)
/// shares: a named statement prepared on first use, the store's times as
/// bigint milliseconds (as in SQLite, so `store migrate` copies them as they
/// are), array parameters, and text cut to a length without splitting a
/// UTF-8 sequence (PostgreSQL refuses invalid UTF-8, SQLite stored it).

#include <chrono>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "pgstore/pg_connection.h"
#include "store/rows.h"
#include "util/result.h"

namespace mailhook::pgstore {

/// One statement of a table class: its name on the connection and its SQL.
struct PgStatement {
  const char* name;
  const char* sql;
};

/// Prepares `statement` on `conn` (a no-op once done there) and runs it.
util::Result<PgRows> ExecStatement(PgConnection& conn, const PgStatement& statement, std::span<const PgParam> params);
inline util::Result<PgRows> ExecStatement(PgConnection& conn, const PgStatement& statement,
                                          std::initializer_list<PgParam> params) {
  return ExecStatement(conn, statement, std::span<const PgParam>(params.begin(), params.size()));
}

/// Runs `statement` for its effect only.
util::Status RunStatement(PgConnection& conn, const PgStatement& statement, std::initializer_list<PgParam> params);

/// The first column of the first row as an integer (a count, a MIN): nullopt
/// when there is no row or it is NULL.
util::Result<std::optional<int64_t>> FirstInt(util::Result<PgRows> rows);

/// Milliseconds since the Unix epoch, the store's time columns.
inline int64_t PgMs(store::TimePoint t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}
inline store::TimePoint PgTime(int64_t ms) { return store::TimePoint(std::chrono::milliseconds(ms)); }

/// A PostgreSQL array literal of texts ({"a","b\"c"}), for `$n::text[]`.
std::string PgTextArray(std::span<const std::string> items);
/// A PostgreSQL array literal of integers ({1,2,3}), for `$n::bigint[]`.
std::string PgIntArray(std::span<const int64_t> ids);

/// `text` cut to at most `max` bytes, never inside a UTF-8 sequence.
std::string_view Utf8Prefix(std::string_view text, size_t max);

/// `text` as PostgreSQL text accepts it: each byte of an invalid UTF-8
/// sequence, and each NUL, replaced by U+FFFD. For free-form texts that
/// come from outside (an error's message holding a hook's stderr, an HTTP
/// reply): SQLite stored their bytes, PostgreSQL refuses the statement.
std::string ValidUtf8(std::string_view text);

/// Runs fn's statements against one snapshot of the database: in a
/// REPEATABLE READ, READ ONLY transaction of its own, or inside the open
/// transaction when there is one (then under its isolation: a caller's READ
/// COMMITTED transaction sees each statement's own snapshot, so such a
/// caller reads only rows it has locked). For reads in several statements
/// (a row, then its payload in `bodies`): without it, a row delivered in
/// between loses its payload and the read fails as if the store had lost it.
util::Status InReadSnapshot(PgConnection& conn, const std::function<util::Status()>& fn);

}  // namespace mailhook::pgstore
