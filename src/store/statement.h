#pragma once
/// Stmt: a prepared SQLite statement of a Db, taken from the connection's
/// StatementCache and given back (reset, bindings cleared) on destruction.
/// Private to src/store (it includes <sqlite3.h>, which no header outside
/// this area may).

#include <sqlite3.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "store/db.h"
#include "store/rows.h"
#include "store/statement_cache.h"
#include "util/result.h"

namespace mailhook::store {

/// Times are stored as milliseconds since the Unix epoch (UTC).
inline int64_t ToMs(TimePoint t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}
inline TimePoint FromMs(int64_t ms) { return TimePoint(std::chrono::milliseconds(ms)); }

/// One prepared statement. A failed prepare, bind or step leaves ok() false;
/// the caller turns that into an Error with Db::SqlError while the Stmt is
/// alive (giving it back resets it). Prepared once per connection and SQL
/// text: see StatementCache.
class Stmt {
 public:
  Stmt(Db& db, std::string_view sql) : cache_(&db.statements()) { stmt_ = cache_->Take(sql, &rc_); }
  Stmt(Db& db, const char* sql) : Stmt(db, std::string_view(sql)) {}
  Stmt(Db& db, const std::string& sql) : Stmt(db, std::string_view(sql)) {}
  ~Stmt() { cache_->Give(stmt_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  bool ok() const { return rc_ == SQLITE_OK || rc_ == SQLITE_ROW || rc_ == SQLITE_DONE; }
  Stmt& Bind(int i, int64_t v) {
    Check(sqlite3_bind_int64(stmt_, i, v));
    return *this;
  }
  Stmt& Bind(int i, const std::string& v) {
    Check(sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT));
    return *this;
  }
  /// Binds without a copy (for event payloads, which may be large): `v`
  /// must stay alive and unchanged until the statement is stepped and reset.
  Stmt& BindView(int i, std::string_view v) {
    Check(sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC));
    return *this;
  }
  /// Reserves `size` bytes filled in later through sqlite3_blob_write; as the
  /// last column of a row it is never built in memory.
  Stmt& BindZeroBlob(int i, uint64_t size) {
    Check(sqlite3_bind_zeroblob64(stmt_, i, size));
    return *this;
  }
  bool IsNull(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }
  /// The column's value is stored as an integer (not text, blob or NULL).
  bool IsInt(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_INTEGER; }
  /// SQLITE_ROW -> true, SQLITE_DONE -> false; anything else leaves ok() false.
  bool Step() {
    if (!ok()) return false;
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    rc_ = rc;
    return false;
  }
  /// Steps a statement that returns no row; false when it failed.
  bool Run() {
    Step();
    return ok();
  }
  void Reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  int64_t Int(int col) const { return sqlite3_column_int64(stmt_, col); }
  std::string Text(int col) const {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, col));
    return p ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(stmt_, col))) : "";
  }

 private:
  void Check(int rc) {
    if (rc != SQLITE_OK && ok()) rc_ = rc;
  }
  StatementCache* cache_;
  sqlite3_stmt* stmt_ = nullptr;
  int rc_ = SQLITE_OK;
};

/// The one integer a query such as "SELECT COUNT(*) FROM t" returns.
inline util::Result<int64_t> QueryInt(Db& db, const char* sql, const std::string& what) {
  Stmt s(db, sql);
  if (!s.Step()) return db.SqlError(what);
  return s.Int(0);
}

/// Runs `sql` with `key` bound to its one parameter, in a transaction of its
/// own (or the caller's); `what` names it in errors.
template <typename Key>
util::Status RunKeyed(Db& db, const char* sql, const Key& key, const std::string& what) {
  return db.InTransaction([&]() -> util::Status {
    Stmt s(db, sql);
    s.Bind(1, key);
    if (!s.Run()) return db.SqlError(what);
    return util::Ok();
  });
}

}  // namespace mailhook::store
