#include "config/yaml_access.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <set>

#include "config/expand.h"

namespace mailhook::config::internal {
namespace {

size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t subst = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, subst});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

/// The known key closest to a misspelt one, if any is close enough to be a typo.
std::optional<std::string_view> Suggest(std::string_view key, Keys allowed) {
  std::optional<std::string_view> best;
  size_t best_distance = 3;  // at most two edits
  for (auto candidate : allowed) {
    size_t d = EditDistance(Lower(key), candidate);
    if (d < best_distance && d < candidate.size()) {
      best = candidate;
      best_distance = d;
    }
  }
  return best;
}

bool AllDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace

std::string Q(std::string_view s) { return "\"" + std::string(s) + "\""; }

std::optional<uint64_t> ParseUInt(std::string_view s) {
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

// ---- errors ----
void YamlAccess::Fail(const YAML::Mark& mark, std::string message) {
  int line = mark.line >= 0 ? mark.line + 1 : 0;
  int column = mark.column >= 0 ? mark.column + 1 : 0;
  errors_.push_back({file_, line, column, std::move(message)});
}

void YamlAccess::Fail(const YAML::Node& at, std::string message) { Fail(at.Mark(), std::move(message)); }

// ---- structure ----
/// Checks that `node` is a map whose keys are all in `allowed`, once each.
bool YamlAccess::CheckKeys(const YAML::Node& node, Keys allowed, const std::string& where) {
  if (!node.IsMap()) {
    Fail(node, where + " must be a map of key: value lines");
    return false;
  }
  std::set<std::string> seen;
  for (const auto& kv : node) {
    const YAML::Node& key = kv.first;
    std::string k = key.IsScalar() ? key.Scalar() : std::string("?");
    if (!seen.insert(k).second) {
      Fail(key, "key " + Q(k) + " appears twice in " + where + "; keep one");
      continue;
    }
    if (std::find(allowed.begin(), allowed.end(), k) != allowed.end()) continue;
    std::string message = "unknown key " + Q(k) + " in " + where;
    if (auto s = Suggest(k, allowed)) {
      message += " (did you mean " + Q(*s) + "?)";
    } else {
      message += "; known keys are:";
      for (auto a : allowed) message += " " + std::string(a);
    }
    Fail(key, std::move(message));
  }
  return true;
}

bool YamlAccess::Present(const YAML::Node& node) { return node.IsDefined() && !node.IsNull(); }

/// Expands ${...} in a scalar; reports problems against `key`.
std::optional<std::string> YamlAccess::Expand(const YAML::Node& node, std::string_view key, const std::string& where) {
  Expansion e = ExpandEnv(node.Scalar());
  for (const auto& name : e.missing) {
    Fail(node, "environment variable " + Q(name) + " is not set (used by " + Q(key) + " in " + where +
                   "); set it, or write ${" + name + ":-default}");
  }
  for (const auto& why : e.malformed) Fail(node, "in " + Q(key) + " of " + where + ": " + why);
  if (!e.ok()) return std::nullopt;
  return std::move(e.text);
}

/// A scalar value; nullopt when absent/null (no error) or invalid (reported).
std::optional<std::string> YamlAccess::Str(const YAML::Node& map, std::string_view key, const std::string& where) {
  YAML::Node node = map[std::string(key)];
  if (!Present(node)) return std::nullopt;
  if (!node.IsScalar()) {
    Fail(node, Q(key) + " in " + where + " must be a single value, not a " + (node.IsSequence() ? "list" : "map"));
    return std::nullopt;
  }
  return Expand(node, key, where);
}

std::optional<std::string> YamlAccess::Required(const YAML::Node& map, std::string_view key, const std::string& where,
                                                std::string_view example) {
  size_t before = errors_.size();
  auto value = Str(map, key, where);
  if (!value && errors_.size() == before) {
    Fail(map, where + " has no " + Q(key) + "; add " + std::string(key) + ": " + std::string(example));
  } else if (value && value->empty()) {
    Fail(map[std::string(key)], Q(key) + " in " + where + " is empty; give it a value, e.g. " + std::string(example));
    return std::nullopt;
  }
  return value;
}

std::optional<bool> YamlAccess::Bool(const YAML::Node& map, std::string_view key, const std::string& where) {
  auto s = Str(map, key, where);
  if (!s) return std::nullopt;
  std::string v = Lower(*s);
  if (v == "true" || v == "yes" || v == "on") return true;
  if (v == "false" || v == "no" || v == "off") return false;
  Fail(map[std::string(key)], Q(key) + " in " + where + " must be true or false, not " + Q(*s));
  return std::nullopt;
}

std::optional<uint64_t> YamlAccess::UInt(const YAML::Node& map, std::string_view key, const std::string& where,
                                         std::string_view what) {
  auto s = Str(map, key, where);
  if (!s) return std::nullopt;
  auto v = ParseUInt(*s);
  if (!v) {
    Fail(map[std::string(key)], Q(key) + " in " + where + " must be " + std::string(what) + ", not " + Q(*s));
  }
  return v;
}

std::optional<uint16_t> YamlAccess::Port(const YAML::Node& node, const std::string& text, std::string_view key,
                                         const std::string& where, bool allow_zero) {
  auto v = ParseUInt(text);
  if (!v || (*v == 0 && !allow_zero) || *v > 65535) {
    Fail(node, Q(text) + " is not a valid " + std::string(key) + " in " + where + "; use a number from 1 to 65535");
    return std::nullopt;
  }
  return static_cast<uint16_t>(*v);
}

std::optional<Duration> YamlAccess::DurationValue(const YAML::Node& node, const std::string& text, std::string_view key,
                                                  const std::string& where) {
  if (auto d = ParseDuration(text)) {
    if (d->count() > 0) return d;
    Fail(node, Q(key) + " in " + where + " must be longer than 0; write e.g. 30s");
    return std::nullopt;
  }
  if (AllDigits(text)) {
    Fail(node, Q(text) + " for " + Q(key) + " in " + where + " has no unit: write " + text + "s (or ms, m, h)");
  } else {
    Fail(node,
         Q(text) + " is not a duration for " + Q(key) + " in " + where + ": write e.g. 500ms, 30s, 5m, 1h or 1h30m");
  }
  return std::nullopt;
}

std::optional<Duration> YamlAccess::Dur(const YAML::Node& map, std::string_view key, const std::string& where) {
  auto s = Str(map, key, where);
  if (!s) return std::nullopt;
  return DurationValue(map[std::string(key)], *s, key, where);
}

/// A list of scalars (each expanded); entries come with their nodes for positions.
std::optional<std::vector<std::pair<std::string, YAML::Node>>> YamlAccess::ListNodes(const YAML::Node& map,
                                                                                     std::string_view key,
                                                                                     const std::string& where,
                                                                                     std::string_view example) {
  YAML::Node node = map[std::string(key)];
  if (!Present(node)) return std::nullopt;
  if (!node.IsSequence()) {
    Fail(node, Q(key) + " in " + where + " must be a list, e.g. " + std::string(key) + ": " + std::string(example));
    return std::nullopt;
  }
  std::vector<std::pair<std::string, YAML::Node>> out;
  bool ok = true;
  for (const auto& item : node) {
    if (!item.IsScalar()) {
      Fail(item, "each entry of " + Q(key) + " in " + where + " must be a single value");
      ok = false;
      continue;
    }
    auto v = Expand(item, key, where);
    if (!v) {
      ok = false;
      continue;
    }
    out.emplace_back(std::move(*v), item);
  }
  if (!ok) return std::nullopt;
  return out;
}

std::optional<std::vector<std::string>> YamlAccess::List(const YAML::Node& map, std::string_view key,
                                                         const std::string& where, std::string_view example) {
  auto nodes = ListNodes(map, key, where, example);
  if (!nodes) return std::nullopt;
  std::vector<std::string> out;
  for (auto& [v, n] : *nodes) out.push_back(std::move(v));
  return out;
}

std::optional<std::vector<Duration>> YamlAccess::DurList(const YAML::Node& map, std::string_view key,
                                                         const std::string& where) {
  auto nodes = ListNodes(map, key, where, "[5s, 5m, 30m, 2h]");
  if (!nodes) return std::nullopt;
  std::vector<Duration> out;
  bool ok = true;
  for (const auto& [text, node] : *nodes) {
    auto d = DurationValue(node, text, key, where);
    if (d) out.push_back(*d);
    ok = ok && d.has_value();
  }
  if (!ok) return std::nullopt;
  return out;
}

}  // namespace mailhook::config::internal
