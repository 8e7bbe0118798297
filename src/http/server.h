#pragma once
/// HealthServer: the operator-facing HTTP endpoint (`http.listen`) serving
/// GET /healthz (process alive), GET /readyz (every folder connected) and
/// GET /metrics (Prometheus text 0.0.4 from util::Metrics::Global()).
///
/// Ownership and threads: HealthServer owns one cpp-httplib server, one
/// listener thread and a small handler pool. Start() binds synchronously, so a
/// bind failure is reported to the caller; requests are then served on the
/// listener thread until Stop() (or the destructor) shuts it down and joins it.
/// The readiness callback is called on handler threads, possibly
/// concurrently: it must be thread-safe and quick. Start/Stop/port are for
/// the one thread that owns the server.

#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "util/result.h"

namespace httplib {
class Server;
}

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
  /// listen is "HOST:PORT" ("0.0.0.0:8025", "127.0.0.1:0", "[::1]:8025");
  /// port 0 picks a free port (see port()).
  HealthServer(std::string listen, std::function<Readiness()> readiness);
  ~HealthServer();  // calls Stop()
  HealthServer(const HealthServer&) = delete;
  HealthServer& operator=(const HealthServer&) = delete;

  /// Binds and starts serving. Fails (kNeedsOperator) when the address is
  /// malformed or cannot be bound; the message names the address and the fix.
  /// Call at most once.
  util::Status Start();

  /// The bound port (useful with port 0); 0 before a successful Start().
  int port() const { return port_; }

  /// Stops accepting, finishes in-flight requests and joins the threads.
  /// Idempotent.
  void Stop();

 private:
  void Route();

  std::string listen_;
  std::function<Readiness()> readiness_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
};

}  // namespace mailhook::http
