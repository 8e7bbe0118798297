#include "store/db.h"

#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>

#include "store/per_file.h"
#include "store/statement_cache.h"

namespace mailhook::store {
namespace {

using util::Error;
using util::Ok;
using util::RetryClass;
using util::Status;

// How long a writer waits for another connection (thread or `mailhook
// deadletters`) before giving up with SQLITE_BUSY.
constexpr int kBusyTimeoutMs = 10000;

// SQLite creates a database 0644 (less the umask), and its -wal and -shm
// files with the database's mode: making the database 0600 before the first
// write makes all three private; files of an older version are tightened.
// Only chmod, never open(): closing any descriptor of the database file drops
// every POSIX lock this process holds on it, including those of the other
// Store objects' connections (SQLite's "posix locks" pitfall), after which
// another process may checkpoint and delete the WAL under them.
void MakePrivate(const std::string& db_path) {
  for (const std::string& file : {db_path, db_path + "-wal", db_path + "-shm"}) {
    struct stat st {};
    if (::stat(file.c_str(), &st) == 0 && (st.st_mode & 077) != 0) ::chmod(file.c_str(), st.st_mode & 0700);
  }
}

}  // namespace

/// One writer at a time among this process's connections to a file. SQLite's
/// own write lock is a file lock that a waiter polls from its busy handler,
/// sleeping 1, 2, 5, 10... ms between tries: in a burst the account worker's
/// commits and the delivery workers' marks met there hundreds of times and
/// slept ~0.5 s in all (measured with strace, issue 8). Queued on this mutex a
/// writer goes on as soon as the one before it commits. Other processes on
/// the file (`mailhook deadletters`) still meet at the file lock.
class WriteGate {
 public:
  std::timed_mutex mu;
};

std::string SqliteVersion() { return std::string("SQLite ") + sqlite3_libversion(); }

void SqliteCloser::operator()(sqlite3* db) const { sqlite3_close(db); }

// The file exists by now: sqlite3_open_v2 created it.
Db::Db(SqlitePtr db, std::string path)
    : db_(std::move(db)),
      statements_(std::make_unique<StatementCache>(db_.get())),
      path_(std::move(path)),
      gate_(PerFile<WriteGate>(path_)) {}

Db::~Db() { statements_->Clear(); }  // sqlite3_close fails while a statement is left

util::Result<std::unique_ptr<Db>> Db::Open(const std::string& path) {
  // Once, before the first connection initializes SQLite: no up-front page
  // cache block per connection (SQLite allocates 20 pages, ~87 KiB, at a
  // connection's first read; the daemon has one per delivery worker and per
  // watcher, and an idle one uses a few pages). Pages are then allocated as
  // used, up to cache_size as before. Ignored (SQLITE_MISUSE) when something
  // else initialized SQLite first.
  static const int kNoBulkPageCache = sqlite3_config(SQLITE_CONFIG_PAGECACHE, nullptr, 0, 0);
  (void)kNoBulkPageCache;
  sqlite3* raw = nullptr;
  // NOMUTEX: a Db is confined to one thread, so SQLite's own locking is waste.
  int rc =
      sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  SqlitePtr db(raw);  // sqlite3_open_v2 hands out a handle even when it fails
  if (rc != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db.get()) : sqlite3_errstr(rc);
    return StoreError("store.open", RetryClass::kNeedsOperator,
                      "cannot open " + path + ": " + msg +
                          "; check that the file and state_dir are writable and the volume is not full");
  }
  MakePrivate(path);  // before the first write creates -wal and -shm
  std::unique_ptr<Db> out(new Db(std::move(db), path));
  if (auto s = out->Configure(); !s) return s.error();
  return out;
}

Status Db::Configure() {
  sqlite3_busy_timeout(handle(), kBusyTimeoutMs);
  sqlite3_extended_result_codes(handle(), 1);
  // WAL lets readers (metrics, `deadletters list`) run beside the writer;
  // synchronous=FULL fsyncs the WAL on every commit, so a committed event
  // survives power loss, not only a process crash.
  // Switching a new file to WAL while another connection (a second thread,
  // or `mailhook deadletters` starting with the daemon) does the same can
  // fail with SQLITE_BUSY without the busy handler ever waiting: retry it
  // for as long as the busy timeout.
  for (int waited_ms = 0;; waited_ms += 10) {
    auto s = Exec("PRAGMA journal_mode=WAL");
    if (s) break;
    if ((sqlite3_extended_errcode(handle()) & 0xFF) != SQLITE_BUSY || waited_ms >= kBusyTimeoutMs) return s;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (auto s = Exec("PRAGMA synchronous=FULL"); !s) return s;
  return Exec("PRAGMA foreign_keys=ON");
}

Error Db::SqlError(const std::string& what) const {
  int code = sqlite3_extended_errcode(handle());
  std::string msg = what + " on " + path_ + ": " + sqlite3_errmsg(handle());
  switch (code & 0xff) {
    case SQLITE_FULL:
      return StoreError("store.full", RetryClass::kBackoff,
                        msg + "; the disk is full: free space on the volume holding state_dir");
    case SQLITE_READONLY:
    case SQLITE_CANTOPEN:
    case SQLITE_PERM:
      return StoreError("store.readonly", RetryClass::kNeedsOperator,
                        msg + "; make state_dir and mailhook.db* writable by uid " + std::to_string(geteuid()));
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return StoreError("store.busy", RetryClass::kRetryNow,
                        msg + "; another process held the database longer than " +
                            std::to_string(kBusyTimeoutMs / 1000) + "s, retry");
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return StoreError("store.corrupt", RetryClass::kNeedsOperator,
                        msg +
                            "; the file is damaged: restore it from a backup or move it away "
                            "(mailhook then starts fresh and may redeliver)");
    case SQLITE_IOERR:
      return StoreError("store.io", RetryClass::kBackoff,
                        msg + "; check the volume holding state_dir (disk errors, full, unmounted)");
    default: return StoreError("store.sql", RetryClass::kBackoff, msg);
  }
}

Status Db::Exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(handle(), sql, nullptr, nullptr, &err) != SQLITE_OK) {
    sqlite3_free(err);
    return SqlError(std::string("executing \"") + std::string(sql).substr(0, 40) + "\"");
  }
  return Ok();
}

Status Db::Run(const char* sql) {
  int rc = SQLITE_OK;
  sqlite3_stmt* stmt = statements_->Take(sql, &rc);
  if (rc == SQLITE_OK) rc = sqlite3_step(stmt);
  // The error is read before Give resets the statement.
  Status s = rc == SQLITE_DONE || rc == SQLITE_ROW ? Ok() : Status(SqlError(std::string("executing \"") + sql + "\""));
  statements_->Give(stmt);
  return s;
}

namespace {
std::atomic<uint64_t> committed_transactions{0};
}  // namespace

uint64_t Db::CommittedTransactions() { return committed_transactions.load(std::memory_order_relaxed); }

Status Db::InTransaction(const std::function<Status()>& fn) {
  if (in_transaction_) return fn();  // joins the caller's transaction
  // Every write goes through here. An autocommit write starts as a read and
  // upgrading a stale read snapshot fails with SQLITE_BUSY at once, without
  // waiting on the busy timeout; IMMEDIATE takes the write lock up front, so
  // two writers queue instead of one failing with SQLITE_BUSY at its first
  // write: this process's writers on the gate, another process's on the
  // busy timeout.
  std::unique_lock gate(gate_->mu, std::defer_lock);
  if (!gate.try_lock_for(std::chrono::milliseconds(kBusyTimeoutMs))) {
    return StoreError("store.busy", RetryClass::kRetryNow,
                      "waiting to write " + path_ + ": another thread of mailhook held the database longer than " +
                          std::to_string(kBusyTimeoutMs / 1000) + "s, retry");
  }
  if (auto s = Run("BEGIN IMMEDIATE"); !s) return s;
  const int64_t changes_before = sqlite3_total_changes64(handle());
  in_transaction_ = true;
  Status s = fn();
  if (s) {
    Fault("transaction.before_commit");
    s = Run("COMMIT");
    if (s && sqlite3_total_changes64(handle()) != changes_before) {
      committed_transactions.fetch_add(1, std::memory_order_relaxed);
    }
  }
  in_transaction_ = false;
  if (!s) (void)Run("ROLLBACK");
  return s;
}

int64_t Db::Changes() const { return sqlite3_changes(handle()); }
int64_t Db::LastInsertId() const { return sqlite3_last_insert_rowid(handle()); }

}  // namespace mailhook::store
