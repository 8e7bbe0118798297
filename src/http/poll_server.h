#pragma once
/// PollServer: a small HTTP/1.1 server for peers that may be hostile or
/// broken, used by the health endpoints (`http.listen`) and `mailhook sink`.
///
/// Why not cpp-httplib's server (used here before): in 0.11.4 it reads chunked
/// and compressed request bodies without limit, does not bound the number of
/// header fields, applies its timeouts per read (a client sending a byte every
/// few seconds holds a thread forever) and serves on a fixed thread pool, so
/// two stalled clients made /healthz time out and the container was
/// restarted. Bolting limits onto it would mean patching a compiled system
/// library. This server is one thread on poll() with non-blocking sockets,
/// where a stalled client costs a few KiB and a pollfd, never a thread:
///   - the head (request line + fields) is bounded in bytes and field count
///     and must arrive within head_timeout of the connection (or of the end of
///     the previous response on a kept-alive connection): a total deadline,
///     not a per-read one;
///   - a body is read only when the head handler lets the request through and
///     its Content-Length is within max_body_bytes; Transfer-Encoding (chunked,
///     compressed) is refused before a byte of it is read; bodies in progress
///     share one memory budget;
///   - a response must be taken by the client within write_timeout;
///   - at max_connections, a new connection pushes out the one that has waited
///     longest in its current phase (the oldest stalled one), so a flood of
///     idle sockets cannot lock out a probe.
/// Handlers run on the server thread: they must be quick (the health routes
/// and the sink's verify-and-print are).
///
/// Ownership and threads: PollServer owns the listening socket from Start()
/// on, its connections and its one thread. Start/Stop/port from one owning
/// thread; Stop() is idempotent and also called by the destructor.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "http/listen_address.h"
#include "http/request_head.h"
#include "util/result.h"

namespace mailhook::http {

/// What one server tolerates from its clients.
struct ServerLimits {
  HeadLimits head;                                ///< bytes and fields of a request head
  std::chrono::milliseconds head_timeout{5000};   ///< whole head, from connect or last response
  uint64_t max_body_bytes = 0;                    ///< 0: a request must not carry a body
  std::chrono::milliseconds body_timeout{30000};  ///< whole body, from the end of the head
  uint64_t max_buffered_body_bytes = 0;           ///< all bodies in progress together (0: = max_body_bytes)
  std::chrono::milliseconds write_timeout{5000};  ///< whole response
  size_t max_connections = 64;                    ///< open connections, new ones evict the oldest stalled
};

/// A request with its body (empty when none was announced).
struct Request {
  RequestHead head;
  std::string body;
};

/// A response; Content-Length and Connection are added by the server, and a
/// HEAD request gets the head only.
struct Response {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::vector<std::pair<std::string, std::string>> fields;  ///< extra fields
  std::string body;
  bool close = false;  ///< close the connection after this response
};

/// Serves one listening socket on one thread; see the file comment.
class PollServer {
 public:
  /// Sees every complete head first. A response answers the request without
  /// reading any body (and closes the connection if a body was announced);
  /// nullopt lets the server read the body (within limits) and call Handler.
  using HeadHandler = std::function<std::optional<Response>(const RequestHead&)>;
  using Handler = std::function<Response(const Request&)>;
  /// Told about every request or connection the server itself refused or
  /// dropped (status 0: closed without an answer), for logs and metrics.
  using RejectReporter = std::function<void(int status, const std::string& cause)>;

  PollServer(ServerLimits limits, HeadHandler on_head, Handler on_request, RejectReporter on_reject = nullptr);
  ~PollServer();
  PollServer(const PollServer&) = delete;
  PollServer& operator=(const PollServer&) = delete;

  /// Takes ownership of `listener` and starts the server thread. Fails
  /// (kNeedsOperator) only when the wake-up descriptor cannot be created or
  /// when called twice.
  util::Status Start(Listener listener);
  /// The bound port; 0 before Start().
  int port() const { return port_; }
  /// Stops the thread, closes the listener and every connection (requests in
  /// progress are dropped: probes and test senders retry). Idempotent.
  void Stop();

 private:
  struct Conn;
  using Clock = std::chrono::steady_clock;

  void Loop();
  void AcceptSome(Clock::time_point now);
  void EvictOldest();
  void Service(Conn& c, short revents, Clock::time_point now);
  void ReadInput(Conn& c, Clock::time_point now);
  void ProcessInput(Conn& c, Clock::time_point now);
  void OnHead(Conn& c, RequestHead head, Clock::time_point now);
  void FinishRequest(Conn& c, Clock::time_point now);
  void Respond(Conn& c, const Response& r, bool head_only, Clock::time_point now);
  void Refuse(Conn& c, int status, const std::string& cause, Clock::time_point now);
  void Flush(Conn& c, Clock::time_point now);
  void AfterResponse(Conn& c, Clock::time_point now);
  void Expire(Conn& c, Clock::time_point now);
  void Close(Conn& c);

  ServerLimits limits_;
  HeadHandler on_head_;
  Handler on_request_;
  RejectReporter on_reject_;
  int listen_fd_ = -1;
  int wake_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  // Owned by the server thread while it runs.
  std::vector<std::unique_ptr<Conn>> conns_;
  uint64_t buffered_body_bytes_ = 0;  // announced lengths of bodies in progress
  Clock::time_point accept_paused_until_{};
};

}  // namespace mailhook::http
