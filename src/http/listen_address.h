#pragma once
/// Listen addresses: parsing "HOST:PORT" / "[V6]:PORT" and binding a
/// non-blocking listening socket to it. Shared by the health server
/// (`http.listen`) and `mailhook sink` (`--listen`).

#include <string>

#include "util/result.h"

namespace mailhook::http {

/// A parsed listen address: host without brackets, port 0..65535.
struct HostPort {
  std::string host;
  int port = 0;
};

/// Parses "HOST:PORT" or "[V6]:PORT" (the last colon separates the port, so a
/// bracketed IPv6 literal keeps its own colons; an unbracketed one is refused
/// as ambiguous). Error code "http.listen_invalid" (kNeedsOperator); the
/// message quotes `listen` and shows the expected form.
util::Result<HostPort> ParseListen(const std::string& listen);

/// A bound, listening, non-blocking, close-on-exec socket and its port.
struct Listener {
  int fd = -1;
  int port = 0;
};

/// Binds the first address `host` resolves to (numeric or a name such as
/// "localhost") with SO_REUSEADDR only, never SO_REUSEPORT: a second process
/// must fail to bind, not silently share the port. Port 0 picks a free port
/// (see Listener::port). Error code "http.bind" (kNeedsOperator); the message
/// names `listen`, the system's cause and the fix. The caller owns the fd.
util::Result<Listener> BindListener(const std::string& listen, const HostPort& address);

}  // namespace mailhook::http
