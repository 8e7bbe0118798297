#pragma once
/// OpenStore: the one way to open the daemon's durable state, whatever its
/// backend. A StoreSpec names where the state lives; today that is SQLite
/// (<state_dir>/mailhook.db, or the file of a `sqlite:PATH` url). Callers get
/// the abstract Store and never name a backend, so a second one (issue #11:
/// PostgreSQL) is chosen here and nowhere else.

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "store/store.h"
#include "util/result.h"

namespace mailhook::store {

/// Where the state lives.
struct StoreSpec {
  /// The daemon's state directory: the SQLite file when `url` is empty.
  std::string state_dir = {};
  /// Empty: SQLite in state_dir. `sqlite:PATH`: the SQLite file at PATH (its
  /// directory is created 0700 like state_dir). Other schemes are refused.
  std::string url = {};
  /// PostgreSQL only (not used yet): how long an account stays with a
  /// replica that stopped renewing its lease.
  std::chrono::milliseconds lease_ttl = std::chrono::seconds(30);
};

/// Opens (creating when missing) and migrates the store `spec` names. Cheap
/// enough to do once per thread: no housekeeping here (Store::Housekeep).
util::Result<std::unique_ptr<Store>> OpenStore(const StoreSpec& spec);

/// Opens one more connection to the daemon's state: each thread that writes
/// (a dispatcher, a pool of watchers, the reply ledger) opens its own. The
/// daemon chooses the backend once (daemon/configured_store.h) and hands the
/// opener down, so no library below it names a backend or a state_dir.
/// Called from any thread; each call returns a new, independent Store.
using StoreOpener = std::function<util::Result<std::unique_ptr<Store>>()>;

/// The opener of the SQLite store in `state_dir` (OpenStore({.state_dir})).
StoreOpener SqliteStoreOpener(std::string state_dir);

}  // namespace mailhook::store
