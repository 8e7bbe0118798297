#pragma once
/// HttpUrl: a webhook's `url`, validated once by the loader and used as is by
/// the webhook target (no second parser that could disagree).
///
/// Accepted: http:// or https:// (scheme in any case), a host (a name, an
/// IPv4 address or a bracketed IPv6 literal), an optional port 1..65535, an
/// optional path and query. A fragment is dropped (it is never sent).
/// Refused: userinfo (`user:password@host`): credentials in a URL end up in
/// logs and error messages; send them with `headers:` instead. Also refused:
/// spaces and control characters, an empty port (`host:`), a bare IPv6 literal.
/// Error messages never quote the URL: services put tokens in paths and queries.
/// Value type.

#include <cstdint>
#include <string>
#include <string_view>

#include "util/result.h"

namespace mailhook::config {

/// A parsed http(s) URL.
class HttpUrl {
 public:
  HttpUrl() = default;
  /// Error code "config.url" (kNeedsOperator); the message says what is wrong
  /// and shows a good example, without the URL itself.
  static util::Result<HttpUrl> Parse(std::string_view text);

  bool https() const { return https_; }
  /// The host without brackets, lower-cased ("tickets.internal", "::1").
  const std::string& host() const { return host_; }
  /// The port given, or 443/80 from the scheme.
  uint16_t port() const { return port_; }
  /// Path and query as sent in the request line: "/hooks/email?x=1"; "/" when empty.
  const std::string& target() const { return target_; }
  /// "https://host:port" (lower-case scheme, IPv6 in brackets), as HTTP
  /// clients take it; carries no path or query, so it may be logged.
  std::string origin() const;
  /// True for localhost, 127.0.0.0/8 and ::1 (config::IsLoopbackHost).
  bool is_loopback() const;
  /// True for a default-constructed (unset) URL.
  bool empty() const { return host_.empty(); }

  bool operator==(const HttpUrl& other) const = default;

 private:
  bool https_ = false;
  std::string host_;
  uint16_t port_ = 0;
  std::string target_ = "/";
};

}  // namespace mailhook::config
