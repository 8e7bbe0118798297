#pragma once
/// StatementCache: the prepared statements of one SQLite connection, kept
/// for reuse. Used by src/store's Stmt only; SQLite's types are only
/// declared here, so the header pulls in no <sqlite3.h> (the fence).
///
/// Why: every store call prepared its SQL anew and finalized it after one
/// use; in a burst, parsing those statements was most of SQLite's share of
/// mailhook's CPU. The statements are a small fixed set (the store's SQL
/// literals, plus a few texts built from them, such as the outbox query with
/// N skipped targets), so keeping one prepared handle per text removes the
/// parsing.
///
/// Rules:
/// - keyed by the SQL text (not its pointer: some texts are built per call);
/// - a handle in use is marked busy: a query run while another of the same
///   text is still stepping (re-entrant use) gets a handle of its own, which
///   is finalized when given back;
/// - a handle given back is reset and its bindings cleared at once, so an idle
///   handle holds no read transaction (a stepped, unreset statement would pin
///   the WAL snapshot) and no pointer into a caller's buffer (BindView);
/// - at most kCapacity idle handles; beyond that the least recently used idle
///   one is finalized;
/// - every handle is finalized before the connection closes (Db's destructor
///   clears the cache first).
/// Threads: none of its own; it belongs to one Db and shares its confinement
/// (one thread at a time, see Store).

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <unordered_map>

struct sqlite3;
struct sqlite3_stmt;

namespace mailhook::store {

class StatementCache {
 public:
  /// Idle handles kept at most. The store has about 60 distinct statements
  /// (its SQL literals plus the outbox queries per count of skipped targets);
  /// those of a running daemon's hot paths are far fewer.
  static constexpr size_t kCapacity = 64;

  explicit StatementCache(sqlite3* db) : db_(db) {}
  ~StatementCache() { Clear(); }
  StatementCache(const StatementCache&) = delete;
  StatementCache& operator=(const StatementCache&) = delete;

  /// A prepared statement for `sql`: the cached one when it is idle, else a
  /// new one. `*rc` is SQLite's result (SQLITE_OK, or the prepare's error,
  /// then the result is nullptr). Give it back with Give.
  sqlite3_stmt* Take(std::string_view sql, int* rc);
  /// Returns a statement from Take (nullptr is ignored): reset and bindings
  /// cleared; kept for the next Take of its text, or finalized when it was
  /// an extra handle for re-entrant use.
  void Give(sqlite3_stmt* stmt);
  /// Finalizes every cached statement (none may be in use).
  void Clear();

  /// Statements prepared by this cache so far, for tests.
  int64_t prepares() const { return prepares_; }
  /// Cached handles (idle or in use), for tests.
  size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    sqlite3_stmt* stmt;
    bool busy;
    uint64_t last_used;
  };
  // Finalizes the least recently used idle handle; false when none is idle.
  bool EvictIdle();

  sqlite3* db_;
  // The key is the statement's own copy of its text (sqlite3_sql), valid as
  // long as the handle lives, i.e. as long as the entry.
  std::unordered_map<std::string_view, Entry> entries_;
  uint64_t clock_ = 0;
  int64_t prepares_ = 0;
};

}  // namespace mailhook::store
