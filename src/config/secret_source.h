#pragma once
/// Where a secret comes from besides the config text: a file (Docker and
/// Kubernetes secrets) or a command's stdout (a password manager, an OAuth2
/// token helper). Errors name the file or command, never the secret.
/// Thread-safe; both block while they run.

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "util/result.h"
#include "util/secret.h"

namespace mailhook::config {

/// How long a `*_command` may run before it is killed (with its group).
inline constexpr auto kSecretCommandTimeout = std::chrono::seconds(10);

/// Reads a `*_file` secret and strips one trailing newline ("\n" or "\r\n"),
/// which editors and `echo` add. An empty result is an error.
util::Result<util::Secret> ReadSecretFile(const std::filesystem::path& path);

/// Runs a `*_command` secret (argv, no shell, kSecretCommandTimeout) and
/// returns its stdout with surrounding whitespace stripped. Errors (not found,
/// non-zero exit, timeout, empty output) name argv[0], never the output.
util::Result<util::Secret> RunSecretCommand(const std::vector<std::string>& argv);

}  // namespace mailhook::config
