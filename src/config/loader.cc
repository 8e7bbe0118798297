// LoadConfig: YAML → Config. The loader walks the document once, checks every
// key against the keys it knows and every value against its rule, and keeps
// going after a problem so that `mailhook check` can list all of them at once.
// Positions come from yaml-cpp marks (0-based; reported 1-based).
#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <span>
#include <sstream>
#include <string_view>

#include <yaml-cpp/yaml.h>

#include "config/config.h"
#include "config/expand.h"
#include "config/reserved_headers.h"
#include "config/secret_ref.h"

namespace mailhook::config {
namespace {

using Keys = std::span<const std::string_view>;

constexpr std::string_view kTopKeys[] = {"state_dir", "log", "http", "limits", "accounts", "webhooks", "hooks"};
constexpr std::string_view kLimitsKeys[] = {"max_parts", "max_text_bytes", "max_attempts"};
constexpr std::string_view kLogKeys[] = {"level", "format"};
constexpr std::string_view kHttpKeys[] = {"listen"};
constexpr std::string_view kAccountKeys[] = {"name",         "host",          "port",        "tls",
                               "allow_insecure", "tls_verify",  "ca_file",     "username",
                               "password",     "password_file", "password_command", "auth",
                               "oauth2",       "folders",       "start_from",  "idle_refresh",
                               "timeout",      "on_delivered",  "limits"};
constexpr std::string_view kOauth2Keys[] = {"token", "token_file", "token_command"};
constexpr std::string_view kOnDeliveredKeys[] = {"mark_seen", "move_to", "add_flags"};
constexpr std::string_view kWebhookKeys[] = {"name",    "url",        "secret",      "secret_file",
                               "secret_command", "headers", "timeout", "match",
                               "attachments", "max_attachment_bytes", "retry_schedule",
                               "ca_file", "tls_verify", "concurrency", "allow_insecure"};
constexpr std::string_view kHeaderValueKeys[] = {"value", "value_file", "value_command", "prefix"};
constexpr std::string_view kMatchKeys[] = {"accounts", "folders", "from", "subject"};
constexpr std::string_view kHookKeys[] = {"name",        "command",        "timeout",       "match",
                            "attachments", "max_attachment_bytes", "retry_schedule",
                            "concurrency", "env",         "pass_env"};
constexpr std::string_view kEnvValueKeys[] = {"file", "command"};

std::string Q(std::string_view s) { return "\"" + std::string(s) + "\""; }

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// localhost, 127.0.0.0/8 and ::1: plain http there stays on this host.
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

bool ValidName(std::string_view name) {
  if (name.empty()) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
}

/// A valid name close to an invalid one ("Support Team" → "support-team").
std::string NameFix(std::string_view name) {
  std::string out;
  for (char c : Lower(name)) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    out += ok ? c : '-';
  }
  return out.empty() ? "support" : out;
}

bool AllDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::optional<uint64_t> ParseUInt(std::string_view s) {
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

/// RFC 9110 §5.1: a field name is a token.
bool ValidHeaderName(std::string_view s) {
  static constexpr std::string_view kTchar = "!#$%&'*+-.^_`|~";
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || kTchar.find(c) != std::string_view::npos;
  });
}

/// RFC 3501 §9: a flag is "\" atom (system) or an atom (keyword).
bool ValidFlag(std::string_view s) {
  if (s.starts_with('\\')) s.remove_prefix(1);
  static constexpr std::string_view kAtomSpecials = "(){ %*\"\\]";
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return c > 0x20 && c < 0x7f && kAtomSpecials.find(c) == std::string_view::npos;
  });
}

/// Walks one document. Every accessor reports its own errors and returns
/// nullopt for "absent, null or invalid", so callers stay linear.
class Loader {
 public:
  Loader(std::string file, std::filesystem::path base_dir)
      : file_(std::move(file)), base_dir_(std::move(base_dir)) {}

  LoadResult Load(const std::string& text) {
    LoadResult result;
    result.file = file_;
    YAML::Node root;
    try {
      root = YAML::Load(text);
    } catch (const YAML::Exception& e) {
      // yaml-cpp messages describe the syntax, never the value.
      Fail(e.mark, "YAML syntax error: " + e.msg);
      result.errors = std::move(errors_);
      return result;
    }
    Config cfg;
    if (!root || root.IsNull()) {
      errors_.push_back({file_, 0, 0, "the config is empty; see config/minimal.yml for a start"});
    } else if (CheckKeys(root, kTopKeys, "the config")) {
      ParseTop(root, cfg);
    }
    result.errors = std::move(errors_);
    if (result.errors.empty()) result.config = std::move(cfg);
    return result;
  }

 private:
  // ---- errors ----
  void Fail(const YAML::Mark& mark, std::string message) {
    int line = mark.line >= 0 ? mark.line + 1 : 0;
    int column = mark.column >= 0 ? mark.column + 1 : 0;
    errors_.push_back({file_, line, column, std::move(message)});
  }
  void Fail(const YAML::Node& at, std::string message) { Fail(at.Mark(), std::move(message)); }

  // ---- structure ----
  /// Checks that `node` is a map whose keys are all in `allowed`, once each.
  bool CheckKeys(const YAML::Node& node, Keys allowed, const std::string& where) {
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

  static bool Present(const YAML::Node& node) { return node.IsDefined() && !node.IsNull(); }

  /// Expands ${...} in a scalar; reports problems against `key`.
  std::optional<std::string> Expand(const YAML::Node& node, std::string_view key,
                                    const std::string& where) {
    Expansion e = ExpandEnv(node.Scalar());
    for (const auto& name : e.missing) {
      Fail(node, "environment variable " + Q(name) + " is not set (used by " + Q(key) + " in " +
                     where + "); set it, or write ${" + name + ":-default}");
    }
    for (const auto& why : e.malformed) Fail(node, "in " + Q(key) + " of " + where + ": " + why);
    if (!e.ok()) return std::nullopt;
    return std::move(e.text);
  }

  /// A scalar value; nullopt when absent/null (no error) or invalid (reported).
  std::optional<std::string> Str(const YAML::Node& map, std::string_view key,
                                 const std::string& where) {
    YAML::Node node = map[std::string(key)];
    if (!Present(node)) return std::nullopt;
    if (!node.IsScalar()) {
      Fail(node, Q(key) + " in " + where + " must be a single value, not a " +
                     (node.IsSequence() ? "list" : "map"));
      return std::nullopt;
    }
    return Expand(node, key, where);
  }

  std::optional<std::string> Required(const YAML::Node& map, std::string_view key,
                                      const std::string& where, std::string_view example) {
    size_t before = errors_.size();
    auto value = Str(map, key, where);
    if (!value && errors_.size() == before) {
      Fail(map, where + " has no " + Q(key) + "; add " + std::string(key) + ": " +
                    std::string(example));
    } else if (value && value->empty()) {
      Fail(map[std::string(key)], Q(key) + " in " + where + " is empty; give it a value, e.g. " +
                                      std::string(example));
      return std::nullopt;
    }
    return value;
  }

  std::optional<bool> Bool(const YAML::Node& map, std::string_view key, const std::string& where) {
    auto s = Str(map, key, where);
    if (!s) return std::nullopt;
    std::string v = Lower(*s);
    if (v == "true" || v == "yes" || v == "on") return true;
    if (v == "false" || v == "no" || v == "off") return false;
    Fail(map[std::string(key)], Q(key) + " in " + where + " must be true or false, not " + Q(*s));
    return std::nullopt;
  }

  std::optional<uint64_t> UInt(const YAML::Node& map, std::string_view key, const std::string& where,
                               std::string_view what = "a whole number of bytes") {
    auto s = Str(map, key, where);
    if (!s) return std::nullopt;
    auto v = ParseUInt(*s);
    if (!v) {
      Fail(map[std::string(key)],
           Q(key) + " in " + where + " must be " + std::string(what) + ", not " + Q(*s));
    }
    return v;
  }

  std::optional<uint16_t> Port(const YAML::Node& node, const std::string& text, std::string_view key,
                               const std::string& where, bool allow_zero = false) {
    auto v = ParseUInt(text);
    if (!v || (*v == 0 && !allow_zero) || *v > 65535) {
      Fail(node, Q(text) + " is not a valid " + std::string(key) + " in " + where +
                     "; use a number from 1 to 65535");
      return std::nullopt;
    }
    return static_cast<uint16_t>(*v);
  }

  std::optional<Duration> DurationValue(const YAML::Node& node, const std::string& text,
                                        std::string_view key, const std::string& where) {
    if (auto d = ParseDuration(text)) {
      if (d->count() > 0) return d;
      Fail(node, Q(key) + " in " + where + " must be longer than 0; write e.g. 30s");
      return std::nullopt;
    }
    if (AllDigits(text)) {
      Fail(node, Q(text) + " for " + Q(key) + " in " + where + " has no unit: write " + text +
                     "s (or ms, m, h)");
    } else {
      Fail(node, Q(text) + " is not a duration for " + Q(key) + " in " + where +
                     ": write e.g. 500ms, 30s, 5m, 1h or 1h30m");
    }
    return std::nullopt;
  }

  std::optional<Duration> Dur(const YAML::Node& map, std::string_view key, const std::string& where) {
    auto s = Str(map, key, where);
    if (!s) return std::nullopt;
    return DurationValue(map[std::string(key)], *s, key, where);
  }

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
  std::optional<std::vector<std::pair<std::string, YAML::Node>>> ListNodes(
      const YAML::Node& map, std::string_view key, const std::string& where, std::string_view example) {
    YAML::Node node = map[std::string(key)];
    if (!Present(node)) return std::nullopt;
    if (!node.IsSequence()) {
      Fail(node, Q(key) + " in " + where + " must be a list, e.g. " + std::string(key) + ": " +
                     std::string(example));
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

  std::optional<std::vector<std::string>> List(const YAML::Node& map, std::string_view key,
                                               const std::string& where, std::string_view example) {
    auto nodes = ListNodes(map, key, where, example);
    if (!nodes) return std::nullopt;
    std::vector<std::string> out;
    for (auto& [v, n] : *nodes) out.push_back(std::move(v));
    return out;
  }

  std::optional<std::vector<Duration>> DurList(const YAML::Node& map, std::string_view key,
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

  // ---- secrets ----
  std::filesystem::path Resolve(const std::string& path) const {
    std::filesystem::path p(path);
    return p.is_relative() && !base_dir_.empty() ? base_dir_ / p : p;
  }

  /// A file secret: the path resolved against the config's directory.
  SecretRef FileRef(const std::string& path, std::string_view key, const std::string& where) const {
    return SecretRef::File(Resolve(path)).WithName(Q(key) + " in " + where);
  }

  /// A command secret; never run here (secret_ref.h says where it runs).
  std::optional<SecretRef> CommandRef(const YAML::Node& node, const std::vector<std::string>& argv,
                                      std::string_view key, const std::string& where) {
    if (argv.empty() || argv[0].empty()) {
      Fail(node, Q(key) + " in " + where + " is empty; give the program and its arguments");
      return std::nullopt;
    }
    return SecretRef::Command(argv).WithName(Q(key) + " in " + where);
  }

  /// Checks what can be checked without running a command (an inline value,
  /// a file's content) with the rule every use applies; reports at `at`.
  std::optional<SecretRef> Checked(const YAML::Node& at, SecretRef ref, SecretRule rule) {
    ref.WithRule(rule);
    if (auto st = ref.CheckWithoutRunning(); !st.ok()) {
      Fail(at, st.error().message());
      return std::nullopt;
    }
    return ref;
  }

  /// One secret given as `<base>`, `<base>_file` or `<base>_command`.
  /// `given` tells whether any of the three keys was present.
  std::optional<SecretRef> SecretValue(const YAML::Node& map, const std::string& base,
                                       const std::string& where, bool* given,
                                       SecretRule rule = SecretRule::kAny,
                                       const std::string& prefix = "") {
    const std::string file_key = base + "_file", command_key = base + "_command";
    int count = Present(map[base]) + Present(map[file_key]) + Present(map[command_key]);
    if (given) *given = count > 0;
    if (count == 0) return std::nullopt;
    if (count > 1) {
      Fail(map, where + " sets more than one of " + base + ", " + file_key + ", " + command_key +
                    "; keep one");
      return std::nullopt;
    }
    if (Present(map[base])) {
      auto v = Str(map, base, where);
      if (v && v->empty()) {
        Fail(map[base], Q(base) + " in " + where + " is empty; set the secret (or use " + file_key + ")");
        return std::nullopt;
      }
      if (!v) return std::nullopt;
      SecretRef ref = SecretRef(util::Secret(std::move(*v))).WithName(Q(base) + " in " + where);
      return Checked(map[base], std::move(ref.WithPrefix(prefix)), rule);
    }
    if (Present(map[file_key])) {
      auto path = Str(map, file_key, where);
      if (!path) return std::nullopt;
      return Checked(map[file_key], std::move(FileRef(*path, file_key, where).WithPrefix(prefix)), rule);
    }
    auto argv = List(map, command_key, where, "[\"pass\", \"show\", \"imap/support\"]");
    if (!argv) return std::nullopt;
    auto ref = CommandRef(map[command_key], *argv, command_key, where);
    if (!ref) return std::nullopt;
    return Checked(map[command_key], std::move(ref->WithPrefix(prefix)), rule);
  }

  // ---- sections ----
  void ParseTop(const YAML::Node& root, Config& cfg) {
    if (Present(root["state_dir"])) {
      auto dir = Required(root, "state_dir", "the config", "/var/lib/mailhook");
      if (dir) cfg.state_dir = *dir;
    }
    if (Present(root["log"]) && CheckKeys(root["log"], kLogKeys, "log")) {
      const YAML::Node log = root["log"];
      if (auto level = Enum<std::string>(log, "level", "log",
                                         {{"trace", "trace"}, {"debug", "debug"}, {"info", "info"},
                                          {"warn", "warn"}, {"error", "error"}})) {
        cfg.log.level = *level;
      }
      if (auto format = Enum<std::string>(log, "format", "log", {{"text", "text"}, {"json", "json"}})) {
        cfg.log.format = *format;
      }
    }
    if (Present(root["http"]) && CheckKeys(root["http"], kHttpKeys, "http")) {
      const YAML::Node http = root["http"];
      if (auto listen = Str(http, "listen", "http")) {
        // Port 0 (any free port, logged at start) is allowed, for tests.
        auto address = HostPort::Parse(*listen);
        if (address.ok()) {
          cfg.http_listen = std::move(address).value();
        } else {
          Fail(http["listen"], "\"listen\" in http: " + address.error().message());
        }
      }
    }

    // Before the accounts: each starts from these and overrides single keys.
    if (Present(root["limits"])) ParseLimits(root["limits"], "limits", cfg.limits);

    YAML::Node accounts = root["accounts"];
    if (!Present(accounts) || (accounts.IsSequence() && accounts.size() == 0)) {
      Fail(Present(accounts) ? accounts : root,
           "no accounts: add an \"accounts:\" list with at least one IMAP account to watch");
    } else if (!accounts.IsSequence()) {
      Fail(accounts, "\"accounts\" must be a list; start each account with \"- name: ...\"");
    } else {
      size_t before = errors_.size();
      for (size_t i = 0; i < accounts.size(); ++i) ParseAccount(accounts[i], i, cfg);
      accounts_ok_ = errors_.size() == before;
    }

    bool any_target = false;
    YAML::Node webhooks = root["webhooks"];
    if (Present(webhooks)) {
      if (!webhooks.IsSequence()) {
        Fail(webhooks, "\"webhooks\" must be a list; start each webhook with \"- name: ...\"");
        any_target = true;  // do not also report "no webhooks"
      } else {
        for (size_t i = 0; i < webhooks.size(); ++i) ParseWebhook(webhooks[i], i, cfg);
        any_target = any_target || webhooks.size() > 0;
      }
    }
    YAML::Node hooks = root["hooks"];
    if (Present(hooks)) {
      if (!hooks.IsSequence()) {
        Fail(hooks, "\"hooks\" must be a list; start each hook with \"- name: ...\"");
        any_target = true;
      } else {
        for (size_t i = 0; i < hooks.size(); ++i) ParseHook(hooks[i], i, cfg);
        any_target = any_target || hooks.size() > 0;
      }
    }
    if (!any_target) {
      Fail(root, "no webhooks and no hooks: add at least one under \"webhooks:\" or \"hooks:\", "
                 "or events have nowhere to go");
    }
  }

  /// The name of a list entry, checked, and how errors refer to the entry.
  std::string EntryName(const YAML::Node& node, const std::string& kind, const std::string& list,
                        size_t index, std::string& name) {
    std::string where = list + "[" + std::to_string(index) + "]";
    if (!node.IsMap()) return where;
    YAML::Node n = node["name"];
    if (!Present(n)) {
      Fail(node, where + " has no \"name\"; add name: " + (kind == "account" ? "support" : "tickets"));
      return where;
    }
    auto value = Str(node, "name", where);
    if (!value) return where;
    if (!ValidName(*value)) {
      Fail(n, "name " + Q(*value) + " in " + where +
                  " must use only a-z, 0-9, '_' and '-' (it appears in metrics and file names); "
                  "e.g. " + Q(NameFix(*value)));
      return where;
    }
    name = *value;
    return kind + " " + Q(name);
  }

  void ParseAccount(const YAML::Node& node, size_t index, Config& cfg) {
    Account a;
    std::string where = EntryName(node, "account", "accounts", index, a.name);
    if (!CheckKeys(node, kAccountKeys, where)) return;
    if (!a.name.empty()) {
      auto [it, inserted] = account_lines_.emplace(a.name, node["name"].Mark().line + 1);
      if (!inserted) {
        Fail(node["name"], "account name " + Q(a.name) + " is already used at line " +
                               std::to_string(it->second) + "; names must be unique");
      }
    }
    if (auto host = Required(node, "host", where, "imap.example.com")) a.host = *host;
    if (auto tls = Enum<TlsMode>(node, "tls", where,
                                 {{"implicit", TlsMode::kImplicit},
                                  {"starttls", TlsMode::kStartTls},
                                  {"none", TlsMode::kNone}})) {
      a.tls = *tls;
    }
    a.port = a.tls == TlsMode::kImplicit ? 993 : 143;
    if (auto port = Str(node, "port", where)) {
      if (auto p = Port(node["port"], *port, "port", where)) a.port = *p;
    }
    if (auto insecure = Bool(node, "allow_insecure", where)) a.allow_insecure = *insecure;
    if (a.tls == TlsMode::kNone && !a.allow_insecure) {
      Fail(node["tls"], "tls: none in " + where +
                            " sends the password in clear text; use tls: implicit or starttls, "
                            "or add allow_insecure: true if this is a trusted local network");
    }
    if (auto verify = Bool(node, "tls_verify", where)) a.tls_verify = *verify;
    RequireInsecureOptIn(node, where, a.tls_verify, a.allow_insecure, "the password and the mail");
    a.ca_file = Str(node, "ca_file", where);
    if (auto user = Required(node, "username", where, "support@example.com")) a.username = *user;
    if (auto auth = Enum<AuthMethod>(node, "auth", where,
                                     {{"login", AuthMethod::kLogin},
                                      {"plain", AuthMethod::kPlain},
                                      {"xoauth2", AuthMethod::kXoauth2}})) {
      a.auth = *auth;
    }
    ParseCredentials(node, where, a);
    if (auto folders = ListNodes(node, "folders", where, "[INBOX]")) {
      a.folders.clear();
      if (folders->empty()) {
        Fail(node["folders"], "\"folders\" in " + where + " is empty; list at least one, e.g. [INBOX]");
      }
      std::set<std::string> seen;
      for (const auto& [folder, fnode] : *folders) {
        if (folder.empty()) {
          Fail(fnode, "a folder name in " + where + " is empty; write e.g. INBOX");
        } else if (!seen.insert(folder).second) {
          Fail(fnode, "folder " + Q(folder) + " is listed twice in " + where + "; keep one");
        } else {
          a.folders.push_back(folder);
        }
      }
    }
    if (auto start = Enum<StartFrom>(node, "start_from", where,
                                     {{"new", StartFrom::kNew},
                                      {"all", StartFrom::kAll},
                                      {"unseen", StartFrom::kUnseen}})) {
      a.start_from = *start;
    }
    if (auto refresh = Dur(node, "idle_refresh", where)) {
      // RFC 2177 §3: servers may drop an IDLE after 30 minutes of inactivity,
      // and clients should re-issue it at least every 29 minutes.
      if (*refresh > std::chrono::minutes(29)) {
        Fail(node["idle_refresh"], "\"idle_refresh\" in " + where +
                                       " is longer than 29m; servers may drop an IDLE after 30 "
                                       "minutes (RFC 2177), use e.g. 25m");
      } else {
        a.idle_refresh = *refresh;
      }
    }
    if (auto timeout = Dur(node, "timeout", where)) a.timeout = *timeout;
    if (Present(node["on_delivered"])) ParseOnDelivered(node["on_delivered"], where, a);
    a.limits = cfg.limits;
    if (Present(node["limits"])) ParseLimits(node["limits"], "limits of " + where, a.limits);
    cfg.accounts.push_back(std::move(a));
  }

  // limits: { max_parts, max_text_bytes, max_attempts }; keys not given keep
  // what `limits` holds already (the defaults, or the top-level values).
  void ParseLimits(const YAML::Node& node, const std::string& where, Limits& limits) {
    if (!CheckKeys(node, kLimitsKeys, where)) return;
    auto in_range = [&](std::string_view key, uint64_t v, uint64_t lo, uint64_t hi, const char* example) {
      if (v >= lo && v <= hi) return true;
      Fail(node[std::string(key)], Q(key) + " in " + where + " must be from " + std::to_string(lo) + " to " +
                                       std::to_string(hi) + ", e.g. " + example);
      return false;
    };
    if (auto v = UInt(node, "max_parts", where, "a whole number"); v && in_range("max_parts", *v, 1, 1000000, "1000")) {
      limits.max_parts = static_cast<uint32_t>(*v);
    }
    if (auto v = UInt(node, "max_text_bytes", where);
        // At most 12 MiB: a body without transfer encoding is read again
        // whole (BINARY) within one IMAP response (16 MiB).
        v && in_range("max_text_bytes", *v, 1024, uint64_t{12} << 20, "4194304")) {
      limits.max_text_bytes = *v;
    }
    if (auto v = UInt(node, "max_attempts", where, "a whole number"); v && in_range("max_attempts", *v, 1, 100, "3")) {
      limits.max_attempts = static_cast<int>(*v);
    }
  }

  void ParseCredentials(const YAML::Node& node, const std::string& where, Account& a) {
    bool has_password = false;
    auto password = SecretValue(node, "password", where, &has_password);
    if (password) a.password = *password;
    YAML::Node oauth2 = node["oauth2"];
    if (Present(oauth2)) {
      if (a.auth != AuthMethod::kXoauth2) {
        Fail(oauth2, "\"oauth2\" in " + where + " is used only with auth: xoauth2; add auth: xoauth2 "
                     "or remove oauth2");
      } else if (has_password) {
        Fail(oauth2, where + " sets both oauth2 and a password; with auth: xoauth2 keep one of them");
      } else if (CheckKeys(oauth2, kOauth2Keys, "oauth2 of " + where)) {
        bool has_token = false;
        auto token = SecretValue(oauth2, "token", "oauth2 of " + where, &has_token);
        if (token) a.password = *token;
        if (!has_token) {
          Fail(oauth2, "oauth2 of " + where + " has no token; add token_command: [...] (a helper "
                       "that prints a fresh access token), token_file or token");
        }
      }
      return;
    }
    if (!has_password) {
      std::string fix = a.auth == AuthMethod::kXoauth2
                            ? "add oauth2: { token_command: [...] } or password_command"
                            : "add password: ${IMAP_PASSWORD}, password_file or password_command";
      Fail(node, where + " has no password; " + fix);
    }
  }

  void ParseOnDelivered(const YAML::Node& node, const std::string& account_where, Account& a) {
    std::string where = "on_delivered of " + account_where;
    if (!CheckKeys(node, kOnDeliveredKeys, where)) return;
    if (auto seen = Bool(node, "mark_seen", where)) a.on_delivered.mark_seen = *seen;
    if (auto move = Str(node, "move_to", where)) {
      if (move->empty()) {
        Fail(node["move_to"], "\"move_to\" in " + where + " is empty; name a folder or write null");
      } else if (std::find(a.folders.begin(), a.folders.end(), *move) != a.folders.end()) {
        Fail(node["move_to"], "\"move_to\" " + Q(*move) + " in " + where +
                                  " is a watched folder; moved messages would be delivered again. "
                                  "Move them to a folder that is not watched");
      } else {
        a.on_delivered.move_to = *move;
      }
    }
    if (auto flags = ListNodes(node, "add_flags", where, "[\"\\\\Flagged\", \"mailhook\"]")) {
      for (const auto& [flag, fnode] : *flags) {
        if (!ValidFlag(flag)) {
          Fail(fnode, "flag " + Q(flag) + " in " + where +
                          " is not an IMAP flag; write \\Flagged or a keyword without spaces or ()*%\"\\]");
        } else {
          a.on_delivered.add_flags.push_back(flag);
        }
      }
    }
  }

  /// A target (webhook or hook) name, unique across both lists: the outbox
  /// stores deliveries by target name.
  void ClaimTargetName(const YAML::Node& node, const std::string& kind, const std::string& name) {
    if (name.empty()) return;
    auto [it, inserted] = target_lines_.emplace(name, std::pair{kind, node["name"].Mark().line + 1});
    if (!inserted) {
      Fail(node["name"], kind + " name " + Q(name) + " is already used by the " + it->second.first +
                             " at line " + std::to_string(it->second.second) +
                             "; webhook and hook names must be unique");
    }
  }

  void ParseMatch(const YAML::Node& node, const std::string& target_where, const Config& cfg,
                  Match& match) {
    std::string where = "match of " + target_where;
    if (!CheckKeys(node, kMatchKeys, where)) return;
    if (auto accounts = ListNodes(node, "accounts", where, "[support]")) {
      for (const auto& [name, anode] : *accounts) {
        if (!account_lines_.contains(name)) {
          Fail(anode, "account " + Q(name) + " in " + where + " is not defined under accounts; "
                      "check the spelling");
        }
        match.accounts.push_back(name);
      }
    }
    if (auto folders = ListNodes(node, "folders", where, "[INBOX]")) {
      for (const auto& [folder, fnode] : *folders) {
        if (folder.empty()) {
          Fail(fnode, "a folder in " + where + " is empty; write e.g. INBOX or \"Support/*\"");
          continue;
        }
        FolderSelector selector(folder);
        // The router's own rule decides, so a pattern that passes here selects
        // at least one folder at run time.
        bool watched = false;
        for (const auto& a : cfg.accounts) {
          bool account_matches = match.accounts.empty() ||
                                 std::find(match.accounts.begin(), match.accounts.end(), a.name) !=
                                     match.accounts.end();
          for (const auto& f : a.folders) watched = watched || (account_matches && selector.Matches(f));
        }
        // Only judged against accounts that loaded cleanly, to avoid a cascade.
        if (!watched && accounts_ok_) {
          Fail(fnode, std::string(selector.is_glob() ? "folder pattern " : "folder ") + Q(folder) +
                          " in " + where +
                          " matches no folder watched by a matching account, so nothing would match; "
                          "add the folder to the account's folders or fix the spelling "
                          "(patterns: * any characters, ? one character)");
        }
        match.folders.push_back(std::move(selector));
      }
    }
    if (auto from = List(node, "from", where, "[\"*@example.com\"]")) match.from = *from;
    if (auto subject = List(node, "subject", where, "[\"*invoice*\"]")) match.subject = *subject;
  }

  /// The keys webhooks and hooks share (DeliveryOptions).
  void ParseDelivery(const YAML::Node& node, const std::string& where, const Config& cfg,
                     DeliveryOptions& d) {
    if (auto t = Dur(node, "timeout", where)) {
      if (*t > kMaxTargetTimeout) {
        Fail(node["timeout"], "\"timeout\" in " + where + " is longer than 10m, the most one "
                              "delivery attempt may take (a claimed event is leased for 15m, "
                              "then another worker would send it again); use at most 10m");
      } else {
        d.timeout = *t;
      }
    }
    if (Present(node["match"])) ParseMatch(node["match"], where, cfg, d.match);
    if (auto mode = Enum<AttachmentMode>(node, "attachments", where,
                                         {{"none", AttachmentMode::kNone},
                                          {"metadata", AttachmentMode::kMetadata},
                                          {"content", AttachmentMode::kContent}})) {
      d.attachments = *mode;
    }
    if (auto max = UInt(node, "max_attachment_bytes", where)) d.max_attachment_bytes = *max;
    d.retry_schedule = DefaultRetrySchedule();
    if (auto schedule = DurList(node, "retry_schedule", where)) d.retry_schedule = *schedule;
    if (auto n = Concurrency(node, where)) d.concurrency = *n;
  }

  void ParseWebhook(const YAML::Node& node, size_t index, Config& cfg) {
    Webhook w;
    std::string where = EntryName(node, "webhook", "webhooks", index, w.name);
    if (!CheckKeys(node, kWebhookKeys, where)) return;
    ClaimTargetName(node, "webhook", w.name);
    if (auto text = Required(node, "url", where, "https://tickets.internal/hooks/email")) {
      // The URL itself is not echoed: some services put a token in it.
      auto url = HttpUrl::Parse(*text);
      if (url.ok()) {
        w.url = std::move(url).value();
      } else {
        Fail(node["url"], "\"url\" in " + where + ": " + url.error().message());
      }
    }
    ParseWebhookSecrets(node, where, w);
    if (Present(node["headers"])) ParseHeaders(node["headers"], where, w);
    ParseDelivery(node, where, cfg, w);
    w.ca_file = Str(node, "ca_file", where);
    if (auto verify = Bool(node, "tls_verify", where)) w.tls_verify = *verify;
    CheckWebhookSecurity(node, where, w);
    cfg.webhooks.push_back(std::move(w));
  }

  /// concurrency: 1..kMaxConcurrency (deliveries in flight to one target).
  std::optional<int> Concurrency(const YAML::Node& node, const std::string& where) {
    auto s = Str(node, "concurrency", where);
    if (!s) return std::nullopt;
    auto v = ParseUInt(*s);
    if (!v || *v < 1 || *v > static_cast<uint64_t>(kMaxConcurrency)) {
      Fail(node["concurrency"], "\"concurrency\" in " + where + " must be a number from 1 to " +
                                    std::to_string(kMaxConcurrency) + ", not " + Q(*s));
      return std::nullopt;
    }
    return static_cast<int>(*v);
  }

  /// Plain http:// beyond this host, or https:// without verification, lets
  /// anyone on the path read events and headers: only with allow_insecure.
  void CheckWebhookSecurity(const YAML::Node& node, const std::string& where, Webhook& w) {
    if (auto insecure = Bool(node, "allow_insecure", where)) w.allow_insecure = *insecure;
    if (w.allow_insecure || w.url.empty()) return;
    if (!w.url.https()) {
      if (!w.url.is_loopback()) {
        Fail(node["url"], "\"url\" in " + where + " is plain http:// to " + Q(w.url.host()) +
                              ", which sends events and headers in clear text; use https://, "
                              "or add allow_insecure: true if this network is trusted");
      }
    } else {
      RequireInsecureOptIn(node, where, w.tls_verify, w.allow_insecure, "events, headers and signatures");
    }
  }

  /// secret: a string or a list (rotation: sign with each); secret_file: a path
  /// or a list of paths; secret_command: one argv.
  void ParseWebhookSecrets(const YAML::Node& node, const std::string& where, Webhook& w) {
    int count = Present(node["secret"]) + Present(node["secret_file"]) + Present(node["secret_command"]);
    if (count > 1) {
      Fail(node, where + " sets more than one of secret, secret_file, secret_command; keep one "
                         "(each may hold several secrets while rotating)");
      return;
    }
    // Standard Webhooks: "whsec_" + base64 of the key; checked by the rule
    // delivery signs with (SecretRule::kSigningKey).
    auto add = [&](const YAML::Node& at, SecretRef ref) {
      if (auto checked = Checked(at, std::move(ref), SecretRule::kSigningKey)) w.secrets.push_back(std::move(*checked));
    };
    for (const std::string key : {"secret", "secret_file"}) {
      YAML::Node value = node[key];
      if (!Present(value)) continue;
      std::vector<YAML::Node> items;
      if (value.IsSequence()) {
        if (value.size() == 0) Fail(value, Q(key) + " in " + where + " is an empty list; add a secret or remove the key");
        for (const auto& item : value) items.push_back(item);
      } else {
        items.push_back(value);
      }
      for (const auto& item : items) {
        if (!item.IsScalar()) {
          Fail(item, Q(key) + " in " + where + " must be a string or a list of strings");
          continue;
        }
        auto text = Expand(item, key, where);
        if (!text) continue;
        if (text->empty()) {
          Fail(item, Q(key) + " in " + where + " is empty; set it or remove the key");
        } else if (key == "secret") {
          add(item, SecretRef(util::Secret(std::move(*text))).WithName("a secret in " + where));
        } else {
          add(item, FileRef(*text, key, where));
        }
      }
    }
    if (Present(node["secret_command"])) {
      if (auto argv = List(node, "secret_command", where, "[\"/usr/local/bin/get-secret\", \"tickets\"]")) {
        if (auto ref = CommandRef(node["secret_command"], *argv, "secret_command", where)) {
          add(node["secret_command"], std::move(*ref));
        }
      }
    }
  }

  /// headers: { Name: "value" } or { Name: { value_file: ..., prefix: "Bearer " } }.
  void ParseHeaders(const YAML::Node& headers, const std::string& webhook_where, Webhook& w) {
    std::string where = "headers of " + webhook_where;
    if (!headers.IsMap()) {
      Fail(headers, where + " must be a map, e.g. headers: { Authorization: \"Bearer ${TOKEN}\" }");
      return;
    }
    std::set<std::string> seen;
    for (const auto& kv : headers) {
      std::string name = kv.first.Scalar();
      const YAML::Node& value = kv.second;
      std::string header_where = "header " + Q(name) + " of " + webhook_where;
      if (!ValidHeaderName(name)) {
        Fail(kv.first, "header name " + Q(name) + " in " + webhook_where +
                           " is not a valid HTTP field name (letters, digits, '-')");
        continue;
      }
      if (!seen.insert(Lower(name)).second) {
        Fail(kv.first, "header " + Q(name) + " appears twice in " + webhook_where + "; keep one");
        continue;
      }
      if (IsReservedHeader(name)) {
        Fail(kv.first, "header " + Q(name) + " in " + webhook_where +
                           " is set by mailhook itself (signing, body, connection); remove it");
        continue;
      }
      std::optional<SecretRef> secret;
      if (value.IsScalar()) {
        if (auto text = Expand(value, name, webhook_where)) {
          secret = Checked(value, SecretRef(util::Secret(std::move(*text))).WithName(header_where),
                           SecretRule::kHeaderValue);
        }
      } else if (value.IsMap()) {
        if (!CheckKeys(value, kHeaderValueKeys, header_where)) continue;
        bool given = false;
        auto prefix = Str(value, "prefix", header_where);
        secret = SecretValue(value, "value", header_where, &given, SecretRule::kHeaderValue,
                             prefix.value_or(""));
        if (!given) {
          Fail(value, header_where + " has no value; add value, value_file or value_command");
        }
      } else {
        Fail(value, header_where + " must be a string or a map { value_file: ..., prefix: ... }");
        continue;
      }
      if (secret) w.headers.emplace(name, std::move(*secret));
    }
  }

  /// tls_verify: false accepts any certificate, so whoever sits on the path
  /// reads `what`: it must be asked for twice (allow_insecure: true).
  void RequireInsecureOptIn(const YAML::Node& node, const std::string& where, bool tls_verify,
                            bool allow_insecure, const std::string& what) {
    if (tls_verify || allow_insecure) return;
    Fail(node["tls_verify"], "tls_verify: false in " + where + " accepts any certificate, so " + what +
                                 " can be intercepted; give the private CA with ca_file instead, or "
                                 "add allow_insecure: true if this is a test server");
  }

  /// An environment variable name for a hook: a POSIX shell name.
  bool CheckEnvName(const YAML::Node& at, const std::string& name, const std::string& where) {
    bool ok = !name.empty() && !std::isdigit(static_cast<unsigned char>(name[0])) &&
              std::all_of(name.begin(), name.end(), [](char c) {
                return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
              });
    if (!ok) {
      Fail(at, "variable name " + Q(name) + " in " + where +
                   " is not valid; use letters, digits and '_', not starting with a digit");
    }
    return ok;
  }

  /// env: { NAME: "value", NAME: { file: PATH }, NAME: { command: [argv] } }.
  void ParseHookEnv(const YAML::Node& env, const std::string& hook_where, Hook& h) {
    const std::string where = "env of " + hook_where;
    if (!env.IsMap()) {
      Fail(env, where + " must be a map, e.g. env: { TICKET_URL: \"https://...\", "
                        "TICKET_TOKEN: { file: /run/secrets/ticket_token } }");
      return;
    }
    std::set<std::string> seen;
    for (const auto& kv : env) {
      const std::string name = kv.first.Scalar();
      const YAML::Node& value = kv.second;
      if (!CheckEnvName(kv.first, name, where)) continue;
      if (name.starts_with("MAILHOOK_")) {
        Fail(kv.first, Q(name) + " in " + where + ": MAILHOOK_* variables are set by mailhook; "
                                                 "choose another name");
        continue;
      }
      if (!seen.insert(name).second) {
        Fail(kv.first, Q(name) + " appears twice in " + where + "; keep one");
        continue;
      }
      const std::string value_where = "variable " + Q(name) + " of " + hook_where;
      if (auto secret = EnvValue(value, name, where, value_where)) h.env.emplace_back(name, std::move(*secret));
    }
  }

  /// One env value: "text", { file: PATH } or { command: [argv] }.
  std::optional<SecretRef> EnvValue(const YAML::Node& value, const std::string& name,
                                    const std::string& where, const std::string& value_where) {
    if (value.IsScalar()) {
      auto text = Expand(value, name, where);
      if (!text) return std::nullopt;
      return Checked(value, SecretRef(util::Secret(std::move(*text))).WithName(value_where),
                     SecretRule::kEnvValue);
    }
    if (!value.IsMap()) {
      Fail(value, value_where + " must be a string, { file: PATH } or { command: [argv] }");
      return std::nullopt;
    }
    if (!CheckKeys(value, kEnvValueKeys, value_where)) return std::nullopt;
    bool file = Present(value["file"]), command = Present(value["command"]);
    if (file == command) {
      // Neither, with other keys: CheckKeys has named the known ones.
      if (file || value.size() == 0) {
        Fail(value, value_where + " needs exactly one of file: PATH or command: [argv]");
      }
      return std::nullopt;
    }
    if (file) {
      auto path = Str(value, "file", value_where);
      if (!path) return std::nullopt;
      return Checked(value["file"], FileRef(*path, "file", value_where), SecretRule::kEnvValue);
    }
    auto argv = List(value, "command", value_where, "[\"/usr/local/bin/get-secret\", \"ticket\"]");
    if (!argv) return std::nullopt;
    auto ref = CommandRef(value["command"], *argv, "command", value_where);
    if (!ref) return std::nullopt;
    return Checked(value["command"], std::move(*ref), SecretRule::kEnvValue);
  }

  void ParseHookPassEnv(const YAML::Node& node, const std::string& where, Hook& h) {
    auto names = ListNodes(node, "pass_env", where, "[HTTPS_PROXY, NO_PROXY]");
    if (!names) return;
    for (const auto& [name, at] : *names) {
      if (CheckEnvName(at, name, "pass_env of " + where)) h.pass_env.push_back(name);
    }
  }

  void ParseHook(const YAML::Node& node, size_t index, Config& cfg) {
    Hook h;
    std::string where = EntryName(node, "hook", "hooks", index, h.name);
    if (!CheckKeys(node, kHookKeys, where)) return;
    ClaimTargetName(node, "hook", h.name);
    YAML::Node command = node["command"];
    if (!Present(command)) {
      Fail(node, where + " has no \"command\"; add command: [\"/path/to/script\", \"arg\"]");
    } else if (command.IsScalar()) {
      Fail(command, "\"command\" in " + where + " must be a list (argv; no shell runs it), e.g. "
                    "command: [\"/etc/mailhook/hooks/save.sh\", \"/data\"]");
    } else if (auto argv = List(node, "command", where, "[\"/path/to/script\", \"arg\"]")) {
      if (argv->empty() || (*argv)[0].empty()) {
        Fail(command, "\"command\" in " + where + " is empty; give the program to run first");
      } else {
        h.command = *argv;
      }
    }
    ParseDelivery(node, where, cfg, h);
    if (Present(node["env"])) ParseHookEnv(node["env"], where, h);
    ParseHookPassEnv(node, where, h);
    cfg.hooks.push_back(std::move(h));
  }

  std::string file_;
  std::filesystem::path base_dir_;
  std::vector<ConfigError> errors_;
  bool accounts_ok_ = false;
  std::map<std::string, int> account_lines_;  // name → line of its definition
  std::map<std::string, std::pair<std::string, int>> target_lines_;  // name → (kind, line)
};

}  // namespace

LoadResult LoadConfigFromString(const std::string& text, const std::string& name) {
  return Loader(name, {}).Load(text);
}

LoadResult LoadConfig(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    LoadResult result;
    result.file = path;
    result.errors.push_back({path, 0, 0, std::string("cannot read the config file: ") +
                                             std::strerror(errno) + "; check the path given with -c"});
    return result;
  }
  std::ostringstream buf;
  buf << in.rdbuf();
  // Relative *_file paths are relative to the config file, like compose files.
  return Loader(path, std::filesystem::path(path).parent_path()).Load(buf.str());
}

}  // namespace mailhook::config
