#pragma once
/// Sink: the `mailhook sink` webhook receiver for demos, debugging and tests.
/// Accepts POST on any path, verifies the Standard Webhooks signature when a
/// secret is given (401 and a line on stderr when it does not match), writes each
/// event body as one compact JSON line to `out` (flushed per line), answers 204.
///
/// It faces whatever can reach its port, so it runs on http::PollServer (see
/// poll_server.h): one thread, bounded heads, a body only with Content-Length
/// and at most DefaultLimits().max_body_bytes (256 MiB, above the largest event
/// mailhook builds), Transfer-Encoding refused (411) and Content-Encoding
/// refused (415) before the body is read, total deadlines per head, body and
/// response, and a connection cap that evicts the oldest stalled client, so a
/// slow or stalled sender never stops the others. Every refusal is a line on
/// stderr.
///
/// Thread-safety: Start/Stop from one thread; requests are handled (and `out`
/// written) on the server's one thread.

#include <memory>
#include <optional>
#include <ostream>
#include <string>

#include "http/poll_server.h"
#include "util/result.h"
#include "util/secret.h"

namespace mailhook::delivery {

/// An in-process webhook receiver.
class Sink {
 public:
  /// Head 16 KiB / 100 fields within 10 s; body up to 256 MiB within 60 s;
  /// 512 MiB of bodies in progress at once (more: 503 + Retry-After);
  /// response taken within 10 s; 64 connections.
  static http::ServerLimits DefaultLimits();

  /// `out` must outlive the Sink.
  Sink(std::optional<util::Secret> secret, std::ostream& out, http::ServerLimits limits = DefaultLimits());
  ~Sink();
  Sink(const Sink&) = delete;
  Sink& operator=(const Sink&) = delete;

  /// Binds HOST:PORT (port 0: any free port) and serves on a background thread.
  /// Errors: "sink.listen" (malformed address), "sink.bind" (cannot bind;
  /// ErrorKind::kBind).
  util::Status Start(const std::string& listen);
  /// The bound port (after Start).
  int port() const { return port_; }
  /// Stops serving and joins. Idempotent.
  void Stop();

 private:
  http::Response Handle(const http::Request& request);

  std::optional<util::Secret> secret_;
  std::ostream& out_;
  http::ServerLimits limits_;
  std::unique_ptr<http::PollServer> server_;
  int port_ = 0;
};

/// Runs a Sink until SIGINT or SIGTERM; returns the process exit code (0, or 2
/// for a bad --listen, 1 when the port cannot be bound).
int RunSink(const std::string& listen, std::optional<std::string> secret, std::ostream& out);

}  // namespace mailhook::delivery
