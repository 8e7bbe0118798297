#include "daemon/store_migrate_command.h"

#include <filesystem>
#include <memory>
#include <string_view>

#include "config/store_url.h"
#include "daemon/state_dir_lock.h"
#include "store/export.h"

#ifdef MAILHOOK_HAVE_PGSTORE
#include "pgstore/pg_connection.h"
#include "pgstore/pg_import.h"
#include "pgstore/pg_url.h"
#endif

namespace mailhook::daemon {

#ifdef MAILHOOK_HAVE_PGSTORE
namespace {

/// The SQLite state `--from` names: its database file and the state_dir
/// whose lock a running daemon holds.
struct SqliteSource {
  std::string db_path;
  std::string state_dir;
};

SqliteSource SourceOf(std::string_view from) {
  constexpr std::string_view kScheme = "sqlite:";
  if (from.starts_with(kScheme)) from.remove_prefix(kScheme.size());
  std::filesystem::path path(from);
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) return {(path / "mailhook.db").string(), path.string()};
  const std::filesystem::path dir = path.parent_path();
  return {path.string(), dir.empty() ? "." : dir.string()};
}

// The destination URL, from --to or read from --to-file; PostgreSQL only.
util::Result<util::Secret> DestinationOf(const StoreMigrateArgs& args) {
  config::StoreConfig store;
  store.url = args.to_file.empty() ? config::SecretRef(util::Secret(args.to)) : config::SecretRef::File(args.to_file);
  auto location = config::ResolveStore(store);
  if (!location.ok()) return location.error();
  if (location->kind != config::StoreKind::kPostgres) {
    return util::Error("store.migrate.to", util::RetryClass::kNeedsOperator,
                       "--to must be a postgresql:// URL (the store replicas share); the source is SQLite already");
  }
  return location->url;
}

void PrintCounts(const pgstore::ImportCounts& counts, const std::string& from, const std::string& to,
                 std::ostream& out) {
  out << "migrated " << from << " to " << to << ":\n";
  for (const auto& [table, rows] : counts) out << "  " << table << " " << rows << "\n";
  out << "set store.url to this database in every replica's config; the SQLite state was left as it was (do not "
         "start a daemon on it again: it would send its outbox a second time)\n";
}

}  // namespace

int RunStoreMigrate(const StoreMigrateArgs& args, std::ostream& out) {
  const SqliteSource source = SourceOf(args.from);
  // Before anything is locked or connected to: a typo touches nothing.
  std::error_code ec;
  if (!std::filesystem::is_regular_file(source.db_path, ec)) {
    out << "cannot migrate: there is no SQLite state at " << source.db_path
        << ": name the daemon's state_dir, its mailhook.db, or sqlite:PATH\n";
    return 1;
  }
  auto to = DestinationOf(args);
  if (!to.ok()) {
    out << "cannot migrate: " << to.error().message() << "\n";
    return 1;
  }
  const std::string shown = pgstore::RedactUrl(to->reveal());
  // A daemon on the source would go on changing it after the copy: refuse.
  auto lock = StateDirLock::Acquire(source.state_dir);
  if (!lock.ok()) {
    out << "cannot migrate " << source.db_path << ": " << lock.error().message()
        << " (stop the daemon first: the state must not change while it is copied)\n";
    return 1;
  }
  auto conn = pgstore::PgConnection::Connect(to->reveal());
  if (!conn.ok()) {
    out << "cannot reach " << shown << ": " << conn.error().message() << "\n";
    return 1;
  }
  auto counts =
      pgstore::ImportState(**conn, [&](store::ExportSink& sink) { return store::ExportState(source.db_path, sink); });
  if (!counts.ok()) {
    out << "cannot migrate " << source.db_path << " to " << shown
        << ", nothing was copied: " << pgstore::RedactPasswordsOf(to->reveal(), counts.error().message()) << "\n";
    return 1;
  }
  PrintCounts(*counts, source.db_path, shown, out);
  return 0;
}

#else

int RunStoreMigrate(const StoreMigrateArgs&, std::ostream& out) {
  out << "this mailhook was built without PostgreSQL (libpq-dev was missing at build time): it cannot migrate "
         "to a PostgreSQL store\n";
  return 1;
}

#endif

}  // namespace mailhook::daemon
