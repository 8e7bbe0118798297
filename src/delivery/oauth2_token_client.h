#pragma once
/// OAuth2 token client: one refresh-token grant (RFC 6749 §6) against a
/// provider's token endpoint, over http/client.h. POSTs
/// `grant_type=refresh_token` with the client id, the client secret (if any),
/// the refresh token and the scope as a form body; TLS is verified against
/// the system CAs (or ca_file). The response is read up to
/// kMaxTokenResponseBytes; the whole request (connect, TLS, send, answer)
/// ends after `timeout`.
///
/// Errors (util::Error codes) say what the operator should do and never carry
/// a secret (server text is redacted of every value we sent):
/// - `oauth2.invalid_grant` (kNeedsOperator): the refresh token is expired or
///   revoked; consent again and store the new refresh token;
/// - `oauth2.invalid_client` (kNeedsOperator): the client id or secret is
///   wrong (also unauthorized_client, invalid_scope and other 4xx answers);
/// - `oauth2.insecure` (kNeedsOperator): plain http:// to a non-loopback
///   host without allow_insecure (the loader refuses it already);
/// - `oauth2.token_request` (kBackoff): the network, a timeout, a 5xx or 429,
///   an answer that is not a token;
/// - `oauth2.stopped` (kBackoff): `stop_fd` fired first (shutdown, reload).
/// At log level trace one line per request, through TraceHttpRequest
/// (http_trace.h) with target `oauth2:<account>`: URL without its query,
/// status (or the error), ms; never the body.
/// Stateless and thread-safe: each call opens its own connection.

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>

#include "config/http_url.h"
#include "util/result.h"
#include "util/secret.h"

namespace mailhook::delivery {

/// The most bytes of a token response read; a token answer is < 4 KiB.
inline constexpr size_t kMaxTokenResponseBytes = 64 * 1024;

/// The longest expires_in taken from an answer: a larger (or overflowing)
/// value is cut to it, so a token is renewed at least daily.
inline constexpr std::chrono::seconds kMaxExpiresIn{24 * 3600};

/// What one refresh needs.
struct TokenRequest {
  config::HttpUrl token_url;
  std::string client_id;
  util::Secret client_secret;  ///< empty: a public client (not sent)
  util::Secret refresh_token;
  std::string scope;  ///< empty: not sent
  bool allow_insecure = false;
  std::optional<std::string> ca_file;  ///< tests: a private CA; default the system store
  std::chrono::milliseconds timeout{20000};
  /// Readable when the caller stops (the account's stop signal): the request
  /// ends at once with `oauth2.stopped`. -1: never.
  int stop_fd = -1;
  std::string account;  ///< for error messages
};

/// A successful answer.
struct TokenGrant {
  util::Secret access_token;
  /// expires_in, at most kMaxExpiresIn; nullopt when the server did not say
  /// (RFC 6749 §5.1: RECOMMENDED) or said something that is not a positive number.
  std::optional<std::chrono::seconds> expires_in;
  /// A rotated refresh token (RFC 6749 §6: the server MAY issue a new one).
  std::optional<util::Secret> refresh_token;
};

/// Exchanges the refresh token for an access token. Blocks up to a few
/// timeouts.
util::Result<TokenGrant> RequestAccessToken(const TokenRequest& request);

/// application/x-www-form-urlencoded value (RFC 3986 unreserved kept). Pure.
std::string FormEncode(const std::string& value);

}  // namespace mailhook::delivery
