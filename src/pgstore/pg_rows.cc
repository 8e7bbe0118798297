#include "pgstore/pg_rows.h"

#include <charconv>
#include <cstring>

#include "pgstore/libpq.h"

namespace mailhook::pgstore {
namespace {

// Type OIDs from PostgreSQL's catalog (pg_type.dat): stable across versions.
constexpr unsigned kBoolOid = 16;
constexpr unsigned kByteaOid = 17;
constexpr unsigned kNameOid = 19;
constexpr unsigned kInt8Oid = 20;
constexpr unsigned kInt2Oid = 21;
constexpr unsigned kInt4Oid = 23;
constexpr unsigned kTextOid = 25;
constexpr unsigned kBpcharOid = 1042;
constexpr unsigned kVarcharOid = 1043;

// Network byte order (binary format) to a signed integer of `size` bytes.
int64_t BigEndian(const char* data, int size) {
  uint64_t v = 0;
  for (int i = 0; i < size; ++i) v = (v << 8) | static_cast<unsigned char>(data[i]);
  // Sign-extend the narrower types.
  const int shift = 64 - 8 * size;
  return shift == 0 ? static_cast<int64_t>(v) : static_cast<int64_t>(v << shift) >> shift;
}

util::Error ReadError(std::string message) {
  return util::Error(util::ErrorKind::kStore, "store.pg.sql", util::RetryClass::kNeedsOperator,
                     std::move(message) + "; a bug in mailhook's SQL: report it with this message");
}

}  // namespace

void PgResultDeleter::operator()(pg_result* result) const { Pq().PQclear(result); }

int PgRows::rows() const { return Pq().PQntuples(result_.get()); }
int PgRows::columns() const { return Pq().PQnfields(result_.get()); }

int64_t PgRows::affected() const {
  const char* text = Pq().PQcmdTuples(result_.get());
  int64_t n = 0;
  std::from_chars(text, text + std::strlen(text), n);
  return n;
}

std::string_view PgRows::command() const { return Pq().PQcmdStatus(result_.get()); }

bool PgRows::IsNull(int row, int column) const { return Pq().PQgetisnull(result_.get(), row, column) == 1; }

util::Status PgRows::Check(int row, int column, std::initializer_list<unsigned> type_oids, const char* reader) const {
  if (row < 0 || row >= rows() || column < 0 || column >= columns()) {
    return ReadError(std::string(reader) + ": no cell (" + std::to_string(row) + ", " + std::to_string(column) +
                     ") in a result of " + std::to_string(rows()) + " rows and " + std::to_string(columns()) +
                     " columns");
  }
  const char* name = Pq().PQfname(result_.get(), column);
  if (IsNull(row, column)) return ReadError(std::string(reader) + ": column \"" + name + "\" is NULL");
  const unsigned type = Pq().PQftype(result_.get(), column);
  for (unsigned t : type_oids) {
    if (t == type) return util::Ok();
  }
  return ReadError(std::string(reader) + ": column \"" + name + "\" has type oid " + std::to_string(type) +
                   ", which this reader does not read: cast it in the SQL");
}

util::Result<int64_t> PgRows::Int64(int row, int column) const {
  if (auto s = Check(row, column, {kInt2Oid, kInt4Oid, kInt8Oid}, "Int64"); !s) return s.error();
  const int size = Pq().PQgetlength(result_.get(), row, column);
  if (size != 2 && size != 4 && size != 8) return ReadError("Int64: an integer of " + std::to_string(size) + " bytes");
  return BigEndian(Pq().PQgetvalue(result_.get(), row, column), size);
}

util::Result<bool> PgRows::Bool(int row, int column) const {
  if (auto s = Check(row, column, {kBoolOid}, "Bool"); !s) return s.error();
  return Pq().PQgetlength(result_.get(), row, column) == 1 && Pq().PQgetvalue(result_.get(), row, column)[0] != 0;
}

util::Result<std::string_view> PgRows::Text(int row, int column) const {
  // The binary format of the text types is their bytes, as in text format.
  if (auto s = Check(row, column, {kTextOid, kVarcharOid, kBpcharOid, kNameOid}, "Text"); !s) return s.error();
  return std::string_view(Pq().PQgetvalue(result_.get(), row, column), Pq().PQgetlength(result_.get(), row, column));
}

util::Result<std::string_view> PgRows::Bytes(int row, int column) const {
  if (auto s = Check(row, column, {kByteaOid, kTextOid, kVarcharOid, kBpcharOid, kNameOid}, "Bytes"); !s) {
    return s.error();
  }
  return std::string_view(Pq().PQgetvalue(result_.get(), row, column), Pq().PQgetlength(result_.get(), row, column));
}

}  // namespace mailhook::pgstore
