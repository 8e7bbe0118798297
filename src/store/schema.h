#pragma once
/// The database schema (version 6) and its migrations.

#include "store/db.h"
#include "util/result.h"

namespace mailhook::store {

/// Brings the schema to the current version, one step per version, in one
/// transaction. A file of a newer version is refused (store.schema): this
/// mailhook would not understand its rows.
util::Status Migrate(Db& db);

}  // namespace mailhook::store
