#pragma once
/// The database schema and its migrations.

#include "store/db.h"
#include "util/result.h"

namespace mailhook::store {

/// Brings the schema to the current version, one step per version, in one
/// transaction. A file of a newer version is refused (store.schema): this
/// mailhook would not understand its rows.
util::Status Migrate(Db& db);

/// The schema version Migrate brings a file to (PRAGMA user_version).
int SchemaVersion();

}  // namespace mailhook::store
