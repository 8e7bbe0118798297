#pragma once
// Loader: the section parsers of LoadConfig, one file per concept
// (parse_top.cc, parse_accounts.cc, parse_targets.cc, parse_webhooks.cc,
// parse_hooks.cc, parse_smtp.cc, parse_secrets.cc) over YamlAccess. The
// loader walks the document once, checks every key against the keys it knows
// and every value against its rule, and keeps going after a problem so that
// `mailhook check` can list all of them at once. Private to src/config; one
// per load.

#include <map>
#include <string>
#include <utility>

#include "config/key_catalog.h"
#include "config/secret_ref.h"
#include "config/yaml_access.h"

namespace mailhook::config::internal {

/// Builds a Config from one document, collecting every error.
class Loader : public YamlAccess {
 public:
  using YamlAccess::YamlAccess;
  /// Parses `text`; never throws for bad input.
  LoadResult Load(const std::string& text);

 private:
  // parse_top.cc
  void ParseTop(const YAML::Node& root, Config& cfg);
  /// The name of a list entry, checked, and how errors refer to the entry.
  std::string EntryName(const YAML::Node& node, const std::string& kind, const std::string& list, size_t index,
                        std::string& name);
  // limits: { max_parts, max_text_bytes, max_attempts }; keys not given keep
  // what `limits` holds already (the defaults, or the top-level values).
  void ParseLimits(const YAML::Node& node, const std::string& where, Limits& limits);
  /// tls_verify: false accepts any certificate, so whoever sits on the path
  /// reads `what`: it must be asked for twice (allow_insecure: true).
  void RequireInsecureOptIn(const YAML::Node& node, const std::string& where, bool tls_verify, bool allow_insecure,
                            const std::string& what);
  /// Where a mail server's connection keys go (an account's, an smtp target's).
  struct ServerKeys {
    std::string* host;
    uint16_t* port;
    TlsMode* tls;
    bool* allow_insecure;
    bool* tls_verify;
    std::optional<std::string>* ca_file;
  };
  /// What differs between IMAP and SMTP submission servers.
  struct ServerKind {
    const char* example_host;   ///< "imap.example.com"
    uint16_t implicit_port;     ///< with tls: implicit (993, 465)
    uint16_t other_port;        ///< with starttls or none (143, 587)
    const char* sent_in_clear;  ///< "the password"
    const char* use_tls;        ///< the fix, "tls: implicit or starttls"
  };
  /// host, tls, port (defaulted from tls), allow_insecure, tls_verify and
  /// ca_file, with tls: none and tls_verify: false asked for twice.
  void ParseServer(const YAML::Node& node, const std::string& where, const ServerKind& kind, const ServerKeys& keys);

  // parse_secrets.cc
  std::filesystem::path Resolve(const std::string& path) const;
  /// A file secret: the path resolved against the config's directory.
  SecretRef FileRef(const std::string& path, std::string_view key, const std::string& where) const;
  /// A command secret; never run here (secret_ref.h says where it runs).
  std::optional<SecretRef> CommandRef(const YAML::Node& node, const std::vector<std::string>& argv,
                                      std::string_view key, const std::string& where);
  /// Checks what can be checked without running a command (an inline value,
  /// a file's content) with the rule every use applies; reports at `at`.
  std::optional<SecretRef> Checked(const YAML::Node& at, SecretRef ref, SecretRule rule);
  /// One secret given as `<base>`, `<base>_file` or `<base>_command`.
  /// `given` tells whether any of the three keys was present.
  std::optional<SecretRef> SecretValue(const YAML::Node& map, const std::string& base, const std::string& where,
                                       bool* given, SecretRule rule = SecretRule::kAny, const std::string& prefix = "");

  // parse_store.cc
  /// store: { url | url_file | url_command, lease_ttl }.
  void ParseStore(const YAML::Node& node, Config& cfg);
  /// An inline or file url (reading a file has no side effect): its scheme,
  /// lease_ttl only with PostgreSQL, and what this build can open.
  void CheckStoreUrl(const YAML::Node& at, const SecretRef& url, const std::string& key, bool lease_ttl);

  // parse_accounts.cc
  void ParseAccount(const YAML::Node& node, size_t index, Config& cfg);
  void ParseFolders(const YAML::Node& node, const std::string& where, Account& a);
  void ParseConnections(const YAML::Node& node, const std::string& where, Account& a);
  void ParseLiveness(const YAML::Node& node, const std::string& where, Account& a);
  /// What the credential keys of an account or an smtp target are judged by.
  struct CredentialRules {
    bool bearer = false;           ///< auth: takes an OAuth2 access token (oauth2: allowed)
    std::string auth;              ///< the auth: value, for messages ("xoauth2")
    std::string bearer_auths;      ///< the auth: values that take oauth2: ("xoauth2 or oauthbearer")
    std::string password_example;  ///< "${IMAP_PASSWORD}"
    std::string owner;             ///< "account" / "smtp target": where allow_insecure goes
    bool allow_insecure = false;   ///< the owner's allow_insecure (oauth2.token_url over http://)
  };
  /// password*, or oauth2: (a token source or the refresh flow).
  void ParseCredentials(const YAML::Node& node, const std::string& where, const CredentialRules& rules,
                        SecretRef& password, std::optional<OAuth2Refresh>& oauth2);
  std::optional<OAuth2Refresh> ParseOAuth2Refresh(const YAML::Node& oauth2, const std::string& in,
                                                  const CredentialRules& rules);
  void ParseOnDelivered(const YAML::Node& node, const std::string& account_where, Account& a);

  // parse_targets.cc
  /// A target (webhook, hook or smtp) name, unique across the lists: the outbox
  /// stores deliveries by target name.
  void ClaimTargetName(const YAML::Node& node, const std::string& kind, const std::string& name);
  void ParseMatch(const YAML::Node& node, const std::string& target_where, const Config& cfg, Match& match);
  /// The keys webhooks and hooks share (DeliveryOptions).
  void ParseDelivery(const YAML::Node& node, const std::string& where, const Config& cfg, DeliveryOptions& d);
  /// concurrency: 1..kMaxConcurrency (deliveries in flight to one target).
  std::optional<int> Concurrency(const YAML::Node& node, const std::string& where);

  // parse_webhooks.cc
  void ParseWebhook(const YAML::Node& node, size_t index, Config& cfg);
  /// Plain http:// beyond this host, or https:// without verification, lets
  /// anyone on the path read events and headers: only with allow_insecure.
  void CheckWebhookSecurity(const YAML::Node& node, const std::string& where, Webhook& w);
  /// secret: a string or a list (rotation: sign with each); secret_file: a path
  /// or a list of paths; secret_command: one argv.
  void ParseWebhookSecrets(const YAML::Node& node, const std::string& where, Webhook& w);
  /// headers: { Name: "value" } or { Name: { value_file: ..., prefix: "Bearer " } }.
  void ParseHeaders(const YAML::Node& headers, const std::string& webhook_where, Webhook& w);

  // parse_hooks.cc
  /// An environment variable name for a hook: a POSIX shell name.
  bool CheckEnvName(const YAML::Node& at, const std::string& name, const std::string& where);
  /// env: { NAME: "value", NAME: { file: PATH }, NAME: { command: [argv] } }.
  void ParseHookEnv(const YAML::Node& env, const std::string& hook_where, Hook& h);
  /// One env value: "text", { file: PATH } or { command: [argv] }.
  std::optional<SecretRef> EnvValue(const YAML::Node& value, const std::string& name, const std::string& where,
                                    const std::string& value_where);
  void ParseHookPassEnv(const YAML::Node& node, const std::string& where, Hook& h);
  void ParseHook(const YAML::Node& node, size_t index, Config& cfg);

  /// One of the target lists (webhooks, hooks, smtp): each entry parsed with
  /// `parse`; true when it names a target, or is not a list (already an error).
  bool ParseTargetList(const YAML::Node& list, const std::string& key, const std::string& kind,
                       void (Loader::*parse)(const YAML::Node&, size_t, Config&), Config& cfg);

  // parse_smtp.cc
  void ParseSmtp(const YAML::Node& node, size_t index, Config& cfg);
  /// host, port, tls, allow_insecure, tls_verify, ca_file.
  void ParseSmtpServer(const YAML::Node& node, const std::string& where, SmtpTarget& t);
  /// username, auth, password* / oauth2.
  void ParseSmtpAuth(const YAML::Node& node, const std::string& where, SmtpTarget& t);
  /// from: "Name <local@domain>" or "local@domain".
  void ParseSmtpFrom(const YAML::Node& node, const std::string& where, SmtpTarget& t);
  /// mode, to, cc, subject, text, html, attach_original, rate_limit.
  void ParseSmtpMessage(const YAML::Node& node, const std::string& where, SmtpTarget& t);
  void ParseSmtpRateLimit(const YAML::Node& node, const std::string& where, SmtpTarget& t);
  /// to: / cc: templates; entries without a placeholder are checked as addresses.
  std::vector<std::string> Recipients(const YAML::Node& node, std::string_view key, const std::string& where,
                                      std::string_view example);
  /// Compiles the target's templates (util/mail_template.h): a field that
  /// does not exist or a syntax error is reported at its line.
  void CheckSmtpTemplates(const YAML::Node& node, const std::string& where, const SmtpTarget& t);

  bool accounts_ok_ = false;
  std::map<std::string, int> account_lines_;                         // name → line of its definition
  std::map<std::string, std::pair<std::string, int>> target_lines_;  // name → (kind, line)
};

}  // namespace mailhook::config::internal
