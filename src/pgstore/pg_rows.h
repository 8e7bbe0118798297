#pragma once
/// PgRows: the rows of one statement (an owned PGresult), read in binary
/// format. Readers name the SQL type they expect: Int64 (smallint, integer,
/// bigint), Text (text, varchar, char, name), Bytes (bytea, or any text
/// type), Bool. Anything else (numeric, timestamptz, uuid) is cast in the
/// SQL (`::bigint`, `::text`): a reader of the wrong type returns an Error
/// naming the column, never a misread value. Values read by Text/Bytes are
/// views into the result, valid while the PgRows lives.

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>

#include "util/result.h"

struct pg_result;  // libpq's PGresult; only src/pgstore's .cc files see libpq

namespace mailhook::pgstore {

/// Frees a PGresult (PQclear): lets unique_ptr own one.
struct PgResultDeleter {
  void operator()(pg_result* result) const;
};
using PgResultPtr = std::unique_ptr<pg_result, PgResultDeleter>;

/// The result of one successful statement. Move-only.
class PgRows {
 public:
  explicit PgRows(PgResultPtr result) : result_(std::move(result)) {}

  int rows() const;
  int columns() const;
  /// Rows changed by an INSERT/UPDATE/DELETE (PQcmdTuples); 0 for others.
  int64_t affected() const;
  /// The command tag ("INSERT 0 1", "COMMIT", "ROLLBACK"), PQcmdStatus.
  std::string_view command() const;

  bool IsNull(int row, int column) const;
  /// A smallint, integer or bigint column. NULL is an Error (IsNull first).
  util::Result<int64_t> Int64(int row, int column) const;
  util::Result<bool> Bool(int row, int column) const;
  /// A text-typed column (text, varchar, char, name): its UTF-8 bytes.
  util::Result<std::string_view> Text(int row, int column) const;
  /// A bytea (or text-typed) column: its bytes, without an escaping copy.
  util::Result<std::string_view> Bytes(int row, int column) const;

 private:
  /// kOk, or the Error naming the column, when (row, column) is out of range
  /// or NULL or of none of `type_oids`.
  util::Status Check(int row, int column, std::initializer_list<unsigned> type_oids, const char* reader) const;

  PgResultPtr result_;
};

}  // namespace mailhook::pgstore
