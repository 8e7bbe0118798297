#pragma once
/// `mailhook healthcheck [-c FILE | --url URL]`: asks a running daemon's
/// `/healthz` whether it is alive, for container HEALTHCHECKs (no curl in the
/// image). Exit 0 when it answers 2xx within kHealthcheckDeadline, else 1 with
/// one line on stderr naming why. Plain HTTP only: the health server has no TLS.
/// Thread-safe (no shared state); blocks for at most the deadline (plus name
/// resolution when the host is a name rather than an address).

#include <chrono>
#include <cstdint>
#include <ostream>
#include <string>

#include "config/host_port.h"
#include "util/result.h"

namespace mailhook::daemon {

/// The whole probe (connect, send, first answer line) must fit in this.
inline constexpr std::chrono::milliseconds kHealthcheckDeadline{3000};

/// Where a probe goes: host (address or name, no brackets), port and path.
struct HealthTarget {
  std::string host;
  uint16_t port = 0;
  std::string path = "/healthz";

  /// "http://host:port/path" (IPv6 in brackets), for messages.
  std::string ToString() const;
};

/// The target for a daemon listening on `listen`: a wildcard address
/// (0.0.0.0, ::, empty) is probed on the loopback address of its family.
HealthTarget HealthTargetFor(const config::HostPort& listen);

/// Reads `http.listen` from the config at `path` (the whole config is loaded,
/// as `run` loads it). Errors: the config does not load, or has no http.listen
/// (the message says how to add one).
util::Result<HealthTarget> HealthTargetFromConfig(const std::string& path);

/// Parses `--url`: http://HOST[:PORT][/PATH]; a URL without a path probes /healthz.
util::Result<HealthTarget> HealthTargetFromUrl(const std::string& url);

/// GETs the target and returns the status code of the answer. Errors
/// (code "healthcheck"): nothing listening, no answer within `deadline`, not HTTP.
util::Result<int> ProbeHealth(const HealthTarget& target, std::chrono::milliseconds deadline);

/// The command. Exactly one of `config_path` and `url` is non-empty.
/// Returns 0 (2xx) or 1; prints one line on `out` (success) or `err` (why not).
int RunHealthcheck(const std::string& config_path, const std::string& url, std::ostream& out, std::ostream& err,
                   std::chrono::milliseconds deadline = kHealthcheckDeadline);

}  // namespace mailhook::daemon
