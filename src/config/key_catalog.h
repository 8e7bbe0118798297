#pragma once
/// KeyCatalog: every key the config loader accepts, per section, in one place.
/// The section parsers (parse_*.cc) check maps against these lists
/// (YamlAccess::CheckKeys), and the documentation test (tests/config/
/// config_reference_test.cc) checks docs/config.md against the same lists, so a
/// key added to the loader without a reference entry fails the suite.
///
/// A section is named by its path from the document's root: "" (the top
/// level), "log", "accounts[]" (each entry of the accounts list),
/// "accounts[].oauth2", "webhooks[].headers.*" (the value map of any header).
/// A key's full path is "<section>.<key>" ("accounts[].max_connections").
/// Constant data, thread-safe.

#include <span>
#include <string>
#include <string_view>

namespace mailhook::config::keys {

inline constexpr std::string_view kTop[] = {"state_dir", "log",   "http", "limits", "accounts",
                                            "webhooks",  "hooks", "smtp", "store"};
inline constexpr std::string_view kLog[] = {"level", "format"};
inline constexpr std::string_view kHttp[] = {"listen"};
inline constexpr std::string_view kLimits[] = {"max_parts", "max_text_bytes", "max_attempts"};
inline constexpr std::string_view kStore[] = {"url", "url_file", "url_command", "lease_ttl"};

inline constexpr std::string_view kAccount[] = {"name",
                                                "host",
                                                "port",
                                                "tls",
                                                "allow_insecure",
                                                "tls_verify",
                                                "ca_file",
                                                "username",
                                                "password",
                                                "password_file",
                                                "password_command",
                                                "auth",
                                                "oauth2",
                                                "folders",
                                                "start_from",
                                                "idle_refresh",
                                                "timeout",
                                                "on_delivered",
                                                "limits",
                                                "notify",
                                                "max_connections",
                                                "poll_interval",
                                                "liveness_interval"};
inline constexpr std::string_view kFolder[] = {"name", "idle"};
inline constexpr std::string_view kOauth2[] = {
    "token",         "token_file",         "token_command",         "token_url",
    "client_id",     "client_secret",      "client_secret_file",    "client_secret_command",
    "refresh_token", "refresh_token_file", "refresh_token_command", "scope"};
inline constexpr std::string_view kOnDelivered[] = {"mark_seen", "move_to", "add_flags"};

inline constexpr std::string_view kMatch[] = {"accounts", "folders", "from", "subject"};

inline constexpr std::string_view kWebhook[] = {
    "name",           "url",     "secret",     "secret_file", "secret_command",
    "headers",        "timeout", "match",      "attachments", "max_attachment_bytes",
    "retry_schedule", "ca_file", "tls_verify", "concurrency", "allow_insecure"};
inline constexpr std::string_view kHeaderValue[] = {"value", "value_file", "value_command", "prefix"};

inline constexpr std::string_view kHook[] = {
    "name",           "command",     "timeout", "match",   "attachments", "max_attachment_bytes",
    "retry_schedule", "concurrency", "env",     "pass_env"};
inline constexpr std::string_view kEnvValue[] = {"file", "command"};

inline constexpr std::string_view kSmtp[] = {"name",
                                             "host",
                                             "port",
                                             "tls",
                                             "allow_insecure",
                                             "tls_verify",
                                             "ca_file",
                                             "username",
                                             "password",
                                             "password_file",
                                             "password_command",
                                             "auth",
                                             "oauth2",
                                             "from",
                                             "mode",
                                             "to",
                                             "cc",
                                             "subject",
                                             "text",
                                             "html",
                                             "attach_original",
                                             "rate_limit",
                                             "match",
                                             "retry_schedule",
                                             "timeout",
                                             "concurrency"};
inline constexpr std::string_view kSmtpRateLimit[] = {"per_sender", "window"};

/// One map of the config and the keys it may have.
struct Section {
  std::string_view path;  ///< "" for the top level; list entries as "name[]"; any-key maps as "name.*"
  std::span<const std::string_view> keys;
};

/// Every section, top level first. Sections that share a key list (limits,
/// match) appear once per place they can be written.
inline constexpr Section kCatalog[] = {
    {"", kTop},
    {"log", kLog},
    {"http", kHttp},
    {"limits", kLimits},
    {"store", kStore},
    {"accounts[]", kAccount},
    {"accounts[].folders[]", kFolder},
    {"accounts[].oauth2", kOauth2},
    {"accounts[].on_delivered", kOnDelivered},
    {"accounts[].limits", kLimits},
    {"webhooks[]", kWebhook},
    {"webhooks[].headers.*", kHeaderValue},
    {"webhooks[].match", kMatch},
    {"hooks[]", kHook},
    {"hooks[].env.*", kEnvValue},
    {"hooks[].match", kMatch},
    {"smtp[]", kSmtp},
    {"smtp[].oauth2", kOauth2},
    {"smtp[].rate_limit", kSmtpRateLimit},
    {"smtp[].match", kMatch},
};

/// "<section>.<key>", or the key alone at the top level.
inline std::string FullPath(std::string_view section, std::string_view key) {
  return section.empty() ? std::string(key) : std::string(section) + "." + std::string(key);
}

}  // namespace mailhook::config::keys
