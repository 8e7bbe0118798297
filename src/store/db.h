#pragma once
/// Db: one open SQLite connection to <state_dir>/mailhook.db and the one
/// write path over it (InTransaction). The SQLite table classes
/// (SqliteWatermarks, SqliteAttempts, SqliteOutbox, SqliteDeadLetters, ...) each
/// hold a Db& and keep their own SQL; a second backend implements the table
/// interfaces (watermarks.h, ...) over its own connection instead.
///
/// Not thread-safe: one Db per thread (see SqliteStore). The sqlite3 handle is
/// owned here and closed when the Db is destroyed.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "util/result.h"

struct sqlite3;

namespace mailhook::store {

class StatementCache;
class WriteGate;

/// Every store failure is of kind kStore: it says nothing about the message or
/// delivery being worked on, so callers neither blame nor skip it.
inline util::Error StoreError(std::string code, util::RetryClass retry, std::string message) {
  return util::Error(util::ErrorKind::kStore, std::move(code), retry, std::move(message));
}

/// The SQLite library's version ("SQLite 3.40.1"), for `mailhook version`.
std::string SqliteVersion();

/// Closes a connection (sqlite3_close); lets unique_ptr own a sqlite3*.
struct SqliteCloser {
  void operator()(sqlite3* db) const;
};
using SqlitePtr = std::unique_ptr<sqlite3, SqliteCloser>;

/// An open connection, configured (WAL, synchronous=FULL, busy timeout).
class Db {
 public:
  /// Opens (creating when missing) the database file at `path`; `path` must be
  /// in a writable directory. Does not migrate the schema (see Migrate).
  static util::Result<std::unique_ptr<Db>> Open(const std::string& path);

  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;
  /// Finalizes the cached statements, then closes the connection.
  ~Db();

  /// The database file's path, for messages.
  const std::string& path() const { return path_; }
  /// The connection, for the table classes' statements (src/store only).
  sqlite3* handle() const { return db_.get(); }
  /// This connection's prepared statements, reused by Stmt (src/store only).
  StatementCache& statements() { return *statements_; }

  /// Runs fn inside BEGIN IMMEDIATE ... COMMIT; rolls back when fn or the
  /// commit fails, so a failed write changes nothing. Every write goes
  /// through here. Nested calls join the outer transaction. Writers of this
  /// process on the same file queue on one mutex first (WriteGate), so they
  /// take turns at once instead of sleeping in SQLite's busy handler.
  util::Status InTransaction(const std::function<util::Status()>& fn);

  /// Write transactions that changed rows, committed so far by every Db of
  /// this process, so a test can pin how many a code path costs (each is a
  /// WAL append and an fsync).
  static uint64_t CommittedTransactions();

  /// Runs SQL without results (DDL, PRAGMA).
  util::Status Exec(const char* sql);
  /// The last failure on this connection as an Error naming `what`, the
  /// file and the fix (disk full, read-only, busy, corrupt).
  util::Error SqlError(const std::string& what) const;
  /// Rows changed by the last statement; the id of the last inserted row.
  int64_t Changes() const;
  int64_t LastInsertId() const;

  /// Test-only fault injection: called at named points inside write
  /// transactions ("transaction.before_commit", and those of Store).
  void SetFaultHookForTesting(std::function<void(std::string_view point)> hook) { fault_hook_ = std::move(hook); }
  void Fault(std::string_view point) const {
    if (fault_hook_) fault_hook_(point);
  }

 private:
  Db(SqlitePtr db, std::string path);
  util::Status Configure();
  // Steps one cached statement without results (BEGIN, COMMIT: once per
  // transaction, so not parsed anew each time as sqlite3_exec would).
  util::Status Run(const char* sql);

  SqlitePtr db_;
  std::unique_ptr<StatementCache> statements_;  // destroyed before db_ closes
  std::string path_;
  std::shared_ptr<WriteGate> gate_;  // shared by this process's Dbs on the file
  bool in_transaction_ = false;
  std::function<void(std::string_view)> fault_hook_;
};

}  // namespace mailhook::store
