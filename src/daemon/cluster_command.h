#pragma once
/// `mailhook cluster status -c FILE`: the replicas sharing the config's
/// PostgreSQL store, the accounts each holds and the age of each lease, and
/// which configured accounts no live replica holds right now.

#include <ostream>

#include "config/config.h"

namespace mailhook::daemon {

/// Prints the status to `out`. Exit code: 0 printed; 1 the store cannot be
/// read (its error, without the URL's password), or it is not PostgreSQL
/// (SQLite is one node: there is no cluster to show).
int RunClusterStatus(const config::Config& config, std::ostream& out);

}  // namespace mailhook::daemon
