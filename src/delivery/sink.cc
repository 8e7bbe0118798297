#include "delivery/sink.h"

#include <httplib.h>
#include <signal.h>

#include <charconv>
#include <iostream>

#include <nlohmann/json.hpp>

#include "delivery/signing.h"

namespace mailhook::delivery {
namespace {

using util::Error;
using util::RetryClass;

/// Splits "HOST:PORT" (HOST may be "[::1]"); false when malformed.
bool SplitListen(const std::string& listen, std::string* host, int* port) {
  auto colon = listen.rfind(':');
  if (colon == std::string::npos || colon == 0) return false;
  *host = listen.substr(0, colon);
  if (host->size() > 2 && host->front() == '[' && host->back() == ']') {
    *host = host->substr(1, host->size() - 2);
  }
  std::string p = listen.substr(colon + 1);
  auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), *port);
  return ec == std::errc() && end == p.data() + p.size() && *port >= 0 && *port <= 65535;
}

}  // namespace

Sink::Sink(std::optional<util::Secret> secret, std::ostream& out)
    : secret_(std::move(secret)), out_(out) {}

Sink::~Sink() { Stop(); }

util::Status Sink::Start(const std::string& listen) {
  std::string host;
  int port = 0;
  if (!SplitListen(listen, &host, &port)) {
    return Error("sink.listen", RetryClass::kNeedsOperator,
                 "--listen " + listen + " is not HOST:PORT (e.g. 127.0.0.1:8080)");
  }
  if (secret_) {
    if (auto key = DecodeSecret(*secret_); !key.ok()) return key.error();
  }
  server_ = std::make_unique<httplib::Server>();
  server_->Post(".*", [this](const httplib::Request& req, httplib::Response& res) {
    if (secret_) {
      bool ok = Verify({*secret_}, req.get_header_value("webhook-id"),
                       req.get_header_value("webhook-timestamp"), req.body,
                       req.get_header_value("webhook-signature"),
                       std::chrono::system_clock::now());
      if (!ok) {
        std::lock_guard lock(out_mu_);
        std::cerr << "sink.rejected path=" << req.path
                  << " id=" << req.get_header_value("webhook-id")
                  << " cause=\"signature or timestamp does not verify\"" << std::endl;
        res.status = 401;
        return;
      }
    }
    auto json = nlohmann::json::parse(req.body, nullptr, /*allow_exceptions=*/false);
    if (json.is_discarded()) {
      std::lock_guard lock(out_mu_);
      std::cerr << "sink.rejected path=" << req.path << " cause=\"body is not JSON\""
                << std::endl;
      res.status = 400;
      return;
    }
    {
      std::lock_guard lock(out_mu_);
      // Replace invalid UTF-8 instead of throwing: a debugging tool should show
      // what arrived.
      out_ << json.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << std::endl;
    }
    res.status = 204;
  });
  if (port == 0) {
    port_ = server_->bind_to_any_port(host);
  } else {
    port_ = server_->bind_to_port(host, port) ? port : -1;
  }
  if (port_ < 0) {
    server_.reset();
    return Error("sink.bind", RetryClass::kNeedsOperator,
                 "cannot listen on " + listen + ": address in use or not local; pick another port");
  }
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  // httplib 0.11 has no wait_until_ready(), and a stop() before the accept loop
  // runs is lost; wait (briefly) until it runs so Stop() always works.
  for (int i = 0; i < 5000 && !server_->is_running(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return util::Ok();
}

void Sink::Stop() {
  if (server_) server_->stop();
  if (thread_.joinable()) thread_.join();
  server_.reset();
}

int RunSink(const std::string& listen, std::optional<std::string> secret, std::ostream& out) {
  // Block the stop signals before the server threads start, so they inherit the
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
    return st.error().code() == "sink.bind" ? 1 : 2;
  }
  std::cerr << "sink.listening addr=" << listen << " port=" << sink.port()
            << " verify=" << (secret ? "on" : "off") << std::endl;
  int sig = 0;
  sigwait(&stop_signals, &sig);
  sink.Stop();
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  return 0;
}

}  // namespace mailhook::delivery
