// The document and its top-level sections: state_dir, log, http, limits, store, and
// the lists of accounts, webhooks, hooks and smtp targets; LoadConfig itself.
#include "config/loader.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "config/expand.h"

namespace mailhook::config::internal {
namespace {

bool ValidName(std::string_view name) {
  if (name.empty()) return false;
  return std::all_of(name.begin(), name.end(),
                     [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'; });
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

}  // namespace

LoadResult Loader::Load(const std::string& text) {
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
  } else if (CheckKeys(root, keys::kTop, "the config")) {
    ParseTop(root, cfg);
  }
  result.errors = std::move(errors_);
  if (result.errors.empty()) result.config = std::move(cfg);
  return result;
}

// ---- sections ----
void Loader::ParseTop(const YAML::Node& root, Config& cfg) {
  if (Present(root["state_dir"])) {
    auto dir = Required(root, "state_dir", "the config", "/var/lib/mailhook");
    if (dir) cfg.state_dir = *dir;
  }
  if (Present(root["log"]) && CheckKeys(root["log"], keys::kLog, "log")) {
    const YAML::Node log = root["log"];
    if (auto level = Enum<std::string>(
            log, "level", "log",
            {{"trace", "trace"}, {"debug", "debug"}, {"info", "info"}, {"warn", "warn"}, {"error", "error"}})) {
      cfg.log.level = *level;
    }
    if (auto format = Enum<std::string>(log, "format", "log", {{"text", "text"}, {"json", "json"}})) {
      cfg.log.format = *format;
    }
  }
  if (Present(root["http"]) && CheckKeys(root["http"], keys::kHttp, "http")) {
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

  if (Present(root["store"])) ParseStore(root["store"], cfg);

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

  // A list that is not a list counts as a target: "no targets" would be a
  // second, misleading error.
  bool any_target = ParseTargetList(root["webhooks"], "webhooks", "webhook", &Loader::ParseWebhook, cfg);
  any_target = ParseTargetList(root["hooks"], "hooks", "hook", &Loader::ParseHook, cfg) || any_target;
  any_target = ParseTargetList(root["smtp"], "smtp", "smtp target", &Loader::ParseSmtp, cfg) || any_target;
  if (!any_target) {
    Fail(root,
         "no webhooks, no hooks and no smtp targets: add at least one under \"webhooks:\", \"hooks:\" or "
         "\"smtp:\", or events have nowhere to go");
  }
}

bool Loader::ParseTargetList(const YAML::Node& list, const std::string& key, const std::string& kind,
                             void (Loader::*parse)(const YAML::Node&, size_t, Config&), Config& cfg) {
  if (!Present(list)) return false;
  if (!list.IsSequence()) {
    Fail(list, "\"" + key + "\" must be a list; start each " + kind + " with \"- name: ...\"");
    return true;
  }
  for (size_t i = 0; i < list.size(); ++i) (this->*parse)(list[i], i, cfg);
  return list.size() > 0;
}

/// The name of a list entry, checked, and how errors refer to the entry.
std::string Loader::EntryName(const YAML::Node& node, const std::string& kind, const std::string& list, size_t index,
                              std::string& name) {
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
                "e.g. " +
                Q(NameFix(*value)));
    return where;
  }
  name = *value;
  return kind + " " + Q(name);
}

// limits: { max_parts, max_text_bytes, max_attempts }; keys not given keep
// what `limits` holds already (the defaults, or the top-level values).
void Loader::ParseLimits(const YAML::Node& node, const std::string& where, Limits& limits) {
  if (!CheckKeys(node, keys::kLimits, where)) return;
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

/// tls_verify: false accepts any certificate, so whoever sits on the path
/// reads `what`: it must be asked for twice (allow_insecure: true).
void Loader::RequireInsecureOptIn(const YAML::Node& node, const std::string& where, bool tls_verify,
                                  bool allow_insecure, const std::string& what) {
  if (tls_verify || allow_insecure) return;
  Fail(node["tls_verify"], "tls_verify: false in " + where + " accepts any certificate, so " + what +
                               " can be intercepted; give the private CA with ca_file instead, or "
                               "add allow_insecure: true if this is a test server");
}

void Loader::ParseServer(const YAML::Node& node, const std::string& where, const ServerKind& kind,
                         const ServerKeys& keys) {
  if (auto host = Required(node, "host", where, kind.example_host)) *keys.host = *host;
  if (auto tls = Enum<TlsMode>(
          node, "tls", where,
          {{"implicit", TlsMode::kImplicit}, {"starttls", TlsMode::kStartTls}, {"none", TlsMode::kNone}})) {
    *keys.tls = *tls;
  }
  *keys.port = *keys.tls == TlsMode::kImplicit ? kind.implicit_port : kind.other_port;
  if (auto port = Str(node, "port", where)) {
    if (auto p = Port(node["port"], *port, "port", where)) *keys.port = *p;
  }
  if (auto insecure = Bool(node, "allow_insecure", where)) *keys.allow_insecure = *insecure;
  if (*keys.tls == TlsMode::kNone && !*keys.allow_insecure) {
    Fail(node["tls"], "tls: none in " + where + " sends " + kind.sent_in_clear + " in clear text; use " + kind.use_tls +
                          ", or add allow_insecure: true if this is a trusted local network");
  }
  if (auto verify = Bool(node, "tls_verify", where)) *keys.tls_verify = *verify;
  RequireInsecureOptIn(node, where, *keys.tls_verify, *keys.allow_insecure, "the password and the mail");
  *keys.ca_file = Str(node, "ca_file", where);
}

}  // namespace mailhook::config::internal

namespace mailhook::config {

LoadResult LoadConfigFromString(const std::string& text, const std::string& name) {
  return internal::Loader(name, {}).Load(text);
}

LoadResult LoadConfig(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    LoadResult result;
    result.file = path;
    result.errors.push_back(
        {path, 0, 0,
         std::string("cannot read the config file: ") + std::strerror(errno) + "; check the path given with -c"});
    return result;
  }
  std::ostringstream buf;
  buf << in.rdbuf();
  // Relative *_file paths are relative to the config file, like compose files.
  return internal::Loader(path, std::filesystem::path(path).parent_path()).Load(buf.str());
}

util::Result<std::optional<HostPort>> ReadHttpListen(const std::string& path) {
  auto fail = [&](const std::string& why) {
    return util::Error("config.http_listen", util::RetryClass::kNeedsOperator, "config " + path + ": " + why);
  };
  YAML::Node listen;
  try {
    YAML::Node root = YAML::LoadFile(path);
    if (!root.IsMap() || !root["http"] || !root["http"].IsMap()) return std::optional<HostPort>();
    listen = root["http"]["listen"];
  } catch (const YAML::Exception& e) {
    return fail(std::string("cannot be read as YAML (") + e.what() + "); run `mailhook check -c " + path + "`");
  }
  if (!listen || listen.IsNull()) return std::optional<HostPort>();
  if (!listen.IsScalar()) return fail("http.listen must be HOST:PORT");
  Expansion expanded = ExpandEnv(listen.Scalar());
  if (!expanded.ok()) return fail("http.listen names an unset variable; run `mailhook check -c " + path + "`");
  auto address = HostPort::Parse(expanded.text);
  if (!address.ok()) {
    return fail("http.listen: " + address.error().message() + "; run `mailhook check -c " + path + "`");
  }
  return std::optional<HostPort>(std::move(address).value());
}

}  // namespace mailhook::config
