#pragma once
/// `mailhook cluster status -c FILE`: the replicas sharing the config's
/// PostgreSQL store, the accounts each holds and the age of each lease, and
/// which configured accounts no live replica holds right now. And the
/// store's line of `mailhook check --connect`.

#include <ostream>

#include "config/config.h"

namespace mailhook::daemon {

/// Prints the status to `out`. Exit code: 0 printed; 1 the store cannot be
/// read (its error, without the URL's password), or it is not PostgreSQL
/// (SQLite is one node: there is no cluster to show).
int RunClusterStatus(const config::Config& config, std::ostream& out);

/// `check --connect` for a PostgreSQL store: resolves the url (url_file
/// read, url_command run) and connects as each replica will, then reads the
/// schema version. Writes nothing (the first `run` creates or migrates the
/// tables). One line "ok   store …" or "FAIL store …", the URL's password
/// redacted. SQLite in state_dir has nothing to reach: no line. Returns the
/// number of failures (0 or 1).
int CheckStoreConnects(const config::Config& config, std::ostream& out);

}  // namespace mailhook::daemon
