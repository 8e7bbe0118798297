#pragma once
/// OAuth2TokenCache: the access token of one account or smtp target with the
/// built-in refresh flow (`oauth2: { token_url, client_id, refresh_token* }`),
/// shared by all of its connections (an account's IMAP sessions, an smtp
/// target's sends).
///
/// - AccessToken() returns the cached token while it has more than
///   RefreshMargin(expires_in) left (60 s, or half the lifetime for short ones),
///   else refreshes it (RequestAccessToken). One refresh at a time:
///   connections asking meanwhile wait for it and share its result.
/// - A failed refresh is remembered until a retry time (FailureHold: 2 s
///   doubling to 60 s while failures go on, 60 s for errors the operator must
///   fix): connections asking meanwhile get that failure without a request
///   of their own, so an outage costs one request per hold, not one per
///   connection, and an operator error is logged once (`oauth2.needs_operator`
///   at error; repeats at debug). A request ended by `stop_fd` is not kept.
/// - Reject(token): a login refused that token; the next AccessToken()
///   refreshes (once per rejected token, however many connections saw it).
/// - A rotated refresh token in an answer is written back to
///   `refresh_token_file` (temp file in the same folder, mode 0600, fsync,
///   rename) when that file is writable by us; otherwise (inline, command, a
///   read-only file, a failed write) it is kept in memory for later refreshes
///   and logged once, without the token. An `invalid_grant` drops an
///   in-memory token, so the configured source (which the operator fixes) is
///   read again.
/// The cache keeps its own copy of the oauth2 block, so it may outlive the
/// config it was built from: AccountSet hands it to the account's next
/// watcher after a reload, the dispatcher to the rebuilt smtp target
/// (SameSource), keeping an in-memory rotated refresh token.
/// Errors keep the token client's codes and retry classes
/// (`oauth2.invalid_grant` is kNeedsOperator). Thread-safe.

#include <chrono>
#include <functional>
#include <optional>
#include <string>

#include "config/config.h"
#include "delivery/oauth2_token_client.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/mutex.h"
#include "util/result.h"
#include "util/secret.h"
#include "util/thread_annotations.h"

namespace mailhook::delivery {

class OAuth2TokenCache {
 public:
  using Requester = std::function<util::Result<TokenGrant>(const TokenRequest&)>;

  /// `name` names the owner in logs and errors (an account's name, or
  /// "smtp:<target>"); `oauth2` is copied; `clock` must outlive this.
  OAuth2TokenCache(std::string name, config::OAuth2Refresh oauth2, bool allow_insecure,
                   Requester requester = RequestAccessToken, const util::Clock& clock = util::Clock::Real());
  /// `account.oauth2` must be set.
  explicit OAuth2TokenCache(const config::Account& account, Requester requester = RequestAccessToken,
                            const util::Clock& clock = util::Clock::Real());

  /// A token valid for a while yet; refreshes when needed. `stop_fd`
  /// (readable when the caller stops) ends a request in flight at once.
  util::Result<util::Secret> AccessToken(int stop_fd = -1);
  /// True when `account` gets its tokens the way this cache does (same name,
  /// token_url, client id, secret and refresh token sources, scope): the
  /// cache may serve it.
  bool SameSource(const config::Account& account) const;
  /// The same for any owner (an smtp target: "smtp:<name>").
  bool SameSource(const std::string& name, const std::optional<config::OAuth2Refresh>& oauth2,
                  bool allow_insecure) const;
  /// The server refused `token` at login: forget it if it is still cached.
  void Reject(const util::Secret& token);

  /// How long before expiry a token is replaced: 60 s, or half of a shorter
  /// lifetime. Pure.
  static std::chrono::seconds RefreshMargin(std::chrono::seconds expires_in);
  /// How long a failure is handed out without a new request, after
  /// `consecutive` failures in a row (1, 2...). Pure.
  static std::chrono::milliseconds FailureHold(const util::Error& error, int consecutive);
  /// Lifetime assumed when the server gives no expires_in.
  static constexpr std::chrono::seconds kAssumedLifetime{600};

  /// Test seam: where the CA bundle for the token URL is (default: system).
  void set_ca_file(std::string path) { ca_file_ = std::move(path); }
  /// Where its logs go: kImap (accounts, the default) or kSmtp (smtp
  /// targets). Before the first AccessToken.
  void set_log_area(util::Area area) { log_area_ = area; }

 private:
  util::Result<util::Secret> Refresh(int stop_fd) REQUIRES(mu_);
  void RememberFailure(const util::Error& error) REQUIRES(mu_);
  util::Result<TokenRequest> BuildRequest() REQUIRES(mu_);
  void KeepRotated(util::Secret token) REQUIRES(mu_);

  const std::string name_;
  const config::OAuth2Refresh oauth2_;
  const bool allow_insecure_;
  Requester requester_;
  const util::Clock& clock_;
  std::optional<std::string> ca_file_;
  util::Area log_area_ = util::Area::kImap;
  util::Mutex mu_;
  std::optional<util::Secret> token_ GUARDED_BY(mu_);
  util::Clock::SteadyTime renew_at_ GUARDED_BY(mu_);
  std::optional<util::Secret> rotated_ GUARDED_BY(mu_);  ///< a refresh token we could not write back
  bool said_memory_ GUARDED_BY(mu_) = false;
  std::optional<util::Error> failure_ GUARDED_BY(mu_);  ///< handed out until retry_at_
  util::Clock::SteadyTime retry_at_ GUARDED_BY(mu_);
  int failures_ GUARDED_BY(mu_) = 0;          ///< in a row
  std::string said_failure_ GUARDED_BY(mu_);  ///< the operator error last logged
};

/// Writes `value` to `path` atomically: a temp file in the same folder with
/// mode 0600, fsync, rename over `path`. Errors name the path, not the value.
util::Status WriteSecretFileAtomically(const std::string& path, const std::string& value);

}  // namespace mailhook::delivery
