#include "daemon/configured_store.h"

#include <filesystem>
#include <utility>

#ifdef MAILHOOK_HAVE_PGSTORE
#include "pgstore/lease_keeper.h"
#include "pgstore/pg_store.h"
#include "pgstore/pg_url.h"
#endif

namespace mailhook::daemon {

namespace {

util::Result<ConfiguredStore> PostgresStore(const config::StoreLocation& location, std::chrono::milliseconds lease_ttl,
                                            const pgstore::LeaseKeeper* keeper) {
#ifdef MAILHOOK_HAVE_PGSTORE
  ConfiguredStore chosen{config::StoreKind::kPostgres, {}, pgstore::RedactUrl(location.url.reveal())};
  pgstore::PgStoreOptions bound;
  bound.replica_ttl = lease_ttl;
  if (keeper) {
    bound.replica_id = keeper->replica_id();
    bound.fences = keeper->fences();
  }
  chosen.open = [url = location.url, bound] { return pgstore::PgStore::Open(url.reveal(), bound); };
  return chosen;
#else
  (void)location;
  (void)lease_ttl;
  (void)keeper;
  return util::Error("store.no_postgres", util::RetryClass::kNeedsOperator,
                     "this mailhook was built without PostgreSQL (libpq-dev was missing at build time); install "
                     "libpq-dev and rebuild, or remove store.url to use SQLite in state_dir");
#endif
}

}  // namespace

util::Result<ConfiguredStore> ConfigureStore(const config::StoreLocation& location, const std::string& state_dir,
                                             std::chrono::milliseconds lease_ttl) {
  return ConfigureStore(location, state_dir, lease_ttl, nullptr);
}

util::Result<ConfiguredStore> ConfigureStore(const config::StoreLocation& location, const std::string& state_dir,
                                             std::chrono::milliseconds lease_ttl, const pgstore::LeaseKeeper* keeper) {
  if (location.kind == config::StoreKind::kPostgres) return PostgresStore(location, lease_ttl, keeper);
  if (!location.sqlite_file.empty()) {
    // Refused by the config (config::CheckStoreBuilt): the state_dir lock
    // would not cover a file elsewhere.
    return util::Error("store.sqlite_path", util::RetryClass::kNeedsOperator,
                       "a SQLite file outside state_dir is not supported; remove store.url");
  }
  return ConfiguredStore{config::StoreKind::kSqlite, store::SqliteStoreOpener(state_dir),
                         (std::filesystem::path(state_dir) / "mailhook.db").string()};
}

util::Result<ConfiguredStore> ConfigureStore(const config::Config& config) {
  auto location = config::ResolveStore(config.store);
  if (!location.ok()) return location.error();
  return ConfigureStore(*location, config.state_dir, config.store.lease_ttl);
}

}  // namespace mailhook::daemon
