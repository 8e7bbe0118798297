#pragma once
/// Builders for mailhook YAML configs (CONTRACT.md, "Config") pointing at the
/// test Dovecot and receivers. Each list item is written as a YAML flow
/// mapping on one line, so `extra` fragments need no indentation care.

#include <string>
#include <vector>

namespace mailhook::testsupport {

class DovecotServer;

/// One `accounts:` entry.
struct AccountSpec {
  std::string name = "test";
  std::string user = "alice";  ///< password taken from the server
  std::vector<std::string> folders = {"INBOX"};
  std::string tls = "implicit";    ///< implicit → imaps port; starttls/none → imap port
  std::string host = "127.0.0.1";  ///< the good cert has IP SAN 127.0.0.1 and DNS localhost
  std::string start_from = "all";  ///< "all" is race-free when the folder starts empty
  std::string extra;               ///< more flow-map entries: "idle_refresh: 1m, auth: plain"
};

/// One `webhooks:` entry.
struct WebhookSpec {
  std::string name = "hook";
  std::string url;
  std::string secret;  ///< whsec_…; empty: unsigned
  std::string extra;   ///< e.g. "retry_schedule: [1s, 1s], timeout: 2s"
};

/// The whole file.
struct ConfigSpec {
  std::string state_dir;
  std::string log_level = "debug";
  std::string http_listen;            ///< empty: no http: section
  std::vector<std::string> accounts;  ///< from AccountYaml()
  std::vector<std::string> webhooks;  ///< from WebhookYaml()
  std::vector<std::string> hooks;     ///< raw flow maps: {name: x, command: [...]}
  std::string extra;                  ///< appended verbatim (top-level YAML)
};

/// A YAML double-quoted scalar (JSON string syntax is valid YAML).
std::string Quote(const std::string& s);
std::string AccountYaml(const DovecotServer& server, const AccountSpec& spec);
std::string WebhookYaml(const WebhookSpec& spec);
std::string RenderConfig(const ConfigSpec& spec);

/// A fixed, valid Standard Webhooks secret for tests ("whsec_" + base64 of 32 bytes).
inline constexpr const char* kTestWebhookSecret = "whsec_AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=";

}  // namespace mailhook::testsupport
