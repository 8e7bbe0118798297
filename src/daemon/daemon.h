#pragma once
/// Daemon: wires the pipeline for `mailhook run` — one FolderWatcher per
/// (account, folder), the delivery Dispatcher, the HTTP health server — and
/// owns the shutdown order: watchers (log out) → dispatcher → HTTP.

#include <memory>
#include <ostream>
#include <string>

#include "config/config.h"
#include "daemon/config_reload.h"
#include "daemon/stop_signal.h"

namespace mailhook::daemon {

/// Runs until `stop` fires; returns the process exit code (0 clean stop,
/// 1 runtime failure such as an unwritable state_dir or a busy HTTP port).
/// Each time `reload.requested` fires (SIGHUP), reloads reload.path
/// (config_reload.h).
int RunDaemon(const config::Config& config, const std::string& version, StopSignal& stop,
              const ReloadOptions& reload = {});

/// `mailhook check --connect`: resolves every secret (runs each *_command,
/// as `run` does), logs in to every account and selects every folder,
/// printing one line per folder and target. Returns 0 when all succeeded, else 1.
int CheckConnect(const config::Config& config, std::ostream& out);

}  // namespace mailhook::daemon
