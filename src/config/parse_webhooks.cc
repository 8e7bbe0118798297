// One webhook: url (HttpUrl), signing secrets, headers, TLS settings.
#include "config/loader.h"

#include <algorithm>
#include <cctype>
#include <set>

#include "config/reserved_headers.h"

namespace mailhook::config::internal {
namespace {

/// RFC 9110 §5.1: a field name is a token.
bool ValidHeaderName(std::string_view s) {
  static constexpr std::string_view kTchar = "!#$%&'*+-.^_`|~";
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || kTchar.find(c) != std::string_view::npos;
  });
}

}  // namespace

void Loader::ParseWebhook(const YAML::Node& node, size_t index, Config& cfg) {
  Webhook w;
  std::string where = EntryName(node, "webhook", "webhooks", index, w.name);
  if (!CheckKeys(node, keys::kWebhook, where)) return;
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

/// Plain http:// beyond this host, or https:// without verification, lets
/// anyone on the path read events and headers: only with allow_insecure.
void Loader::CheckWebhookSecurity(const YAML::Node& node, const std::string& where, Webhook& w) {
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
void Loader::ParseWebhookSecrets(const YAML::Node& node, const std::string& where, Webhook& w) {
  int count = Present(node["secret"]) + Present(node["secret_file"]) + Present(node["secret_command"]);
  if (count > 1) {
    Fail(node, where +
                   " sets more than one of secret, secret_file, secret_command; keep one "
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
void Loader::ParseHeaders(const YAML::Node& headers, const std::string& webhook_where, Webhook& w) {
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
        secret =
            Checked(value, SecretRef(util::Secret(std::move(*text))).WithName(header_where), SecretRule::kHeaderValue);
      }
    } else if (value.IsMap()) {
      if (!CheckKeys(value, keys::kHeaderValue, header_where)) continue;
      bool given = false;
      auto prefix = Str(value, "prefix", header_where);
      secret = SecretValue(value, "value", header_where, &given, SecretRule::kHeaderValue, prefix.value_or(""));
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

}  // namespace mailhook::config::internal
