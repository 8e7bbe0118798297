#include "delivery/sink.h"

#include <signal.h>

#include <chrono>
#include <iostream>

#include <nlohmann/json.hpp>

#include "config/host_port.h"
#include "delivery/signing.h"
#include "http/listen_address.h"

namespace mailhook::delivery {
namespace {

using util::Error;
using util::RetryClass;

http::Response Status(int status, std::string body = {}) {
  return http::Response{status, "text/plain; charset=utf-8", {}, std::move(body), false};
}

// The sink answers POST only, and only a body it can read as sent.
std::optional<http::Response> CheckHead(const http::RequestHead& head) {
  if (head.method != "POST") {
    http::Response r = Status(405, "POST an event here\n");
    r.fields.emplace_back("Allow", "POST");
    return r;
  }
  auto encoding = head.Field("content-encoding");
  if (encoding && !encoding->empty() && *encoding != "identity") {
    std::cerr << "sink.rejected path=" << head.path
              << " status=415 cause=\"Content-Encoding is not accepted: send the event uncompressed\"" << std::endl;
    return Status(415, "send the event uncompressed\n");
  }
  return std::nullopt;
}

}  // namespace

http::ServerLimits Sink::DefaultLimits() {
  http::ServerLimits l;
  l.head = http::HeadLimits{16 * 1024, 100};
  l.head_timeout = std::chrono::seconds(10);
  l.max_body_bytes = uint64_t{256} << 20;
  l.body_timeout = std::chrono::seconds(60);
  l.max_buffered_body_bytes = uint64_t{512} << 20;
  l.write_timeout = std::chrono::seconds(10);
  l.max_connections = 64;
  return l;
}

Sink::Sink(std::optional<util::Secret> secret, std::ostream& out, http::ServerLimits limits)
    : secret_(std::move(secret)), out_(out), limits_(limits) {}

Sink::~Sink() { Stop(); }

http::Response Sink::Handle(const http::Request& req) {
  const http::RequestHead& h = req.head;
  if (secret_) {
    bool ok = Verify({*secret_}, h.Field("webhook-id").value_or(""), h.Field("webhook-timestamp").value_or(""),
                     req.body, h.Field("webhook-signature").value_or(""), std::chrono::system_clock::now());
    if (!ok) {
      std::cerr << "sink.rejected path=" << h.path << " id=" << h.Field("webhook-id").value_or("")
                << " cause=\"signature or timestamp does not verify\"" << std::endl;
      return Status(401);
    }
  }
  auto json = nlohmann::json::parse(req.body, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) {
    std::cerr << "sink.rejected path=" << h.path << " cause=\"body is not JSON\"" << std::endl;
    return Status(400);
  }
  // Replace invalid UTF-8 instead of throwing: a debugging tool should show
  // what arrived.
  out_ << json.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << std::endl;
  return Status(204);
}

util::Status Sink::Start(const std::string& listen) {
  if (server_) {
    return Error("sink.already_started", RetryClass::kNeedsOperator, "Sink::Start called twice (a bug)");
  }
  auto hp = config::HostPort::Parse(listen);
  if (!hp.ok()) {
    return Error("sink.listen", RetryClass::kNeedsOperator,
                 "--listen " + listen + " is not HOST:PORT (e.g. 127.0.0.1:8080 or [::1]:8080)");
  }
  if (secret_) {
    if (auto key = DecodeSecret(*secret_); !key.ok()) return key.error();
  }
  auto listener = http::BindListener(listen, *hp);
  if (!listener.ok()) {
    return Error(util::ErrorKind::kBind, "sink.bind", RetryClass::kNeedsOperator,
                 "cannot listen on " + listen + ": address in use or not local; pick another port");
  }
  server_ = std::make_unique<http::PollServer>(
      limits_, CheckHead, [this](const http::Request& r) { return Handle(r); },
      [](int status, const std::string& cause) {
        std::cerr << "sink.rejected status=" << status << " cause=\"" << cause << "\"" << std::endl;
      });
  if (auto st = server_->Start(*listener); !st.ok()) {
    server_.reset();
    return st;
  }
  port_ = listener->port;
  return util::Ok();
}

void Sink::Stop() {
  if (server_) server_->Stop();
  server_.reset();
}

int RunSink(const std::string& listen, std::optional<std::string> secret, std::ostream& out) {
  // Block the stop signals before the server thread starts, so it inherits the
  // mask and sigwait below is the only place the signals are taken.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  sigset_t old;
  pthread_sigmask(SIG_BLOCK, &stop_signals, &old);

  std::optional<util::Secret> s;
  if (secret) s = util::Secret(*secret);
  Sink sink(std::move(s), out);
  auto st = sink.Start(listen);
  if (!st) {
    std::cerr << "mailhook sink: " << st.error().message() << std::endl;
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    return st.error().IsBind() ? 1 : 2;
  }
  std::cerr << "sink.listening addr=" << listen << " port=" << sink.port() << " verify=" << (secret ? "on" : "off")
            << std::endl;
  int sig = 0;
  sigwait(&stop_signals, &sig);
  sink.Stop();
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  return 0;
}

}  // namespace mailhook::delivery
