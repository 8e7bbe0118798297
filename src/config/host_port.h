#pragma once
/// HostPort: a listen address ("HOST:PORT", "[V6]:PORT"), parsed once, by the
/// loader for `http.listen` and by `mailhook sink --listen`, and handed to the
/// code that binds it (http/listen_address.h) without being parsed again.
///
/// Rules: the last colon separates the port, so a bracketed IPv6 literal keeps
/// its own colons; an unbracketed IPv6 literal ("::1:8025") is refused as
/// ambiguous; the port is 0..65535 (0: any free port, for tests). Value type.

#include <cstdint>
#include <string>
#include <string_view>

#include "util/result.h"

namespace mailhook::config {

/// A host (name or address, without brackets) and a port.
class HostPort {
 public:
  HostPort() = default;
  HostPort(std::string host, uint16_t port) : host_(std::move(host)), port_(port) {}

  /// Error code "config.listen" (kNeedsOperator); the message quotes `text`
  /// and shows the expected form.
  static util::Result<HostPort> Parse(std::string_view text);

  const std::string& host() const { return host_; }
  uint16_t port() const { return port_; }
  /// "host:port", "[v6]:port": the form Parse reads back.
  std::string ToString() const;

  bool operator==(const HostPort& other) const = default;

 private:
  std::string host_;
  uint16_t port_ = 0;
};

}  // namespace mailhook::config
