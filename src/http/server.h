#pragma once
/// HealthServer: the operator-facing HTTP endpoint (`http.listen`) serving
/// GET /healthz (process alive), GET /readyz (every folder connected) and
/// GET /metrics (Prometheus text 0.0.4 of the daemon's util::MetricsCatalog).
///
/// It must keep answering /healthz while other clients misbehave (a liveness
/// probe that times out restarts the container), so it runs on PollServer (see
/// poll_server.h for why not cpp-httplib): one thread, non-blocking sockets,
/// only GET and HEAD, no request bodies (a request that announces one is
/// answered 413, or 405 for another method, and closed before a byte of the
/// body is read), a bounded head that must arrive within a deadline, and a cap
/// on connections that evicts the oldest stalled one.
///
/// Ownership and threads: HealthServer owns its PollServer and thereby one
/// thread. Start() binds synchronously, so a bind failure is reported to the
/// caller; requests are served until Stop() (or the destructor). The readiness
/// callback is called on the server thread: it must be thread-safe and quick
/// (every other client waits while it runs). Start/Stop/port are for the one
/// thread that owns the server.

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "config/host_port.h"
#include "http/poll_server.h"
#include "util/metrics_catalog.h"
#include "util/result.h"

namespace mailhook::http {

/// Whether the daemon is ready to serve, and if not, why (one line per
/// folder or component that is not, e.g. "support/INBOX: connecting").
struct Readiness {
  bool ready = false;
  std::vector<std::string> not_ready;
};

/// Serves /healthz, /readyz and /metrics on one listen address.
class HealthServer {
 public:
  /// What the endpoint tolerates by default: a 8 KiB head of at most 64
  /// fields within 5 s, no body, responses taken within 5 s, 128 connections.
  static ServerLimits DefaultLimits();

  /// `listen` comes parsed (config::HostPort, e.g. from `http.listen`);
  /// port 0 picks a free port (see port()). /metrics renders `metrics`, which
  /// also counts refused requests and must outlive this.
  HealthServer(config::HostPort listen, std::function<Readiness()> readiness, const util::MetricsCatalog& metrics,
               ServerLimits limits = DefaultLimits());
  ~HealthServer();  // calls Stop()
  HealthServer(const HealthServer&) = delete;
  HealthServer& operator=(const HealthServer&) = delete;

  /// Binds and starts serving. Fails (kNeedsOperator) when the address is
  /// malformed or cannot be bound; the message names the address and the fix.
  /// Call at most once.
  util::Status Start();

  /// The bound port (useful with port 0); 0 before a successful Start().
  int port() const { return port_; }

  /// Stops serving, closes every connection and joins the thread. Idempotent.
  void Stop();

 private:
  Response Answer(const RequestHead& head) const;

  config::HostPort address_;
  std::string listen_;  // address_ as text, for messages
  std::function<Readiness()> readiness_;
  const util::MetricsCatalog& metrics_;
  ServerLimits limits_;
  std::unique_ptr<PollServer> server_;
  int port_ = 0;
};

}  // namespace mailhook::http
