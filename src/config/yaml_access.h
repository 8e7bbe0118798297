#pragma once
// YamlAccess: reading one YAML document for the config loader. Every accessor
// reports its own errors (with the node's position) and returns nullopt for
// "absent, null or invalid", so the section parsers (parse_*.cc) stay linear.
// Private to src/config (yaml-cpp types); not thread-safe (one per load).

#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "config/config.h"
#include "util/strings.h"

namespace mailhook::config::internal {

/// The keys a map may have (checked by YamlAccess::CheckKeys).
using Keys = std::span<const std::string_view>;

/// `s` in double quotes, as messages quote names and values.
std::string Q(std::string_view s);
using util::Lower;
/// A whole decimal number; nullopt when empty, signed or not all digits.
std::optional<uint64_t> ParseUInt(std::string_view s);

/// Errors and typed accessors over one document.
class YamlAccess {
 public:
  YamlAccess(std::string file, std::filesystem::path base_dir)
      : file_(std::move(file)), base_dir_(std::move(base_dir)) {}

 protected:
  // ---- errors ----
  void Fail(const YAML::Mark& mark, std::string message);

  void Fail(const YAML::Node& at, std::string message);

  // ---- structure ----
  /// Checks that `node` is a map whose keys are all in `allowed`, once each.
  bool CheckKeys(const YAML::Node& node, Keys allowed, const std::string& where);

  static bool Present(const YAML::Node& node);

  /// Expands ${...} in a scalar; reports problems against `key`.
  std::optional<std::string> Expand(const YAML::Node& node, std::string_view key, const std::string& where);

  /// A scalar value; nullopt when absent/null (no error) or invalid (reported).
  std::optional<std::string> Str(const YAML::Node& map, std::string_view key, const std::string& where);

  std::optional<std::string> Required(const YAML::Node& map, std::string_view key, const std::string& where,
                                      std::string_view example);

  std::optional<bool> Bool(const YAML::Node& map, std::string_view key, const std::string& where);

  std::optional<uint64_t> UInt(const YAML::Node& map, std::string_view key, const std::string& where,
                               std::string_view what = "a whole number of bytes");

  std::optional<uint16_t> Port(const YAML::Node& node, const std::string& text, std::string_view key,
                               const std::string& where, bool allow_zero = false);

  std::optional<Duration> DurationValue(const YAML::Node& node, const std::string& text, std::string_view key,
                                        const std::string& where);

  std::optional<Duration> Dur(const YAML::Node& map, std::string_view key, const std::string& where);

  template <typename E>
  std::optional<E> Enum(const YAML::Node& map, std::string_view key, const std::string& where,
                        std::initializer_list<std::pair<std::string_view, E>> values) {
    auto s = Str(map, key, where);
    if (!s) return std::nullopt;
    for (const auto& [name, value] : values) {
      if (*s == name) return value;
    }
    std::string choices;
    for (const auto& v : values) choices += (choices.empty() ? "" : " | ") + std::string(v.first);
    Fail(map[std::string(key)], Q(key) + " in " + where + " must be one of " + choices + ", not " + Q(*s));
    return std::nullopt;
  }

  /// A list of scalars (each expanded); entries come with their nodes for positions.
  std::optional<std::vector<std::pair<std::string, YAML::Node>>> ListNodes(const YAML::Node& map, std::string_view key,
                                                                           const std::string& where,
                                                                           std::string_view example);

  std::optional<std::vector<std::string>> List(const YAML::Node& map, std::string_view key, const std::string& where,
                                               std::string_view example);

  std::optional<std::vector<Duration>> DurList(const YAML::Node& map, std::string_view key, const std::string& where);

  std::string file_;
  std::filesystem::path base_dir_;  // relative *_file paths start here
  std::vector<ConfigError> errors_;
};

}  // namespace mailhook::config::internal
