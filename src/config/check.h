#pragma once
/// PrintCheck: the output and exit code of `mailhook check -c FILE` (without
/// --connect): every config error on its own line as FILE:LINE:COL: message,
/// or a one-line summary of what would be watched and where events go.

#include <ostream>

#include "config/config.h"

namespace mailhook::config {

/// Exit code of `mailhook check` for a valid config.
inline constexpr int kCheckOk = 0;
/// Exit code of `mailhook check` for an invalid config (CONTRACT: 2).
inline constexpr int kCheckInvalid = 2;

/// Prints the errors (one per line) or an OK summary to `out`; returns
/// kCheckOk or kCheckInvalid. Never prints secret values.
int PrintCheck(const LoadResult& result, std::ostream& out);

}  // namespace mailhook::config
