#include "http/server.h"

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <exception>

#include <sys/socket.h>

#include <httplib.h>

#include "util/log.h"
#include "util/metrics.h"

namespace mailhook::http {
namespace {

using util::Error;
using util::RetryClass;

constexpr const char* kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";
constexpr const char* kTextContentType = "text/plain; charset=utf-8";

struct HostPort {
  std::string host;
  int port = 0;
};

// "HOST:PORT" or "[V6]:PORT". The last colon separates the port so that a
// bracketed IPv6 literal keeps its own colons.
util::Result<HostPort> ParseListen(const std::string& listen) {
  auto bad = [&listen] {
    return Error("http.listen_invalid", RetryClass::kNeedsOperator,
                 "http.listen \"" + listen +
                     "\" is not HOST:PORT; write e.g. \"0.0.0.0:8025\" or \"[::]:8025\"");
  };
  auto colon = listen.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == listen.size()) return bad();
  HostPort hp;
  hp.host = listen.substr(0, colon);
  if (hp.host.front() == '[') {
    if (hp.host.size() < 3 || hp.host.back() != ']') return bad();
    hp.host = hp.host.substr(1, hp.host.size() - 2);
  } else if (hp.host.find(':') != std::string::npos) {
    return bad();  // an unbracketed IPv6 literal is ambiguous
  }
  std::string port = listen.substr(colon + 1);
  if (port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos) return bad();
  hp.port = std::stoi(port);
  if (hp.port > 65535) return bad();
  return hp;
}

bool IsKnownPath(const std::string& path) {
  return path == "/healthz" || path == "/readyz" || path == "/metrics";
}

}  // namespace

HealthServer::HealthServer(std::string listen, std::function<Readiness()> readiness)
    : listen_(std::move(listen)), readiness_(std::move(readiness)) {}

HealthServer::~HealthServer() { Stop(); }

void HealthServer::Route() {
  httplib::Server& s = *server_;
  // Probes and scrapes are tiny and rare: two workers are plenty, and the
  // library's default (one per core, at least 8) would waste threads.
  s.new_task_queue = [] { return new httplib::ThreadPool(2); };
  s.set_payload_max_length(64 * 1024);  // no endpoint takes a body
  // The library's default adds SO_REUSEPORT, which lets a second daemon bind
  // the same port and silently take half the probes and scrapes. Keep only
  // SO_REUSEADDR (a restart may bind while old connections sit in TIME_WAIT).
  s.set_socket_options([](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  s.set_read_timeout(5, 0);
  s.set_write_timeout(5, 0);
  s.set_keep_alive_timeout(5);

  s.Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("ok", kTextContentType);
  });
  s.Get("/readyz", [this](const httplib::Request&, httplib::Response& res) {
    Readiness r = readiness_ ? readiness_() : Readiness{true, {}};
    if (r.ready) {
      res.set_content("ready", kTextContentType);
      return;
    }
    std::string body;
    for (const auto& line : r.not_ready) body += line + "\n";
    if (body.empty()) body = "not ready\n";
    res.status = 503;
    res.set_content(body, kTextContentType);
  });
  s.Get("/metrics", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(util::Metrics::Global().Render(), kMetricsContentType);
  });
  s.Get(".*", [](const httplib::Request&, httplib::Response& res) {
    res.status = 404;
    res.set_content("not found\n", kTextContentType);
  });

  // RFC 9110 §15.5.6: 405 for a known resource with a method it does not
  // support, with an Allow header; unknown resources stay 404. cpp-httplib
  // answers HEAD from the GET handlers.
  auto other_method = [](const httplib::Request& req, httplib::Response& res) {
    if (IsKnownPath(req.path)) {
      res.status = 405;
      res.set_header("Allow", "GET, HEAD");
      res.set_content("method not allowed\n", kTextContentType);
    } else {
      res.status = 404;
      res.set_content("not found\n", kTextContentType);
    }
  };
  s.Post(".*", other_method);
  s.Put(".*", other_method);
  s.Patch(".*", other_method);
  s.Delete(".*", other_method);
  s.Options(".*", other_method);

  s.set_exception_handler(
      [](const httplib::Request& req, httplib::Response& res, std::exception_ptr ep) {
        std::string what = "unknown exception";
        try {
          std::rethrow_exception(ep);
        } catch (const std::exception& e) {
          what = e.what();
        } catch (...) {
        }
        util::Logger("http")->error("http.handler_failed path={} cause=\"{}\"", req.path, what);
        res.status = 500;
        res.set_content("internal error\n", kTextContentType);
      });
}

util::Status HealthServer::Start() {
  if (server_) {
    return Error("http.already_started", RetryClass::kNeedsOperator,
                 "HealthServer::Start called twice for " + listen_ + " (a bug)");
  }
  auto hp = ParseListen(listen_);
  if (!hp.ok()) return hp.error();

  server_ = std::make_unique<httplib::Server>();
  Route();

  // Bind here, on the caller's thread, so a bad address is an error the
  // daemon reports at start-up instead of a log line from a thread.
  errno = 0;
  int port = hp->port;
  bool bound = false;
  if (port == 0) {
    port = server_->bind_to_any_port(hp->host);
    bound = port > 0;
  } else {
    bound = server_->bind_to_port(hp->host, port);
  }
  if (!bound) {
    std::string cause = errno != 0 ? std::strerror(errno) : "address not usable";
    server_.reset();
    return Error("http.bind", RetryClass::kNeedsOperator,
                 "cannot listen on " + listen_ + " (" + cause +
                     "): port in use? change http.listen, or check that the host is a local "
                     "address");
  }
  port_ = port;

  auto done = std::make_shared<std::atomic<bool>>(false);
  thread_ = std::thread([this, done] {
    try {
      server_->listen_after_bind();
    } catch (const std::exception& e) {
      util::Logger("http")->error("http.listener_failed cause=\"{}\"", e.what());
    } catch (...) {
      util::Logger("http")->error("http.listener_failed cause=unknown");
    }
    done->store(true);
  });
  // cpp-httplib's stop() is a no-op until the listener thread has marked the
  // server running (its first statement); wait for that so an early Stop()
  // cannot hang the join. The library offers no notification, so poll.
  while (!server_->is_running() && !done->load()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  if (!server_->is_running()) {
    Stop();
    return Error("http.listen_failed", RetryClass::kNeedsOperator,
                 "HTTP listener on " + listen_ + " stopped at once; see the http log");
  }
  util::Logger("http")->info("http.listen address={} port={}", listen_, port_);
  return util::Ok();
}

void HealthServer::Stop() {
  if (server_) server_->stop();
  if (thread_.joinable()) {
    thread_.join();
    util::Logger("http")->info("http.stopped address={}", listen_);
  }
}

}  // namespace mailhook::http
