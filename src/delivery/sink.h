#pragma once
/// Sink: the `mailhook sink` webhook receiver for demos, debugging and tests.
/// Accepts POST on any path, verifies the Standard Webhooks signature when a
/// secret is given (401 and a line on stderr when it does not match), writes each
/// event body as one compact JSON line to `out` (flushed per line), answers 204.
///
/// Thread-safety: Start/Stop from one thread; the server's handler threads
/// serialize their writes to `out`.

#include <memory>
#include <mutex>
#include <optional>
#include <ostream>
#include <string>
#include <thread>

#include "util/result.h"
#include "util/secret.h"

namespace httplib {
class Server;
}

namespace mailhook::delivery {

/// An in-process webhook receiver.
class Sink {
 public:
  /// `out` must outlive the Sink.
  Sink(std::optional<util::Secret> secret, std::ostream& out);
  ~Sink();
  Sink(const Sink&) = delete;
  Sink& operator=(const Sink&) = delete;

  /// Binds HOST:PORT (port 0: any free port) and serves on a background thread.
  util::Status Start(const std::string& listen);
  /// The bound port (after Start).
  int port() const { return port_; }
  /// Stops serving and joins. Idempotent.
  void Stop();

 private:
  std::optional<util::Secret> secret_;
  std::ostream& out_;
  std::mutex out_mu_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
};

/// Runs a Sink until SIGINT or SIGTERM; returns the process exit code (0, or 2
/// for a bad --listen, 1 when the port cannot be bound).
int RunSink(const std::string& listen, std::optional<std::string> secret, std::ostream& out);

}  // namespace mailhook::delivery
