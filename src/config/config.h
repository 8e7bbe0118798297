#pragma once
/// The daemon's configuration, as loaded from YAML (see CONTRACT.md "Config").
/// Plain data: every value is validated and defaulted by LoadConfig(); secrets
/// are references (SecretRef: inline, *_file, *_command) resolved where used.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/folder_selector.h"
#include "config/host_port.h"
#include "config/http_url.h"
#include "config/secret_ref.h"
#include "util/secret.h"

namespace mailhook::config {

using Duration = std::chrono::milliseconds;

/// How the IMAP connection is secured.
enum class TlsMode { kImplicit, kStartTls, kNone };
/// How to authenticate.
enum class AuthMethod { kLogin, kPlain, kXoauth2, kOauthbearer };
/// Where a folder starts on its very first run (no stored watermark).
enum class StartFrom { kNew, kAll, kUnseen };
/// How much of an attachment a webhook receives.
enum class AttachmentMode { kNone, kMetadata, kContent };

/// What to do with a message once every matching target succeeded.
struct OnDelivered {
  bool mark_seen = false;
  std::optional<std::string> move_to;
  std::vector<std::string> add_flags;
};

/// Bounds on what one message may cost (CONTRACT.md "Additions": limits).
/// Set at the top level; an account's `limits:` overrides single keys.
struct Limits {
  uint32_t max_parts = 1000;          ///< MIME parts listed per message; the rest are counted
  uint64_t max_text_bytes = 4 << 20;  ///< text/plain and text/html each; longer bodies are cut
  int max_attempts = 3;               ///< extraction attempts before message.unprocessable
};

/// The built-in OAuth2 refresh flow (RFC 6749 §6): mailhook trades the
/// refresh token for an access token at `token_url` and keeps it until shortly
/// before it expires (daemon/oauth2_token_cache.h).
struct OAuth2Refresh {
  HttpUrl token_url;                       ///< https://, or http:// to loopback (else allow_insecure)
  std::string client_id;                   ///< the app registration's id
  std::optional<SecretRef> client_secret;  ///< none for public clients (Microsoft allows them)
  SecretRef refresh_token;                 ///< refresh_token, _file (may be rewritten on rotation) or _command
  std::string scope;                       ///< space-separated; empty: not sent

  bool operator==(const OAuth2Refresh& other) const = default;
};

/// Whether an account's folders are watched through NOTIFY (RFC 5465).
enum class NotifyMode { kAuto, kOff };

/// One IMAP account and the folders watched in it.
struct Account {
  std::string name;
  std::string host;
  uint16_t port = 993;  // defaulted from tls: 993 implicit, 143 otherwise
  TlsMode tls = TlsMode::kImplicit;
  bool allow_insecure = false;         // required for tls: none
  bool tls_verify = true;              // `tls_verify: false` turns off chain+host checks
  std::optional<std::string> ca_file;  // default: the system trust store
  std::string username;
  /// password, password_file or password_command; with auth: xoauth2 or oauthbearer, the
  /// OAuth2 access token (oauth2.token*). Resolved before each login: OAuth2
  /// tokens expire within the hour, and loading the config runs nothing.
  SecretRef password;
  AuthMethod auth = AuthMethod::kLogin;
  /// `oauth2:` with token_url: the refresh flow; `password` is then unused.
  std::optional<OAuth2Refresh> oauth2;
  std::vector<std::string> folders = {"INBOX"};
  /// Folders written `{ name: X, idle: true }`: given an IDLE connection of
  /// their own before the others when NOTIFY is not used (config order otherwise).
  std::vector<std::string> idle_pinned;
  /// `notify: auto` uses NOTIFY (RFC 5465) when the server offers it: one
  /// connection watches every folder. `off` never does.
  NotifyMode notify = NotifyMode::kAuto;
  /// IMAP connections this account may hold at once, all purposes together
  /// (watching, fetching, polling). Default 10: below Gmail's 15.
  int max_connections = 10;
  /// How often folders beyond the connection budget are polled with STATUS.
  Duration poll_interval = std::chrono::seconds(60);
  StartFrom start_from = StartFrom::kNew;
  Duration idle_refresh = std::chrono::minutes(25);
  Duration timeout = std::chrono::seconds(60);  // per IMAP command read timeout
  /// Every IMAP connection of the account proves its session alive this
  /// often (DONE + IDLE on a watch connection, NOOP on a waiting worker),
  /// with min(timeout, kLivenessDeadline) for the answer: a session a proxy
  /// or NAT black-holes (TCP up, nothing forwarded) is replaced within
  /// interval + deadline, not idle_refresh + timeout. 0: off. Below idle_refresh.
  Duration liveness_interval = std::chrono::seconds(60);
  OnDelivered on_delivered;
  Limits limits;  ///< the top-level limits with this account's overrides applied
};

/// The longest wait for the answer to a liveness round trip (the account's
/// `timeout` when shorter): a live server answers DONE or NOOP at once.
inline constexpr Duration kLivenessDeadline = std::chrono::seconds(30);

/// How long an account's connections wait for a liveness answer:
/// min(timeout, kLivenessDeadline), or the whole timeout with liveness off.
inline Duration LivenessDeadline(const Account& a) {
  return a.liveness_interval.count() > 0 ? std::min(a.timeout, kLivenessDeadline) : a.timeout;
}

/// Which events a target receives. Empty lists match everything.
struct Match {
  std::vector<std::string> accounts;
  std::vector<FolderSelector> folders;  // names or `*`/`?` patterns (folder_selector.h)
  std::vector<std::string> from;        // glob patterns on the sender address (issue 4)
  std::vector<std::string> subject;     // glob patterns on the subject (issue 4)
};

/// Deliveries in flight to one webhook or hook, unless `concurrency:` says otherwise.
inline constexpr int kDefaultConcurrency = 4;
/// Upper bound of `concurrency:` (each unit is a delivery thread).
inline constexpr int kMaxConcurrency = 64;
/// Upper bound of a webhook's or hook's `timeout:`. A claimed outbox row is
/// leased to its worker for 15 minutes (delivery::DispatcherOptions::lease);
/// an attempt must end well inside it, or a second worker re-sends the event
/// while the first is still at it.
inline constexpr Duration kMaxTargetTimeout = std::chrono::minutes(10);

/// What webhooks and hooks share: when they get an event, how much of it, how
/// long an attempt may take, how often it is retried, how many run at once.
struct DeliveryOptions {
  Duration timeout = std::chrono::seconds(10);  // hooks: 30s (Hook's constructor)
  Match match;
  AttachmentMode attachments = AttachmentMode::kMetadata;
  uint64_t max_attachment_bytes = 10 * 1024 * 1024;
  std::vector<Duration> retry_schedule;   // defaulted to the contract's schedule
  int concurrency = kDefaultConcurrency;  // deliveries in flight to this target
};

/// An HTTP endpoint that receives signed events.
struct Webhook : DeliveryOptions {
  std::string name;
  HttpUrl url;                               // validated by the loader; never logged whole (tokens in paths)
  std::vector<SecretRef> secrets;            // whsec_<base64>; several while rotating; resolved at start-up
  std::map<std::string, SecretRef> headers;  // values (with any prefix); resolved at start-up
  std::optional<std::string> ca_file;
  bool tls_verify = true;
  bool allow_insecure = false;  // http:// off loopback, or tls_verify: false
};

/// A command run without a shell for each event.
struct Hook : DeliveryOptions {
  Hook() { timeout = std::chrono::seconds(30); }
  std::string name;
  std::vector<std::string> command;
  /// env: variables set for the command, in file order. Values may come from
  /// a file or a command like other secrets, so all are SecretRefs (never
  /// logged), resolved when the dispatcher builds the hook.
  std::vector<std::pair<std::string, SecretRef>> env;
  /// pass_env: names copied from mailhook's own environment besides the base
  /// set every child gets (util::IsBaseEnvironmentName).
  std::vector<std::string> pass_env;
};

/// How an smtp target answers a message (issue 12).
enum class SmtpMode {
  kReply,    ///< to the sender, threaded (In-Reply-To, References), "Re: ..."
  kForward,  ///< to the fixed `to:` recipients, "Fwd: ..."
};
/// The SMTP AUTH mechanism (RFC 4954): PLAIN (RFC 4616), LOGIN, or XOAUTH2
/// with an OAuth2 access token (oauth2: or password_command, as accounts).
enum class SmtpAuth { kPlain, kLogin, kXoauth2 };

/// A mailbox as written in `from:`: "Support <support@example.com>" or
/// "support@example.com". The name is UTF-8 as written (the message builder
/// encodes it, RFC 2047); the address is checked to be local@domain.
struct MailAddress {
  std::string name;     ///< display name, "" when none
  std::string address;  ///< local@domain
  bool operator==(const MailAddress&) const = default;
};

/// rate_limit: of an smtp target in reply mode: at most `per_sender`
/// replies to one address within any `window` (store::SmtpSent).
struct SmtpRateLimit {
  int per_sender = 1;
  Duration window = std::chrono::hours(24);
};

/// The longest rate_limit.window; also what store::SmtpSent must keep.
inline constexpr Duration kMaxSmtpWindow = std::chrono::hours(24 * 366);

/// A target that sends mail through a submission server (CONTRACT.md
/// "Additions", `smtp:`): a reply to the sender or a forward to fixed
/// recipients, built from templates filled from the event.
///
/// The templates (to, cc, subject, text, html) are kept here as their
/// source text: the config library does not compile them. The smtp target
/// compiles them when it is built (and the loader's hook point
/// Loader::CheckSmtpTemplates is where `check` can report a template error
/// at its line).
struct SmtpTarget : DeliveryOptions {
  SmtpTarget() { timeout = std::chrono::seconds(60); }
  std::string name;
  std::string host;
  uint16_t port = 465;  // defaulted from tls: 465 implicit, 587 otherwise (RFC 8314, RFC 6409)
  TlsMode tls = TlsMode::kImplicit;
  bool allow_insecure = false;  // required for tls: none and tls_verify: false
  bool tls_verify = true;
  std::optional<std::string> ca_file;  // default: the system trust store
  std::string username;
  /// password, password_file or password_command; with auth: xoauth2 the
  /// access token (oauth2.token*), unless `oauth2` holds the refresh flow.
  SecretRef password;
  SmtpAuth auth = SmtpAuth::kPlain;
  std::optional<OAuth2Refresh> oauth2;  ///< the refresh flow, as accounts
  MailAddress from;
  SmtpMode mode = SmtpMode::kReply;
  std::vector<std::string> to;      ///< templates; forward: at least one; reply: none (the sender)
  std::vector<std::string> cc;      ///< templates
  std::string subject;              ///< template; default "Re: {{message.subject}}" / "Fwd: {{message.subject}}"
  std::optional<std::string> text;  ///< template of the text/plain body
  std::optional<std::string> html;  ///< template of the text/html body (at least one of text, html)
  bool attach_original = false;     ///< forward: the original as message/rfc822
  SmtpRateLimit rate_limit;         ///< reply mode only
};

/// log: { level, format }
struct Log {
  std::string level = "info";   // trace|debug|info|warn|error
  std::string format = "text";  // text|json
};

/// store: where the state lives (CONTRACT.md "Additions"). Without a url:
/// SQLite in state_dir. The url is a secret (it may carry a password):
/// inline, url_file or url_command, resolved where the store is opened
/// (config/store_url.h), never logged whole.
struct StoreConfig {
  std::optional<SecretRef> url;  ///< absent: SQLite in state_dir
  /// PostgreSQL only: how long an account stays with a replica that stopped renewing.
  Duration lease_ttl = std::chrono::seconds(30);

  bool operator==(const StoreConfig& other) const = default;
};

/// The whole file.
struct Config {
  std::string state_dir = "/var/lib/mailhook";
  Log log;
  std::optional<HostPort> http_listen;  // absent: no HTTP server
  Limits limits;                        // the top-level defaults (each account has its resolved copy)
  std::vector<Account> accounts;
  std::vector<Webhook> webhooks;
  std::vector<Hook> hooks;
  std::vector<SmtpTarget> smtp;
  StoreConfig store;  // restart-only (config_fingerprint.h)
};

/// One problem found in a config file, with its position (1-based; 0 = unknown).
struct ConfigError {
  std::string file;
  int line = 0;
  int column = 0;
  std::string message;           // names the key and the fix; never a secret's value
  std::string ToString() const;  // "FILE:LINE:COL: message"
};

/// The outcome of loading: a config, or every error found (not just the first).
struct LoadResult {
  std::string file;              // the name used in errors
  std::optional<Config> config;  // set only when errors is empty
  std::vector<ConfigError> errors;
};

/// Reads, expands (${NAME}, ${NAME:-default}), resolves secrets and validates.
/// Never throws for bad input; errors are collected in LoadResult::errors.
LoadResult LoadConfig(const std::string& path);

/// Same, from text already in memory (tests); `name` is used in errors.
LoadResult LoadConfigFromString(const std::string& text, const std::string& name);

/// Only `http.listen` of the config file (expanded like LoadConfig does), for
/// `mailhook healthcheck`: it runs every few seconds, so it reads no secret and
/// checks nothing else; a config that does not load otherwise is `run`'s and
/// `check`'s to report. nullopt when the file has no http.listen.
util::Result<std::optional<HostPort>> ReadHttpListen(const std::string& path);

/// The settings that turn a protection off (tls: none, tls_verify: false),
/// one line each ("account x: tls_verify: false (...)"), for the daemon to
/// log as warnings at start-up. Empty when there are none.
std::vector<std::string> InsecureSettings(const Config& config);

/// True for localhost, 127.0.0.0/8 and ::1: plain http there does not leave
/// the host (the one rule for config checks and webhook targets).
bool IsLoopbackHost(std::string_view host);

/// Parses "30s", "5m", "1h", "500ms", "1h30m"; nullopt when malformed.
std::optional<Duration> ParseDuration(const std::string& text);

/// The contract's default webhook/hook retry_schedule: 5s 5m 30m 2h 5h 10h 14h 20h 24h.
std::vector<Duration> DefaultRetrySchedule();

}  // namespace mailhook::config
