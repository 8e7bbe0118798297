#pragma once
/// `mailhook store migrate --from SQLITE --to URL`: moves a single-node
/// SQLite state (watermarks, outbox, dead letters, delivered markers,
/// post-actions, fingerprints, attempts, smtp replies) into an empty
/// PostgreSQL store, so replicas go on where the one node stopped: no event
/// sent again, none skipped (store/export.h, pgstore/pg_import.h).
///
/// The source is only read: a user goes back by not setting store.url.

#include <ostream>
#include <string>

namespace mailhook::daemon {

/// Where to migrate from and to.
struct StoreMigrateArgs {
  /// A state_dir, the mailhook.db in one, or `sqlite:PATH`.
  std::string from = {};
  /// A postgresql:// URL, or (when `to_file` is set) empty.
  std::string to = {};
  /// A file holding the URL, so its password need not be on the command line.
  std::string to_file = {};
};

/// Runs the migration, printing what it moved (rows per table) or why not
/// to `out`, never the URL's password. Exit code: 0 moved; 1 nothing moved
/// (a daemon holds the source's state_dir, the destination already holds a
/// state, a store failed: the message names the cause and the fix).
int RunStoreMigrate(const StoreMigrateArgs& args, std::ostream& out);

}  // namespace mailhook::daemon
