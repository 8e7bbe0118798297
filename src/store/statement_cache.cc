#include "store/statement_cache.h"

#include <sqlite3.h>

namespace mailhook::store {

sqlite3_stmt* StatementCache::Take(std::string_view sql, int* rc) {
  auto it = entries_.find(sql);
  if (it != entries_.end() && !it->second.busy) {
    it->second.busy = true;
    it->second.last_used = ++clock_;
    *rc = SQLITE_OK;
    return it->second.stmt;
  }
  sqlite3_stmt* stmt = nullptr;
  ++prepares_;
  // PERSISTENT: SQLite keeps the statement out of its small lookaside memory,
  // which is meant for short-lived objects.
  *rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
  if (*rc != SQLITE_OK || stmt == nullptr) return stmt;  // nullptr: an error, or SQL without a statement
  // Busy in the cache already: this one is an extra for re-entrant use, and
  // Give finalizes it. (Also when SQLite's copy of the text differs from
  // `sql`, e.g. a trailing ';': then the text is never cached, only prepared.)
  if (it == entries_.end()) {
    while (entries_.size() >= kCapacity && EvictIdle()) {
    }
    entries_.emplace(std::string_view(sqlite3_sql(stmt)), Entry{stmt, true, ++clock_});
  }
  return stmt;
}

void StatementCache::Give(sqlite3_stmt* stmt) {
  if (stmt == nullptr) return;
  // Reset ends the statement's read transaction at once; clearing the
  // bindings drops pointers into the caller's buffers (SQLITE_STATIC).
  sqlite3_reset(stmt);
  sqlite3_clear_bindings(stmt);
  auto it = entries_.find(std::string_view(sqlite3_sql(stmt)));
  if (it != entries_.end() && it->second.stmt == stmt) {
    it->second.busy = false;
    it->second.last_used = ++clock_;
    return;
  }
  sqlite3_finalize(stmt);
}

bool StatementCache::EvictIdle() {
  auto oldest = entries_.end();
  for (auto it = entries_.begin(); it != entries_.end(); ++it) {
    if (!it->second.busy && (oldest == entries_.end() || it->second.last_used < oldest->second.last_used)) oldest = it;
  }
  if (oldest == entries_.end()) return false;  // all in use: over kCapacity until they come back
  sqlite3_stmt* stmt = oldest->second.stmt;
  entries_.erase(oldest);  // first: the key is the statement's own text
  sqlite3_finalize(stmt);
  return true;
}

void StatementCache::Clear() {
  for (auto it = entries_.begin(); it != entries_.end();) {
    sqlite3_stmt* stmt = it->second.stmt;
    it = entries_.erase(it);
    sqlite3_finalize(stmt);
  }
}

}  // namespace mailhook::store
