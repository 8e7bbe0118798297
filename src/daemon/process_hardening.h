#pragma once
/// KeepSecretsOutOfCoreDumps: `mailhook run` holds the IMAP passwords, signing
/// keys and tokens of the config in memory for its whole life; a core dump
/// (written where the system's core_pattern says, often readable by others)
/// or a debugger attached by another process of the same user would expose
/// them. Called once, early in `run`; children are unaffected (exec resets
/// the dumpable flag, and a hook may raise its own core limit).

#include <string>
#include <vector>

namespace mailhook::daemon {

/// Sets PR_SET_DUMPABLE to 0 (no core dump, no ptrace or /proc/PID/mem by
/// other processes of the same user) and RLIMIT_CORE to 0. Returns what could
/// not be done, one line each (empty: all done), for the caller to log.
std::vector<std::string> KeepSecretsOutOfCoreDumps();

}  // namespace mailhook::daemon
