#include "store/store.h"

#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <system_error>
#include <thread>

namespace mailhook::store {
namespace {

using util::Error;
using util::Ok;
using util::Result;
using util::RetryClass;
using util::Status;

// Bump when the schema changes and add a step to Migrate().
constexpr int kSchemaVersion = 4;
// How long a writer waits for another connection (thread or `mailhook
// deadletters`) before giving up with SQLITE_BUSY.
constexpr int kBusyTimeoutMs = 10000;
// (event_id, target) pairs delivered within this window are remembered so that a
// replayed CommitMessages does not send them again.
constexpr int64_t kDeliveredRetentionMs = 7LL * 24 * 3600 * 1000;

int64_t ToMs(TimePoint t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}
TimePoint FromMs(int64_t ms) { return TimePoint(std::chrono::milliseconds(ms)); }

/// A prepared statement, finalized on destruction.
class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) {
    rc_ = sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr);
  }
  ~Stmt() { sqlite3_finalize(stmt_); }
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
  /// SQLITE_ROW -> true, SQLITE_DONE -> false; anything else leaves ok() false.
  bool Step() {
    if (!ok()) return false;
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    rc_ = rc;
    return false;
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
  sqlite3_stmt* stmt_ = nullptr;
  int rc_;
};

// " AND target NOT IN (?first, ...)" for `count` targets; empty for none.
std::string SkipTargetsClause(int first, size_t count) {
  if (count == 0) return "";
  std::string out = " AND target NOT IN (";
  for (size_t i = 0; i < count; ++i) {
    out += (i ? ", ?" : "?") + std::to_string(first + static_cast<int>(i));
  }
  return out + ")";
}

// The columns shared by outbox and dead_letters, in the order ReadItem
// expects. Large payloads live in `bodies` (see Migrate, v3); ReadItem reads
// them itself, in pieces.
constexpr const char* kItemColumns =
    "id, event_id, target, account, folder, uidvalidity, uid, payload, attempts, created_at";

// Reads a payload stored in `bodies` straight into one string of its size
// (column access would hold it twice: SQLite's copy and ours).
Result<std::string> ReadBody(sqlite3* db, int64_t id) {
  sqlite3_blob* blob = nullptr;
  int rc = sqlite3_blob_open(db, "main", "bodies", "body", id, 0, &blob);
  std::string out;
  if (rc == SQLITE_OK) {
    const int size = sqlite3_blob_bytes(blob);
    out.resize(static_cast<size_t>(size));
    constexpr int kPiece = 1 << 20;
    for (int at = 0; at < size && rc == SQLITE_OK; at += kPiece) {
      rc = sqlite3_blob_read(blob, out.data() + at, std::min(kPiece, size - at), at);
    }
  }
  sqlite3_blob_close(blob);
  if (rc != SQLITE_OK) {
    return Error("store.sqlite", RetryClass::kBackoff,
                 std::string("reading the payload of row ") + std::to_string(id) + ": " + sqlite3_errmsg(db) +
                     "; check the state file (PRAGMA integrity_check on mailhook.db)");
  }
  return out;
}

// An empty `payload` means the event is in `bodies` (events are never empty).
Result<OutboxItem> ReadItem(sqlite3* db, const Stmt& s) {
  OutboxItem item;
  item.event_id = s.Text(1);
  item.target = s.Text(2);
  item.account = s.Text(3);
  item.folder = s.Text(4);
  item.uidvalidity = static_cast<uint32_t>(s.Int(5));
  item.uid = static_cast<uint32_t>(s.Int(6));
  item.payload = s.Text(7);
  if (item.payload.empty()) {
    Result<std::string> body = ReadBody(db, s.Int(0));
    if (!body.ok()) return body.error();
    item.payload = std::move(*body);
  }
  return item;
}

std::string IdList(std::span<const int64_t> ids) {
  std::string out;
  for (int64_t id : ids) {
    if (!out.empty()) out += ',';
    out += std::to_string(id);
  }
  return out;
}

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

Result<std::unique_ptr<Store>> Store::Open(const std::string& state_dir) {
  // The state holds whole events (mail bodies, attachments): state_dir is
  // made 0700 and the database files 0600, whatever the umask. mkdir's mode
  // is applied at creation, so the directory is never open in between.
  std::error_code ec;
  std::filesystem::path dir(state_dir);
  if (!dir.has_filename()) dir = dir.parent_path();  // "a/b/" is "a/b"
  if (dir.has_parent_path()) std::filesystem::create_directories(dir.parent_path(), ec);
  if (!ec && ::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    ec = std::error_code(errno, std::generic_category());
  }
  if (ec) {
    return Error("store.mkdir", RetryClass::kNeedsOperator,
                 "cannot create state_dir " + state_dir + ": " + ec.message() +
                     "; create it or point state_dir at a writable directory");
  }
  // WAL needs to create -wal and -shm files beside the database, so the directory
  // itself must be writable, not just the file. Checking here gives a clearer
  // message than SQLite's "unable to open database file".
  if (access(state_dir.c_str(), W_OK | X_OK) != 0) {
    int err = errno;
    return Error("store.readonly", RetryClass::kNeedsOperator,
                 "state_dir " + state_dir + " is not writable (" + std::strerror(err) +
                     "); make it writable by uid " + std::to_string(geteuid()) +
                     " (e.g. a writable volume) or point state_dir elsewhere");
  }
  std::string path = (std::filesystem::path(state_dir) / "mailhook.db").string();
  sqlite3* db = nullptr;
  // NOMUTEX: a Store is confined to one thread, so SQLite's own locking is waste.
  int rc = sqlite3_open_v2(path.c_str(), &db,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                           nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close(db);
    return Error("store.open", RetryClass::kNeedsOperator,
                 "cannot open " + path + ": " + msg +
                     "; check that the file and state_dir are writable and the volume is not full");
  }
  MakePrivate(path);  // before the first write creates -wal and -shm
  std::unique_ptr<Store> store(new Store(db, path));
  sqlite3_busy_timeout(db, kBusyTimeoutMs);
  sqlite3_extended_result_codes(db, 1);
  // WAL lets readers (metrics, `deadletters list`) run beside the writer;
  // synchronous=FULL fsyncs the WAL on every commit, so a committed event
  // survives power loss, not only a process crash.
  // Switching a new file to WAL while another connection (a second thread,
  // or `mailhook deadletters` starting with the daemon) does the same can
  // fail with SQLITE_BUSY without the busy handler ever waiting: retry it
  // for as long as the busy timeout.
  for (int waited_ms = 0;; waited_ms += 10) {
    auto s = store->Exec("PRAGMA journal_mode=WAL");
    if (s) break;
    if ((sqlite3_extended_errcode(db) & 0xFF) != SQLITE_BUSY || waited_ms >= kBusyTimeoutMs) return s.error();
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (auto s = store->Exec("PRAGMA synchronous=FULL"); !s) return s.error();
  if (auto s = store->Exec("PRAGMA foreign_keys=ON"); !s) return s.error();
  if (auto s = store->Migrate(); !s) return s.error();
  return store;
}

Store::~Store() { sqlite3_close(db_); }

Error Store::SqlError(const std::string& what) const {
  int code = sqlite3_extended_errcode(db_);
  std::string msg = what + " on " + path_ + ": " + sqlite3_errmsg(db_);
  switch (code & 0xff) {
    case SQLITE_FULL:
      return Error("store.full", RetryClass::kBackoff,
                   msg + "; the disk is full: free space on the volume holding state_dir");
    case SQLITE_READONLY:
    case SQLITE_CANTOPEN:
    case SQLITE_PERM:
      return Error("store.readonly", RetryClass::kNeedsOperator,
                   msg + "; make state_dir and mailhook.db* writable by uid " +
                       std::to_string(geteuid()));
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return Error("store.busy", RetryClass::kRetryNow,
                   msg + "; another process held the database longer than " +
                       std::to_string(kBusyTimeoutMs / 1000) + "s, retry");
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return Error("store.corrupt", RetryClass::kNeedsOperator,
                   msg + "; the file is damaged: restore it from a backup or move it away "
                         "(mailhook then starts fresh and may redeliver)");
    case SQLITE_IOERR:
      return Error("store.io", RetryClass::kBackoff,
                   msg + "; check the volume holding state_dir (disk errors, full, unmounted)");
    default:
      return Error("store.sql", RetryClass::kBackoff, msg);
  }
}

Status Store::Exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    sqlite3_free(err);
    return SqlError(std::string("executing \"") + std::string(sql).substr(0, 40) + "\"");
  }
  return Ok();
}

Status Store::InTransaction(const std::function<Status()>& fn) {
  // Every write goes through here. An autocommit write starts as a read and
  // upgrading a stale read snapshot fails with SQLITE_BUSY at once, without
  // waiting on the busy timeout; IMMEDIATE takes the write lock up front, so two writers queue on the busy
  // timeout instead of one failing with SQLITE_BUSY at its first write.
  if (auto s = Exec("BEGIN IMMEDIATE"); !s) return s;
  Status s = fn();
  if (s) s = Exec("COMMIT");
  if (!s) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }
  return s;
}

// The schema, one step per version: step N takes version N-1 to N. A flat
// table of DDL; to change the schema, append a step and bump kSchemaVersion.
constexpr const char* kMigrations[] = {
    // v1: Times are milliseconds since the Unix epoch (UTC).
    R"sql(
        CREATE TABLE IF NOT EXISTS watermarks (
          account TEXT NOT NULL, folder TEXT NOT NULL,
          uidvalidity INTEGER NOT NULL, last_uid INTEGER NOT NULL,
          updated_at INTEGER NOT NULL,
          PRIMARY KEY (account, folder));
        CREATE TABLE IF NOT EXISTS outbox (
          id INTEGER PRIMARY KEY AUTOINCREMENT,
          event_id TEXT NOT NULL, target TEXT NOT NULL,
          account TEXT NOT NULL, folder TEXT NOT NULL,
          uidvalidity INTEGER NOT NULL, uid INTEGER NOT NULL,
          payload TEXT NOT NULL,
          attempts INTEGER NOT NULL DEFAULT 0,
          created_at INTEGER NOT NULL,
          next_attempt_at INTEGER NOT NULL,
          lease_until INTEGER NOT NULL DEFAULT 0,
          last_error TEXT NOT NULL DEFAULT '',
          UNIQUE (event_id, target));
        CREATE INDEX IF NOT EXISTS outbox_due ON outbox (next_attempt_at, id);
        CREATE TABLE IF NOT EXISTS dead_letters (
          id INTEGER PRIMARY KEY,
          event_id TEXT NOT NULL, target TEXT NOT NULL,
          account TEXT NOT NULL, folder TEXT NOT NULL,
          uidvalidity INTEGER NOT NULL, uid INTEGER NOT NULL,
          payload TEXT NOT NULL,
          attempts INTEGER NOT NULL,
          created_at INTEGER NOT NULL,
          failed_at INTEGER NOT NULL,
          last_error TEXT NOT NULL,
          UNIQUE (event_id, target));
        CREATE TABLE IF NOT EXISTS delivered (
          event_id TEXT NOT NULL, target TEXT NOT NULL,
          delivered_at INTEGER NOT NULL,
          PRIMARY KEY (event_id, target));
        CREATE INDEX IF NOT EXISTS delivered_at ON delivered (delivered_at);
      )sql",
    // v2: post-actions (on_delivered) waiting for every target of an event.
    R"sql(
        CREATE TABLE IF NOT EXISTS post_actions (
          event_id TEXT PRIMARY KEY,
          account TEXT NOT NULL, folder TEXT NOT NULL,
          uidvalidity INTEGER NOT NULL, uid INTEGER NOT NULL,
          created_at INTEGER NOT NULL);
        CREATE INDEX IF NOT EXISTS post_actions_folder ON post_actions (account, folder);
      )sql",
    // v3: large payloads (events with attachment contents) live in their
    // own table, keyed by the outbox id, which a dead letter keeps: a lease
    // or retry UPDATE of an outbox row then never rewrites (and holds in
    // memory) the payload, and moving to and from the dead letters never
    // copies it. Written and read in pieces; the row's `payload` is ''.
    // The body is the last column, so SQLite reserves it as a zeroblob
    // without building it in memory.
    R"sql(
        CREATE TABLE IF NOT EXISTS bodies (id INTEGER PRIMARY KEY, body BLOB NOT NULL);
      )sql",
    // v4: extraction attempts per message, so a message that fails every
    // time (a poison message) is counted across sessions and crashes and
    // becomes message.unprocessable after limits.max_attempts.
    R"sql(
        CREATE TABLE IF NOT EXISTS attempts (
          account TEXT NOT NULL, folder TEXT NOT NULL,
          uidvalidity INTEGER NOT NULL, uid INTEGER NOT NULL,
          count INTEGER NOT NULL, last_code TEXT NOT NULL DEFAULT '',
          last_error TEXT NOT NULL DEFAULT '', updated_at INTEGER NOT NULL,
          PRIMARY KEY (account, folder, uid));
      )sql",
};
static_assert(std::size(kMigrations) == kSchemaVersion);

Status Store::Migrate() {
  int64_t version = 0;
  {
    // Scoped: a live statement holds a read transaction, and upgrading that to a
    // write fails with SQLITE_BUSY without waiting on the busy timeout.
    Stmt v(db_, "PRAGMA user_version");
    if (!v.Step()) return SqlError("reading schema version");
    version = v.Int(0);
  }
  if (version > kSchemaVersion) {
    return Error("store.schema", RetryClass::kNeedsOperator,
                 path_ + " has schema version " + std::to_string(version) +
                     ", newer than this mailhook understands (" +
                     std::to_string(kSchemaVersion) + "); run a newer mailhook");
  }
  if (version == kSchemaVersion) {
    // Forget delivered markers past the dedupe window.
    return InTransaction([&]() -> Status {
      Stmt prune(db_, "DELETE FROM delivered WHERE delivered_at < ?");
      prune.Bind(1, ToMs(Clock::now()) - kDeliveredRetentionMs);
      prune.Step();
      if (!prune.ok()) return SqlError("pruning delivered markers");
      return DeleteOrphanBodies();
    });
  }
  return InTransaction([&]() -> Status {
    {
      // Again, now under the write lock: another process or thread opening
      // the same file may have migrated meanwhile (a step need not be
      // idempotent).
      Stmt v(db_, "PRAGMA user_version");
      if (!v.Step()) return SqlError("reading schema version");
      version = v.Int(0);
    }
    if (version >= kSchemaVersion) return Ok();
    for (int64_t step = version; step < kSchemaVersion; ++step) {
      if (auto s = Exec(kMigrations[step]); !s) return s;
    }
    return Exec(("PRAGMA user_version = " + std::to_string(kSchemaVersion)).c_str());
  });
}

Result<std::optional<Watermark>> Store::GetWatermark(const std::string& account,
                                                     const std::string& folder) {
  Stmt s(db_, "SELECT uidvalidity, last_uid FROM watermarks WHERE account=? AND folder=?");
  s.Bind(1, account).Bind(2, folder);
  if (s.Step()) {
    return std::optional<Watermark>(
        Watermark{static_cast<uint32_t>(s.Int(0)), static_cast<uint32_t>(s.Int(1))});
  }
  if (!s.ok()) return SqlError("reading watermark");
  return std::optional<Watermark>();
}

namespace {
constexpr const char* kSetWatermarkSql =
    "INSERT INTO watermarks (account, folder, uidvalidity, last_uid, updated_at) "
    "VALUES (?,?,?,?,?) ON CONFLICT (account, folder) DO UPDATE SET "
    "uidvalidity=excluded.uidvalidity, last_uid=excluded.last_uid, "
    "updated_at=excluded.updated_at";
}  // namespace

Status Store::SetWatermark(const std::string& account, const std::string& folder,
                           Watermark mark) {
  return InTransaction([&]() -> Status {
    Stmt s(db_, kSetWatermarkSql);
    s.Bind(1, account).Bind(2, folder).Bind(3, mark.uidvalidity).Bind(4, mark.last_uid);
    s.Bind(5, ToMs(Clock::now()));
    s.Step();
    if (!s.ok()) return SqlError("writing watermark");
    return Ok();
  });
}

Status Store::CommitMessages(const std::string& account, const std::string& folder,
                             std::optional<Watermark> new_mark, const std::vector<OutboxItem>& items,
                             const std::vector<PostAction>& post_actions) {
  return InTransaction([&]() -> Status {
    int64_t now = ToMs(Clock::now());
    // OR IGNORE covers a row still in the outbox; the NOT EXISTS clauses cover a
    // row that already failed for good or was delivered: either way a replay of
    // the same message must not deliver it a second time.
    Stmt ins(db_,
             "INSERT OR IGNORE INTO outbox (event_id, target, account, folder, uidvalidity, "
             "uid, payload, created_at, next_attempt_at) "
             "SELECT ?1,?2,?3,?4,?5,?6,?7,?8,?8 WHERE NOT EXISTS "
             "(SELECT 1 FROM dead_letters WHERE event_id=?1 AND target=?2) AND NOT EXISTS "
             "(SELECT 1 FROM delivered WHERE event_id=?1 AND target=?2)");
    for (const auto& item : items) {
      ins.Bind(1, item.event_id).Bind(2, item.target).Bind(3, item.account);
      ins.Bind(4, item.folder).Bind(5, item.uidvalidity).Bind(6, item.uid).Bind(8, now);
      uint64_t body_size = 0;
      for (const auto& piece : item.pieces) body_size += piece->size();
      // '' (not NULL: NOT NULL + OR IGNORE would silently drop the row).
      // NOLINTNEXTLINE(bugprone-string-constructor): a non-null empty view binds '', not NULL
      ins.BindView(7, item.pieces.empty() ? std::string_view(item.payload) : std::string_view("", 0));
      ins.Step();
      if (!ins.ok()) return SqlError("inserting event " + item.event_id);
      ins.Reset();
      if (!item.pieces.empty() && sqlite3_changes(db_) == 1) {
        if (Status s = WriteBody(sqlite3_last_insert_rowid(db_), body_size, item.pieces); !s.ok()) return s;
      }
    }
    Fault("commit_messages.inserted");
    Stmt post(db_,
              "INSERT OR IGNORE INTO post_actions (event_id, account, folder, uidvalidity, uid, "
              "created_at) VALUES (?,?,?,?,?,?)");
    for (const auto& p : post_actions) {
      post.Bind(1, p.event_id).Bind(2, p.account).Bind(3, p.folder).Bind(4, p.uidvalidity);
      post.Bind(5, p.uid).Bind(6, now);
      post.Step();
      if (!post.ok()) return SqlError("recording post-action for " + p.event_id);
      post.Reset();
    }
    // What is durable now needs no attempt count any more.
    Stmt forget(db_, "DELETE FROM attempts WHERE account=? AND folder=? AND uid=?");
    for (const auto& item : items) {
      forget.Bind(1, account).Bind(2, folder).Bind(3, item.uid);
      forget.Step();
      if (!forget.ok()) return SqlError("forgetting attempts of UID " + std::to_string(item.uid));
      forget.Reset();
    }
    if (new_mark) {
      Stmt wm(db_, kSetWatermarkSql);
      wm.Bind(1, account).Bind(2, folder).Bind(3, new_mark->uidvalidity);
      wm.Bind(4, new_mark->last_uid).Bind(5, now);
      wm.Step();
      if (!wm.ok()) return SqlError("writing watermark");
      Stmt below(db_, "DELETE FROM attempts WHERE account=? AND folder=? AND (uid<=? OR uidvalidity<>?)");
      below.Bind(1, account).Bind(2, folder).Bind(3, new_mark->last_uid).Bind(4, new_mark->uidvalidity);
      below.Step();
      if (!below.ok()) return SqlError("forgetting attempts below the watermark");
    }
    Fault("commit_messages.before_commit");
    return Ok();
  });
}

Status Store::BeginAttempts(const std::string& account, const std::string& folder, uint32_t uidvalidity,
                            std::span<const uint32_t> uids) {
  return InTransaction([&]() -> Status {
    Stmt up(db_,
            "INSERT INTO attempts (account, folder, uidvalidity, uid, count, updated_at) "
            "VALUES (?1,?2,?3,?4,?6,?5) ON CONFLICT (account, folder, uid) DO UPDATE SET "
            "count=CASE WHEN uidvalidity=excluded.uidvalidity THEN count+?6 ELSE ?6 END, "
            "last_code=CASE WHEN uidvalidity=excluded.uidvalidity THEN last_code ELSE '' END, "
            "last_error=CASE WHEN uidvalidity=excluded.uidvalidity THEN last_error ELSE '' END, "
            "uidvalidity=excluded.uidvalidity, updated_at=excluded.updated_at");
    for (uint32_t uid : uids) {
      up.Bind(1, account).Bind(2, folder).Bind(3, uidvalidity).Bind(4, uid).Bind(5, ToMs(Clock::now()));
      up.Bind(6, uids.size() == 1 ? 1 : 0);
      up.Step();
      if (!up.ok()) return SqlError("counting an attempt at UID " + std::to_string(uid));
      up.Reset();
    }
    return Ok();
  });
}

Status Store::RefundAttempts(const std::string& account, const std::string& folder,
                             std::span<const uint32_t> uids) {
  return InTransaction([&]() -> Status {
    Stmt dec(db_, "UPDATE attempts SET count=count-1 WHERE account=? AND folder=? AND uid=? AND count>0");
    for (uint32_t uid : uids) {
      dec.Bind(1, account).Bind(2, folder).Bind(3, uid);
      dec.Step();
      if (!dec.ok()) return SqlError("taking back an attempt at UID " + std::to_string(uid));
      dec.Reset();
    }
    return Ok();
  });
}

Status Store::RecordAttemptFailure(const std::string& account, const std::string& folder, uint32_t uid,
                                   const std::string& code, const std::string& message, bool count) {
  return InTransaction([&]() -> Status {
    Stmt up(db_,
            "UPDATE attempts SET last_code=?, last_error=?, count=count+? WHERE account=? AND folder=? AND uid=?");
    up.Bind(1, code).Bind(2, message.substr(0, 500)).Bind(3, count ? 1 : 0).Bind(4, account).Bind(5, folder);
    up.Bind(6, uid);
    up.Step();
    if (!up.ok()) return SqlError("recording the failure at UID " + std::to_string(uid));
    return Ok();
  });
}

Result<std::vector<Attempt>> Store::ListAttempts(const std::string& account, const std::string& folder,
                                                 uint32_t uidvalidity) {
  Stmt s(db_,
         "SELECT uid, count, last_code, last_error FROM attempts "
         "WHERE account=? AND folder=? AND uidvalidity=? ORDER BY uid");
  s.Bind(1, account).Bind(2, folder).Bind(3, uidvalidity);
  std::vector<Attempt> out;
  while (s.Step()) {
    out.push_back(Attempt{static_cast<uint32_t>(s.Int(0)), static_cast<int>(s.Int(1)), s.Text(3), s.Text(2)});
  }
  if (!s.ok()) return SqlError("reading attempts");
  return out;
}

Status Store::WriteBody(int64_t id, uint64_t size, const std::vector<std::shared_ptr<const std::string>>& pieces) {
  if (size > static_cast<uint64_t>(INT32_MAX)) {
    return Error("store.too_large", RetryClass::kNeedsOperator,
                 "an event of " + std::to_string(size >> 20) +
                     " MiB is over SQLite's 2 GiB limit; lower max_attachment_bytes");
  }
  Stmt ins(db_, "INSERT OR REPLACE INTO bodies (id, body) VALUES (?, ?)");
  ins.Bind(1, id).BindZeroBlob(2, size);
  ins.Step();
  if (!ins.ok()) return SqlError("reserving the payload of row " + std::to_string(id));
  sqlite3_blob* blob = nullptr;
  int rc = sqlite3_blob_open(db_, "main", "bodies", "body", id, 1, &blob);
  int64_t at = 0;
  for (auto it = pieces.begin(); rc == SQLITE_OK && it != pieces.end(); ++it) {
    const std::string& piece = **it;
    // sqlite3_blob_write takes an int: large pieces go in 1 MiB steps.
    constexpr size_t kStep = 1 << 20;
    for (size_t done = 0; done < piece.size() && rc == SQLITE_OK; done += kStep) {
      int n = static_cast<int>(std::min(kStep, piece.size() - done));
      rc = sqlite3_blob_write(blob, piece.data() + done, n, static_cast<int>(at));
      at += n;
    }
  }
  sqlite3_blob_close(blob);
  if (rc != SQLITE_OK) return SqlError("writing the payload of row " + std::to_string(id));
  return Ok();
}

Status Store::DeleteOrphanBodies() {
  Stmt del(db_,
           "DELETE FROM bodies WHERE id NOT IN (SELECT id FROM outbox) "
           "AND id NOT IN (SELECT id FROM dead_letters)");
  del.Step();
  if (!del.ok()) return SqlError("deleting payloads of removed rows");
  return Ok();
}

Result<std::vector<Delivery>> Store::ClaimDue(TimePoint now, int limit,
                                              std::chrono::milliseconds lease,
                                              const std::vector<std::string>& skip_targets) {
  std::vector<Delivery> out;
  Status st = InTransaction([&]() -> Status {
    Stmt sel(db_, (std::string("SELECT ") + kItemColumns +
                   ", next_attempt_at, last_error FROM outbox "
                   "WHERE next_attempt_at <= ?1 AND lease_until <= ?1" +
                   SkipTargetsClause(3, skip_targets.size()) +
                   " ORDER BY next_attempt_at, id LIMIT ?2")
                      .c_str());
    sel.Bind(1, ToMs(now)).Bind(2, limit);
    for (size_t i = 0; i < skip_targets.size(); ++i) sel.Bind(static_cast<int>(i) + 3, skip_targets[i]);
    while (sel.Step()) {
      Delivery d;
      d.id = sel.Int(0);
      Result<OutboxItem> item = ReadItem(db_, sel);
      if (!item.ok()) return item.error();
      d.item = std::move(*item);
      d.attempts = static_cast<int>(sel.Int(8));
      d.created_at = FromMs(sel.Int(9));
      d.next_attempt_at = FromMs(sel.Int(10));
      d.last_error = sel.Text(11);
      out.push_back(std::move(d));
    }
    if (!sel.ok()) return SqlError("claiming due deliveries");
    Stmt upd(db_, "UPDATE outbox SET lease_until=? WHERE id=?");
    for (const auto& d : out) {
      upd.Bind(1, ToMs(now + lease)).Bind(2, d.id);
      upd.Step();
      if (!upd.ok()) return SqlError("leasing delivery " + std::to_string(d.id));
      upd.Reset();
    }
    return Ok();
  });
  if (!st) return st.error();
  return out;
}

Status Store::MarkDelivered(int64_t id) {
  return InTransaction([&]() -> Status {
    Stmt mark(db_,
              "INSERT OR REPLACE INTO delivered (event_id, target, delivered_at) "
              "SELECT event_id, target, ? FROM outbox WHERE id=?");
    mark.Bind(1, ToMs(Clock::now())).Bind(2, id);
    mark.Step();
    if (!mark.ok()) return SqlError("recording delivery " + std::to_string(id));
    Stmt del(db_, "DELETE FROM outbox WHERE id=?");
    del.Bind(1, id);
    del.Step();
    if (!del.ok()) return SqlError("deleting delivered row " + std::to_string(id));
    Stmt body(db_, "DELETE FROM bodies WHERE id=?");
    body.Bind(1, id);
    body.Step();
    if (!body.ok()) return SqlError("deleting the payload of delivered row " + std::to_string(id));
    return Ok();
  });
}

Status Store::ScheduleRetry(int64_t id, int attempts, TimePoint next_attempt_at,
                            const std::string& last_error) {
  return InTransaction([&]() -> Status {
    Stmt s(db_,
           "UPDATE outbox SET attempts=?, next_attempt_at=?, last_error=?, lease_until=0 "
           "WHERE id=?");
    s.Bind(1, attempts).Bind(2, ToMs(next_attempt_at)).Bind(3, last_error).Bind(4, id);
    s.Step();
    if (!s.ok()) return SqlError("scheduling retry of " + std::to_string(id));
    return Ok();
  });
}

Status Store::MoveToDeadLetters(int64_t id, int attempts, const std::string& last_error) {
  return InTransaction([&]() -> Status {
    Stmt ins(db_,
             "INSERT OR REPLACE INTO dead_letters (id, event_id, target, account, folder, "
             "uidvalidity, uid, payload, attempts, created_at, failed_at, last_error) "
             "SELECT id, event_id, target, account, folder, uidvalidity, uid, payload, ?, "
             "created_at, ?, ? FROM outbox WHERE id=?");
    ins.Bind(1, attempts).Bind(2, ToMs(Clock::now())).Bind(3, last_error).Bind(4, id);
    ins.Step();
    if (!ins.ok()) return SqlError("moving " + std::to_string(id) + " to dead letters");
    Stmt del(db_, "DELETE FROM outbox WHERE id=?");
    del.Bind(1, id);
    del.Step();
    if (!del.ok()) return SqlError("deleting dead-lettered row " + std::to_string(id));
    return Ok();
  });
}

Status Store::ReleaseLease(int64_t id) {
  return InTransaction([&]() -> Status {
    Stmt s(db_, "UPDATE outbox SET lease_until=0 WHERE id=?");
    s.Bind(1, id);
    s.Step();
    if (!s.ok()) return SqlError("releasing lease of " + std::to_string(id));
    return Ok();
  });
}

Status Store::ReleaseAllLeases() {
  return InTransaction([&] { return Exec("UPDATE outbox SET lease_until=0"); });
}

Result<std::optional<TimePoint>> Store::NextDueAt(const std::vector<std::string>& skip_targets) {
  Stmt s(db_, ("SELECT MIN(MAX(next_attempt_at, lease_until)) FROM outbox WHERE 1" +
               SkipTargetsClause(1, skip_targets.size()))
                  .c_str());
  for (size_t i = 0; i < skip_targets.size(); ++i) s.Bind(static_cast<int>(i) + 1, skip_targets[i]);
  if (!s.Step()) return SqlError("reading next due time");
  if (s.IsNull(0)) return std::optional<TimePoint>();
  return std::optional<TimePoint>(FromMs(s.Int(0)));
}

Result<int64_t> Store::PendingCount() {
  Stmt s(db_, "SELECT COUNT(*) FROM outbox");
  if (!s.Step()) return SqlError("counting outbox");
  return s.Int(0);
}

Result<std::vector<Delivery>> Store::ListPending() {
  Stmt s(db_, (std::string("SELECT ") + kItemColumns +
               ", next_attempt_at, last_error FROM outbox ORDER BY next_attempt_at, id")
                  .c_str());
  std::vector<Delivery> out;
  while (s.Step()) {
    Delivery d;
    d.id = s.Int(0);
    Result<OutboxItem> item = ReadItem(db_, s);
    if (!item.ok()) return item.error();
    d.item = std::move(*item);
    d.attempts = static_cast<int>(s.Int(8));
    d.created_at = FromMs(s.Int(9));
    d.next_attempt_at = FromMs(s.Int(10));
    d.last_error = s.Text(11);
    out.push_back(std::move(d));
  }
  if (!s.ok()) return SqlError("listing outbox");
  return out;
}

Result<bool> Store::AllDelivered(const std::string& event_id) {
  Stmt s(db_,
         "SELECT (SELECT COUNT(*) FROM outbox WHERE event_id=?1) + "
         "(SELECT COUNT(*) FROM dead_letters WHERE event_id=?1)");
  s.Bind(1, event_id);
  if (!s.Step()) return SqlError("checking event " + event_id);
  return s.Int(0) == 0;
}

Result<int64_t> Store::DeadLetterCount() {
  Stmt s(db_, "SELECT COUNT(*) FROM dead_letters");
  if (!s.Step()) return SqlError("counting dead letters");
  return s.Int(0);
}

Result<std::vector<DeadLetter>> Store::ListDeadLetters() {
  Stmt s(db_, (std::string("SELECT ") + kItemColumns +
               ", failed_at, last_error FROM dead_letters ORDER BY id")
                  .c_str());
  std::vector<DeadLetter> out;
  while (s.Step()) {
    DeadLetter d;
    d.id = s.Int(0);
    Result<OutboxItem> item = ReadItem(db_, s);
    if (!item.ok()) return item.error();
    d.item = std::move(*item);
    d.attempts = static_cast<int>(s.Int(8));
    d.created_at = FromMs(s.Int(9));
    d.failed_at = FromMs(s.Int(10));
    d.last_error = s.Text(11);
    out.push_back(std::move(d));
  }
  if (!s.ok()) return SqlError("listing dead letters");
  return out;
}

Result<int64_t> Store::MoveDeadLetters(const std::string& where, std::span<const int64_t> ids,
                                       bool replay) {
  // The ids are integers we format ourselves, so building the IN list is safe.
  std::string cond = where.empty() ? "id IN (" + IdList(ids) + ")" : where;
  int64_t moved = 0;
  Status st = InTransaction([&]() -> Status {
    if (replay) {
      // Keep the id: `deadletters list` output stays meaningful across a replay.
      Stmt ins(db_, ("INSERT OR IGNORE INTO outbox (id, event_id, target, account, folder, "
                     "uidvalidity, uid, payload, attempts, created_at, next_attempt_at, "
                     "last_error) SELECT id, event_id, target, account, folder, uidvalidity, "
                     "uid, payload, 0, created_at, ?, last_error FROM dead_letters WHERE " +
                     cond)
                        .c_str());
      ins.Bind(1, ToMs(Clock::now()));
      ins.Step();
      if (!ins.ok()) return SqlError("replaying dead letters");
    }
    Stmt del(db_, ("DELETE FROM dead_letters WHERE " + cond).c_str());
    del.Step();
    if (!del.ok()) return SqlError("removing dead letters");
    moved = sqlite3_changes(db_);
    return DeleteOrphanBodies();  // dropped ones (a replayed one is in the outbox again)
  });
  if (!st) return st.error();
  return moved;
}

Result<int64_t> Store::ReplayDeadLetters(std::span<const int64_t> ids) {
  if (ids.empty()) return int64_t{0};
  return MoveDeadLetters("", ids, true);
}
Result<int64_t> Store::ReplayAllDeadLetters() { return MoveDeadLetters("1=1", {}, true); }
Result<int64_t> Store::DropDeadLetters(std::span<const int64_t> ids) {
  if (ids.empty()) return int64_t{0};
  return MoveDeadLetters("", ids, false);
}
Result<int64_t> Store::DropAllDeadLetters() { return MoveDeadLetters("1=1", {}, false); }

}  // namespace mailhook::store

namespace mailhook::store {

Result<std::vector<PostAction>> Store::ReadyPostActions(const std::string& account,
                                                        const std::string& folder, int limit) {
  // Ready = no outbox row and no dead letter left for the event: every
  // target succeeded. A dead letter holds the action until it is replayed
  // and delivered (or dropped, which releases it).
  Stmt sel(db_,
           "SELECT event_id, account, folder, uidvalidity, uid FROM post_actions p "
           "WHERE account=?1 AND folder=?2 "
           "AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.event_id=p.event_id) "
           "AND NOT EXISTS (SELECT 1 FROM dead_letters d WHERE d.event_id=p.event_id) "
           "ORDER BY uid LIMIT ?3");
  sel.Bind(1, account).Bind(2, folder).Bind(3, limit);
  std::vector<PostAction> out;
  while (sel.Step()) {
    out.push_back(PostAction{sel.Text(0), sel.Text(1), sel.Text(2),
                             static_cast<uint32_t>(sel.Int(3)), static_cast<uint32_t>(sel.Int(4))});
  }
  if (!sel.ok()) return SqlError("reading post-actions");
  return out;
}

Status Store::FinishPostAction(const std::string& event_id) {
  Stmt del(db_, "DELETE FROM post_actions WHERE event_id=?");
  del.Bind(1, event_id);
  del.Step();
  if (!del.ok()) return SqlError("finishing post-action " + event_id);
  return Ok();
}

Result<int64_t> Store::PostActionCount() {
  Stmt sel(db_, "SELECT COUNT(*) FROM post_actions");
  if (!sel.Step()) return SqlError("counting post-actions");
  return sel.Int(0);
}

}  // namespace mailhook::store
