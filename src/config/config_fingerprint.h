#pragma once
/// ConfigFingerprint: what a reload compares. Each account and each target
/// (webhook, hook, smtp) of a config file has a canonical form: its YAML node
/// written with sorted keys (scalars as the file gives them: a secret is
/// compared by its source — the inline text, the *_file path, the
/// *_command argv — never by a resolved value), plus the top-level keys that
/// feed it (today `limits` for accounts). Comparing nodes instead of the
/// parsed structs includes a key added to the loader without an edit here.
/// A key absent and the same key given with its default compare different:
/// the harmless direction (a restart that was not needed).
///
/// The keys a running daemon cannot change (state_dir, http, log, store) are
/// fingerprinted separately: a reload reports them as needing a restart.
/// Pure functions; thread-safe.

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"
#include "util/result.h"

namespace mailhook::config {

/// Canonical forms by name.
struct ConfigFingerprint {
  std::map<std::string, std::string> accounts;      ///< account name → canonical form
  std::map<std::string, std::string> targets;       ///< "webhook:<name>"/"hook:<name>"/"smtp:<name>" → form
  std::map<std::string, std::string> restart_only;  ///< "state_dir", "http", "log", "store" → form ("" absent)
};

/// The fingerprint of a config text that LoadConfig accepted (a text it
/// rejects may give an error here, or a fingerprint of what could be read).
util::Result<ConfigFingerprint> FingerprintConfig(const std::string& text);

/// What differs between the running config and a new one. Names are sorted.
struct ConfigChanges {
  std::vector<std::string> accounts_added, accounts_removed, accounts_changed;
  std::vector<std::string> targets_added, targets_removed, targets_changed;  ///< "<kind>:<name>" (TargetId)
  std::vector<std::string> restart_needed;  ///< top-level keys kept at their running value
  bool empty() const;
};

ConfigChanges CompareConfigs(const ConfigFingerprint& running, const ConfigFingerprint& next);

/// One read of a config file: what LoadConfig makes of it, and its
/// fingerprint when it loaded (the daemon compares the next reload with it).
struct LoadedConfig {
  LoadResult result;
  std::optional<ConfigFingerprint> fingerprint;
};

/// LoadConfig and FingerprintConfig on the same bytes (a file edited between
/// two reads cannot give a fingerprint of another text).
LoadedConfig LoadConfigWithFingerprint(const std::string& path);

}  // namespace mailhook::config
