// One IMAP account: connection, credentials, folders, on_delivered, limits.
#include "config/loader.h"

#include <algorithm>
#include <set>

namespace mailhook::config::internal {
namespace {

/// RFC 3501 §9: a flag is "\" atom (system) or an atom (keyword).
bool ValidFlag(std::string_view s) {
  if (s.starts_with('\\')) s.remove_prefix(1);
  static constexpr std::string_view kAtomSpecials = "(){ %*\"\\]";
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return c > 0x20 && c < 0x7f && kAtomSpecials.find(c) == std::string_view::npos;
  });
}

}  // namespace

void Loader::ParseAccount(const YAML::Node& node, size_t index, Config& cfg) {
  Account a;
  std::string where = EntryName(node, "account", "accounts", index, a.name);
  if (!CheckKeys(node, keys::kAccount, where)) return;
  if (!a.name.empty()) {
    auto [it, inserted] = account_lines_.emplace(a.name, node["name"].Mark().line + 1);
    if (!inserted) {
      Fail(node["name"], "account name " + Q(a.name) + " is already used at line " + std::to_string(it->second) +
                             "; names must be unique");
    }
  }
  ParseServer(node, where, {"imap.example.com", 993, 143, "the password", "tls: implicit or starttls"},
              {&a.host, &a.port, &a.tls, &a.allow_insecure, &a.tls_verify, &a.ca_file});
  if (auto user = Required(node, "username", where, "support@example.com")) a.username = *user;
  if (auto auth = Enum<AuthMethod>(node, "auth", where,
                                   {{"login", AuthMethod::kLogin},
                                    {"plain", AuthMethod::kPlain},
                                    {"xoauth2", AuthMethod::kXoauth2},
                                    {"oauthbearer", AuthMethod::kOauthbearer}})) {
    a.auth = *auth;
  }
  const bool bearer = a.auth == AuthMethod::kXoauth2 || a.auth == AuthMethod::kOauthbearer;
  ParseCredentials(node, where,
                   {bearer, a.auth == AuthMethod::kXoauth2 ? "xoauth2" : "oauthbearer", "xoauth2 or oauthbearer",
                    "${IMAP_PASSWORD}", "account", a.allow_insecure},
                   a.password, a.oauth2);
  ParseFolders(node, where, a);
  if (auto start =
          Enum<StartFrom>(node, "start_from", where,
                          {{"new", StartFrom::kNew}, {"all", StartFrom::kAll}, {"unseen", StartFrom::kUnseen}})) {
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
  ParseLiveness(node, where, a);
  ParseConnections(node, where, a);
  if (Present(node["on_delivered"])) ParseOnDelivered(node["on_delivered"], where, a);
  a.limits = cfg.limits;
  if (Present(node["limits"])) ParseLimits(node["limits"], "limits of " + where, a.limits);
  cfg.accounts.push_back(std::move(a));
}

/// folders: a non-empty list of distinct names (the watched folders), each a
/// name or a map `{ name: X, idle: true }`.
void Loader::ParseFolders(const YAML::Node& node, const std::string& where, Account& a) {
  YAML::Node list = node["folders"];
  if (!Present(list)) return;  // absent: the default [INBOX]
  if (!list.IsSequence()) {
    Fail(list, "\"folders\" in " + where + " must be a list, e.g. folders: [INBOX, { name: Support, idle: true }]");
    return;
  }
  a.folders.clear();
  if (list.size() == 0) Fail(list, "\"folders\" in " + where + " is empty; list at least one, e.g. [INBOX]");
  std::set<std::string> seen;
  for (const auto& item : list) {
    std::optional<std::string> folder;
    bool idle = false;
    if (item.IsMap()) {
      const std::string in = "a folder of " + where;
      if (!CheckKeys(item, keys::kFolder, in)) continue;
      folder = Required(item, "name", in, "INBOX");
      if (auto pinned = Bool(item, "idle", in)) idle = *pinned;
    } else if (item.IsScalar()) {
      folder = Expand(item, "folders", where);
    } else {
      Fail(item, "each entry of \"folders\" in " + where + " must be a name or { name: X, idle: true }");
    }
    if (!folder) continue;
    if (folder->empty()) {
      Fail(item, "a folder name in " + where + " is empty; write e.g. INBOX");
    } else if (!seen.insert(*folder).second) {
      Fail(item, "folder " + Q(*folder) + " is listed twice in " + where + "; keep one");
    } else {
      a.folders.push_back(*folder);
      if (idle) a.idle_pinned.push_back(*folder);
    }
  }
}

/// notify, max_connections, poll_interval: how the account's folders are watched.
void Loader::ParseConnections(const YAML::Node& node, const std::string& where, Account& a) {
  if (auto notify = Enum<NotifyMode>(node, "notify", where, {{"auto", NotifyMode::kAuto}, {"off", NotifyMode::kOff}})) {
    a.notify = *notify;
  }
  if (auto max = UInt(node, "max_connections", where, "a whole number of connections")) {
    // One to watch and one to fetch is the least that keeps IDLE apart from fetching.
    if (*max < 2 || *max > 1000) {
      Fail(node["max_connections"], "\"max_connections\" in " + where +
                                        " must be between 2 and 1000 (one connection watches, one fetches), not " +
                                        std::to_string(*max));
    } else {
      a.max_connections = static_cast<int>(*max);
    }
  }
  if (auto interval = Dur(node, "poll_interval", where)) {
    if (*interval < std::chrono::seconds(1)) {
      Fail(node["poll_interval"], "\"poll_interval\" in " + where + " is shorter than 1s; use e.g. 60s");
    } else {
      a.poll_interval = *interval;
    }
  }
}

/// liveness_interval: 0 (off), or from 1s to below idle_refresh. Checked only
/// when written: the default 60s simply yields to a shorter idle_refresh (IDLE
/// is then re-issued more often than the liveness round trip would be).
void Loader::ParseLiveness(const YAML::Node& node, const std::string& where, Account& a) {
  auto text = Str(node, "liveness_interval", where);
  if (!text) return;
  if (*text == "0" || ParseDuration(*text) == Duration(0)) {
    a.liveness_interval = Duration(0);
    return;
  }
  auto interval = DurationValue(node["liveness_interval"], *text, "liveness_interval", where);
  if (!interval) return;
  if (*interval < std::chrono::seconds(1)) {
    Fail(node["liveness_interval"],
         "\"liveness_interval\" in " + where + " is shorter than 1s; use e.g. 60s, or 0 to turn it off");
  } else if (*interval >= a.idle_refresh) {
    Fail(node["liveness_interval"], "\"liveness_interval\" in " + where +
                                        " must be below idle_refresh (which already re-issues IDLE that often); "
                                        "use e.g. 60s, or 0 to turn it off");
  } else {
    a.liveness_interval = *interval;
  }
}

/// password*, or oauth2: (a token source or the refresh flow): the
/// credentials of an account or an smtp target, by the same rules.
void Loader::ParseCredentials(const YAML::Node& node, const std::string& where, const CredentialRules& rules,
                              SecretRef& password_out, std::optional<OAuth2Refresh>& oauth2_out) {
  bool has_password = false;
  auto password = SecretValue(node, "password", where, &has_password);
  if (password) password_out = *password;
  const bool bearer = rules.bearer;
  YAML::Node oauth2 = node["oauth2"];
  if (Present(oauth2)) {
    const std::string in = "oauth2 of " + where;
    if (!bearer) {
      Fail(oauth2, "\"oauth2\" in " + where + " is used only with auth: " + rules.bearer_auths +
                       "; add auth: xoauth2 or remove oauth2");
    } else if (has_password) {
      Fail(oauth2, where + " sets both oauth2 and a password; with auth: " + rules.auth + " keep one of them");
    } else if (CheckKeys(oauth2, keys::kOauth2, in)) {
      const bool source = Present(oauth2["token"]) || Present(oauth2["token_file"]) || Present(oauth2["token_command"]);
      const bool refresh = Present(oauth2["token_url"]) || Present(oauth2["client_id"]) ||
                           Present(oauth2["refresh_token"]) || Present(oauth2["refresh_token_file"]) ||
                           Present(oauth2["refresh_token_command"]);
      if (source && refresh) {
        Fail(oauth2, in + " mixes an access token source (token, token_file, token_command) with the refresh "
                          "flow (token_url, client_id, refresh_token...); keep one: remove token* to let "
                          "mailhook refresh the token itself, or remove the refresh keys");
      } else if (refresh) {
        oauth2_out = ParseOAuth2Refresh(oauth2, in, rules);
      } else {
        bool has_token = false;
        auto token = SecretValue(oauth2, "token", in, &has_token);
        if (token) password_out = *token;
        if (!has_token) {
          Fail(oauth2, in + " has no token; add token_url, client_id and refresh_token_file (mailhook refreshes "
                            "the access token itself), or token_command: [...] (a helper that prints a fresh "
                            "access token)");
        }
      }
    }
    return;
  }
  if (!has_password) {
    std::string fix = bearer ? "add oauth2: { token_url: ..., client_id: ..., refresh_token_file: ... } or "
                               "oauth2: { token_command: [...] } or password_command"
                             : "add password: " + rules.password_example + ", password_file or password_command";
    Fail(node, where + " has no password; " + fix);
  }
}

/// oauth2: { token_url, client_id, client_secret*, refresh_token*, scope }:
/// the built-in refresh flow. The token URL follows the webhooks' rule: plain
/// http:// only to loopback, unless the account has allow_insecure.
std::optional<OAuth2Refresh> Loader::ParseOAuth2Refresh(const YAML::Node& oauth2, const std::string& in,
                                                        const CredentialRules& rules) {
  OAuth2Refresh r;
  if (auto text = Required(oauth2, "token_url", in, "https://oauth2.googleapis.com/token")) {
    auto url = HttpUrl::Parse(*text);
    if (!url.ok()) {
      Fail(oauth2["token_url"], "\"token_url\" in " + in + ": " + url.error().message());
    } else if (!url->https() && !url->is_loopback() && !rules.allow_insecure) {
      Fail(oauth2["token_url"], "\"token_url\" in " + in + " is plain http:// to " + Q(url->host()) +
                                    ", which sends the refresh token in clear text; use https://, "
                                    "or add allow_insecure: true to the " +
                                    rules.owner + " if this network is trusted");
    } else {
      r.token_url = std::move(url).value();
    }
  }
  if (auto id = Required(oauth2, "client_id", in, "1234567890-abc.apps.googleusercontent.com")) r.client_id = *id;
  bool given = false;
  r.client_secret = SecretValue(oauth2, "client_secret", in, &given);
  bool has_refresh = false;
  auto refresh = SecretValue(oauth2, "refresh_token", in, &has_refresh);
  if (refresh) r.refresh_token = *refresh;
  if (!has_refresh) {
    Fail(oauth2, in + " has no refresh token; add refresh_token_file: /run/secrets/refresh_token (the token "
                      "your provider gave when you consented; mailhook rewrites the file if it rotates), "
                      "refresh_token_command or refresh_token");
  }
  if (auto scope = Str(oauth2, "scope", in)) r.scope = *scope;
  return r;
}

void Loader::ParseOnDelivered(const YAML::Node& node, const std::string& account_where, Account& a) {
  std::string where = "on_delivered of " + account_where;
  if (!CheckKeys(node, keys::kOnDelivered, where)) return;
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

}  // namespace mailhook::config::internal
