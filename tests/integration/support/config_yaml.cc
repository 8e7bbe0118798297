#include "config_yaml.h"

#include <nlohmann/json.hpp>

#include "dovecot_server.h"

namespace mailhook::testsupport {

std::string Quote(const std::string& s) { return nlohmann::json(s).dump(); }

namespace {

std::string List(const std::vector<std::string>& items) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) out += (i ? ", " : "") + Quote(items[i]);
  return out + "]";
}

}  // namespace

std::string AccountYaml(const DovecotServer& server, const AccountSpec& spec) {
  int port = spec.tls == "implicit" ? server.imaps_port() : server.imap_port();
  std::string out = "{name: " + Quote(spec.name) + ", host: " + Quote(spec.host) + ", port: " + std::to_string(port) +
                    ", tls: " + spec.tls + ", ca_file: " + Quote(server.ca_file()) + ", username: " + Quote(spec.user) +
                    ", password: " + Quote(server.password(spec.user)) + ", folders: " + List(spec.folders) +
                    ", start_from: " + spec.start_from;
  if (spec.tls == "none") out += ", allow_insecure: true";
  if (!spec.extra.empty()) out += ", " + spec.extra;
  return out + "}";
}

std::string WebhookYaml(const WebhookSpec& spec) {
  std::string out = "{name: " + Quote(spec.name) + ", url: " + Quote(spec.url);
  if (!spec.secret.empty()) out += ", secret: " + Quote(spec.secret);
  if (!spec.extra.empty()) out += ", " + spec.extra;
  return out + "}";
}

std::string RenderConfig(const ConfigSpec& spec) {
  std::string out = "state_dir: " + Quote(spec.state_dir) + "\n";
  out += "log: {level: " + spec.log_level + ", format: text}\n";
  if (!spec.http_listen.empty()) out += "http: {listen: " + Quote(spec.http_listen) + "}\n";
  auto section = [&](const char* name, const std::vector<std::string>& items) {
    if (items.empty()) return;
    out += std::string(name) + ":\n";
    for (const auto& item : items) out += "  - " + item + "\n";
  };
  section("accounts", spec.accounts);
  section("webhooks", spec.webhooks);
  section("hooks", spec.hooks);
  if (!spec.extra.empty()) out += spec.extra + "\n";
  return out;
}

}  // namespace mailhook::testsupport
