#pragma once
/// ExpandEnv: replaces ${NAME} and ${NAME:-default} in one config value with
/// environment variables. Applied to each YAML scalar after parsing (never to
/// the raw text), so a value cannot inject YAML and positions stay exact.
/// Thread-safety: as safe as the lookup function (getenv: no concurrent setenv).

#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace mailhook::config {

/// The expanded text and what went wrong; text is meaningful only if ok().
struct Expansion {
  std::string text;
  std::vector<std::string> missing;    ///< ${NAME} whose variable is not set
  std::vector<std::string> malformed;  ///< why a "${" could not be read
  bool ok() const { return missing.empty() && malformed.empty(); }
};

/// Looks a variable up; nullptr when unset.
using EnvLookup = std::function<const char*(const std::string&)>;

/// Rules: ${NAME} (NAME = [A-Za-z_][A-Za-z0-9_]*) must be set (an empty value
/// is allowed); ${NAME:-default} uses default when NAME is unset or empty (as in
/// sh); $${ is a literal "${"; a '$' not followed by '{' is kept as is.
Expansion ExpandEnv(std::string_view text, const EnvLookup& lookup);

/// ExpandEnv with the process environment.
Expansion ExpandEnv(std::string_view text);

}  // namespace mailhook::config
