#pragma once
/// StoreUrl: what a `store.url` names — PostgreSQL (`postgresql://` or
/// `postgres://`) or a SQLite file (`sqlite:PATH`, absolute) — and whether
/// this build can open it. The URL may carry a password, so errors name the
/// key, the scheme (only when it looks like one) and the fix, never the rest
/// of the value. Pure functions except ResolveStore (it reads a url_file or
/// runs a url_command); thread-safe.

#include <chrono>
#include <filesystem>
#include <string_view>

#include "config/config.h"
#include "util/result.h"
#include "util/secret.h"

namespace mailhook::config {

/// store.lease_ttl bounds: below 5s a GC pause or a slow commit loses an
/// account; above 10 min a dead replica's accounts wait that long.
inline constexpr Duration kMinLeaseTtl = std::chrono::seconds(5);
inline constexpr Duration kMaxLeaseTtl = std::chrono::minutes(10);

/// Which backend a store location is.
enum class StoreKind { kSqlite, kPostgres };

/// Where the state lives, as the store opener needs it.
struct StoreLocation {
  StoreKind kind = StoreKind::kSqlite;
  /// kSqlite from `sqlite:PATH`: the database file; empty: `<state_dir>/mailhook.db`.
  std::filesystem::path sqlite_file;
  /// kPostgres: the connection URL as written (log it only through pgstore's RedactUrl).
  util::Secret url;
};

/// Classifies one store URL; `key` names it in errors ("store.url",
/// "the output of store.url_command").
util::Result<StoreLocation> ParseStoreUrl(const util::Secret& url, std::string_view key);

/// Whether this build can open `location`: SQLite in state_dir, and
/// PostgreSQL when it was built with libpq (MAILHOOK_HAVE_PGSTORE; replicas
/// sharing the accounts, issue #11). A SQLite file elsewhere is refused: the
/// state_dir lock would not cover it.
util::Status CheckStoreBuilt(const StoreLocation& location, std::string_view key);

/// The key the url was given with: "store.url", "store.url_file" or
/// "store.url_command" (for CheckStoreBuilt's message).
std::string_view StoreUrlKey(const StoreConfig& store);

/// The store `store` names: SQLite in state_dir without a url, else the url
/// resolved (url_file read, url_command run) and classified. For start-up
/// and `check --connect`, where a url_command may run.
util::Result<StoreLocation> ResolveStore(const StoreConfig& store);

}  // namespace mailhook::config
