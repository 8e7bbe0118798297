#pragma once
/// ConfiguredStore: the daemon's state as the config's `store:` names it —
/// SQLite in state_dir without a url, PostgreSQL for a postgresql:// url —
/// chosen once at start (a url_command runs here, not at every connection)
/// and handed down as a store::StoreOpener, so the dispatcher, the watchers'
/// pool and the reply ledger never name a backend.
///
/// PostgreSQL needs a build with libpq (mh_pgstore); without it the choice
/// fails with a message naming the missing package.

#include <chrono>
#include <string>

#include "config/config.h"
#include "config/store_url.h"
#include "store/open_store.h"
#include "util/result.h"

namespace mailhook::pgstore {
class LeaseKeeper;
}  // namespace mailhook::pgstore

namespace mailhook::daemon {

/// The chosen store.
struct ConfiguredStore {
  config::StoreKind kind = config::StoreKind::kSqlite;
  /// Opens one more connection (any thread).
  store::StoreOpener open;
  /// Where it is, for logs and errors: the SQLite file, or the URL with its
  /// password replaced by <redacted>.
  std::string where;
};

/// The store `config.store` names (config::ResolveStore: a url_file is read,
/// a url_command run, here and only here). PostgreSQL stores are opened as
/// a replica without fencing (one node); the cluster's lease keeper passes
/// its own FenceSource when it wires in (issue #11).
util::Result<ConfiguredStore> ConfigureStore(const config::Config& config);

/// The same for an already resolved location (tests, `store migrate`).
util::Result<ConfiguredStore> ConfigureStore(const config::StoreLocation& location, const std::string& state_dir,
                                             std::chrono::milliseconds lease_ttl);

/// The same for a replica of a cluster (issue #11): PostgreSQL stores write
/// as `keeper`'s replica (the outbox's lease_owner) and check its fences at
/// every commit of events and watermark, so a replica that lost an account
/// writes nothing for it. `keeper` must outlive every store opened; null is
/// the overload above. SQLite ignores it.
util::Result<ConfiguredStore> ConfigureStore(const config::StoreLocation& location, const std::string& state_dir,
                                             std::chrono::milliseconds lease_ttl, const pgstore::LeaseKeeper* keeper);

}  // namespace mailhook::daemon
