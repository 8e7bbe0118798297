#pragma once
/// Listen addresses: binding a non-blocking listening socket to a
/// config::HostPort (parsed once, by the loader or `sink --listen`). Shared by the health server
/// (`http.listen`) and `mailhook sink` (`--listen`).

#include <string>

#include "config/host_port.h"
#include "util/result.h"

namespace mailhook::http {

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
util::Result<Listener> BindListener(const std::string& listen, const config::HostPort& address);

}  // namespace mailhook::http
