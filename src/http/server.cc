#include "http/server.h"

#include <exception>

#include "util/log.h"

namespace mailhook::http {
namespace {

using util::Error;
using util::RetryClass;

constexpr const char* kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";
constexpr const char* kTextContentType = "text/plain; charset=utf-8";

bool IsKnownPath(const std::string& path) { return path == "/healthz" || path == "/readyz" || path == "/metrics"; }

Response Text(int status, std::string body) { return Response{status, kTextContentType, {}, std::move(body), false}; }

const char* RejectReason(int status) {
  switch (status) {
    case 0: return "dropped";
    case 408: return "timeout";
    case 413: return "body";
    case 431: return "head_too_large";
    default: return "malformed";
  }
}

}  // namespace

ServerLimits HealthServer::DefaultLimits() {
  ServerLimits l;
  l.head = HeadLimits{8 * 1024, 64};
  l.head_timeout = std::chrono::seconds(5);
  l.max_body_bytes = 0;
  l.write_timeout = std::chrono::seconds(5);
  l.max_connections = 128;
  return l;
}

HealthServer::HealthServer(config::HostPort listen, std::function<Readiness()> readiness,
                           const util::MetricsCatalog& metrics, ServerLimits limits)
    : address_(std::move(listen)),
      listen_(address_.ToString()),
      readiness_(std::move(readiness)),
      metrics_(metrics),
      limits_(limits) {}

HealthServer::~HealthServer() { Stop(); }

Response HealthServer::Answer(const RequestHead& head) const {
  if (!IsKnownPath(head.path)) return Text(404, "not found\n");
  // RFC 9110 §15.5.6: 405 for a known resource with a method it does not
  // support, with an Allow field; unknown resources stay 404.
  if (head.method != "GET" && head.method != "HEAD") {
    Response r = Text(405, "method not allowed\n");
    r.fields.emplace_back("Allow", "GET, HEAD");
    return r;
  }
  // No endpoint takes a body; refuse one unread (the server then closes).
  if (head.AnnouncesBody()) return Text(413, "no request body is accepted here\n");
  if (head.path == "/healthz") return Text(200, "ok");
  if (head.path == "/metrics") {
    return Response{200, kMetricsContentType, {}, metrics_.Render(), false};
  }
  Readiness r = readiness_ ? readiness_() : Readiness{true, {}};
  if (r.ready) return Text(200, "ready");
  std::string body;
  for (const auto& line : r.not_ready) body += line + "\n";
  if (body.empty()) body = "not ready\n";
  return Text(503, std::move(body));
}

util::Status HealthServer::Start() {
  if (server_) {
    return Error("http.already_started", RetryClass::kNeedsOperator,
                 "HealthServer::Start called twice for " + listen_ + " (a bug)");
  }
  // Bind here, on the caller's thread, so a bad address is an error the
  // daemon reports at start-up instead of a log line from a thread.
  auto listener = BindListener(listen_, address_);
  if (!listener.ok()) return listener.error();

  server_ = std::make_unique<PollServer>(
      limits_,
      [this](const RequestHead& head) -> std::optional<Response> {
        try {
          return Answer(head);
        } catch (const std::exception& e) {
          util::Log(util::Area::kHttp).error("http.handler_failed path={} cause=\"{}\"", head.path, e.what());
          return Text(500, "internal error\n");
        }
      },
      nullptr,
      [this](int status, const std::string& cause) {
        // Debug only: a hostile client must not be able to flood the log.
        util::Log(util::Area::kHttp).debug("http.rejected status={} cause=\"{}\"", status, cause);
        metrics_.HttpRejected(RejectReason(status)).Inc();
      });
  if (auto st = server_->Start(*listener); !st.ok()) {
    server_.reset();
    return st;
  }
  port_ = listener->port;
  util::Log(util::Area::kHttp).info("http.listen address={} port={}", listen_, port_);
  return util::Ok();
}

void HealthServer::Stop() {
  if (!server_) return;
  server_->Stop();
  server_.reset();
  util::Log(util::Area::kHttp).info("http.stopped address={}", listen_);
}

}  // namespace mailhook::http
