#pragma once
/// `mailhook deadletters list|replay|drop`: works on the store while the
/// daemon runs (SQLite WAL); a running daemon picks replayed rows up on its
/// next look at the outbox.

#include <ostream>
#include <string>
#include <vector>

#include "config/config.h"

namespace mailhook::daemon {

/// Returns 0 on success, 1 when the store cannot be used, 2 for bad ids.
int RunDeadLettersCommand(const config::Config& config, const std::string& action, const std::vector<std::string>& ids,
                          std::ostream& out);

}  // namespace mailhook::daemon
