#include "daemon/healthcheck_command.h"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <string_view>

#include "config/config.h"
#include "config/http_url.h"
#include "util/fd.h"

namespace mailhook::daemon {
namespace {

using Clock = std::chrono::steady_clock;

util::Error HealthError(std::string message) {
  return util::Error("healthcheck", util::RetryClass::kNeedsOperator, std::move(message));
}

/// Milliseconds left until `deadline` (0 when past), for poll().
int MsLeft(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left > 0 ? static_cast<int>(left) : 0;
}

/// Waits for `events` on `fd` until the deadline; false when it passed.
bool WaitFor(int fd, short events, Clock::time_point deadline) {
  for (;;) {
    int ms = MsLeft(deadline);
    if (ms == 0) return false;
    pollfd p{fd, events, 0};
    int n = poll(&p, 1, ms);
    if (n > 0) return true;
    if (n < 0 && errno != EINTR) return false;
  }
}

/// Why a refused connection usually happens, for the one line on stderr.
std::string NotRunningHint() { return " (is mailhook running, and does http.listen name this address and port?)"; }

/// A non-blocking connection to one resolved address; the error says why not.
util::Result<int> Connect(const addrinfo& ai, const HealthTarget& target, Clock::time_point deadline,
                          std::chrono::milliseconds budget) {
  int fd = socket(ai.ai_family, ai.ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai.ai_protocol);
  if (fd < 0) return HealthError(std::string("cannot create a socket: ") + strerror(errno));
  auto fail = [&](const std::string& why) {
    close(fd);
    return HealthError(why);
  };
  if (connect(fd, ai.ai_addr, ai.ai_addrlen) != 0 && errno != EINPROGRESS) {
    return fail("cannot connect to " + target.ToString() + ": " + strerror(errno) + NotRunningHint());
  }
  if (!WaitFor(fd, POLLOUT, deadline)) {
    return fail("no connection to " + target.ToString() + " within " + std::to_string(budget.count()) + " ms");
  }
  int so_error = 0;
  socklen_t len = sizeof(so_error);
  getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &len);
  if (so_error != 0) {
    return fail("cannot connect to " + target.ToString() + ": " + strerror(so_error) + NotRunningHint());
  }
  return fd;
}

/// Sends the request and reads up to the end of the status line.
util::Result<int> Exchange(int fd, const HealthTarget& target, Clock::time_point deadline,
                           std::chrono::milliseconds budget) {
  std::string host = target.host.find(':') != std::string::npos ? "[" + target.host + "]" : target.host;
  // HTTP/1.0 with Connection: close: one request, the server closes after it.
  std::string request = "GET " + target.path + " HTTP/1.0\r\nHost: " + host + ":" + std::to_string(target.port) +
                        "\r\nUser-Agent: mailhook-healthcheck\r\nConnection: close\r\n\r\n";
  std::string_view rest = request;
  auto timeout = [&] {
    return HealthError("no answer from " + target.ToString() + " within " + std::to_string(budget.count()) +
                       " ms (the daemon accepts connections but does not answer: stuck or overloaded)");
  };
  while (!rest.empty()) {
    if (!WaitFor(fd, POLLOUT, deadline)) return timeout();
    ssize_t n = send(fd, rest.data(), rest.size(), MSG_NOSIGNAL);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (n <= 0) return HealthError("cannot send to " + target.ToString() + ": " + strerror(errno));
    rest.remove_prefix(static_cast<size_t>(n));
  }
  std::string answer;
  char buf[512];
  while (answer.find('\n') == std::string::npos && answer.size() < 4096) {
    if (!WaitFor(fd, POLLIN, deadline)) return timeout();
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (n < 0) return HealthError("cannot read from " + target.ToString() + ": " + strerror(errno));
    if (n == 0) break;
    answer.append(buf, static_cast<size_t>(n));
  }
  // "HTTP/1.1 200 OK": the code is the three digits after the first space.
  size_t space = answer.find(' ');
  if (!answer.starts_with("HTTP/") || space == std::string::npos || answer.size() < space + 4) {
    return HealthError(target.ToString() + " did not answer with HTTP (is another program on that port?)");
  }
  int code = 0;
  for (size_t i = space + 1; i < space + 4; ++i) {
    if (answer[i] < '0' || answer[i] > '9') return HealthError(target.ToString() + " sent a malformed status line");
    code = code * 10 + (answer[i] - '0');
  }
  return code;
}

}  // namespace

std::string HealthTarget::ToString() const {
  std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  return "http://" + h + ":" + std::to_string(port) + path;
}

HealthTarget HealthTargetFor(const config::HostPort& listen) {
  HealthTarget t;
  const std::string& h = listen.host();
  // A wildcard listener answers on loopback too; connecting to 0.0.0.0 is not portable.
  if (h.empty() || h == "0.0.0.0" || h == "*") {
    t.host = "127.0.0.1";
  } else if (h == "::" || h == "[::]") {
    t.host = "::1";
  } else {
    t.host = h;
  }
  t.port = listen.port();
  return t;
}

util::Result<HealthTarget> HealthTargetFromConfig(const std::string& path) {
  // Only http.listen: a probe every few seconds must not read secrets, and a
  // config being edited is not the running daemon's health.
  auto listen = config::ReadHttpListen(path);
  if (!listen.ok()) return HealthError(listen.error().message());
  if (!listen->has_value()) {
    return HealthError("config " + path +
                       " has no http.listen, so mailhook serves no /healthz; add `http: { listen: \"0.0.0.0:8025\" }`"
                       " (or pass --url)");
  }
  return HealthTargetFor(**listen);
}

util::Result<HealthTarget> HealthTargetFromUrl(const std::string& url) {
  auto parsed = config::HttpUrl::Parse(url);
  if (!parsed.ok()) return HealthError("--url: " + parsed.error().message());
  if (parsed->https()) {
    return HealthError("--url: use http://, not https:// (mailhook's health server speaks plain HTTP)");
  }
  HealthTarget t{parsed->host(), parsed->port(), parsed->target()};
  if (t.path == "/") t.path = "/healthz";
  return t;
}

util::Result<int> ProbeHealth(const HealthTarget& target, std::chrono::milliseconds deadline) {
  const Clock::time_point until = Clock::now() + deadline;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* found = nullptr;
  std::string port = std::to_string(target.port);
  if (int rc = getaddrinfo(target.host.c_str(), port.c_str(), &hints, &found); rc != 0) {
    return HealthError("cannot resolve \"" + target.host + "\": " + gai_strerror(rc));
  }
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> owned(found, &freeaddrinfo);
  // Every address the name resolves to, in order, within the one deadline:
  // "localhost" may give ::1 first while the daemon listens on 0.0.0.0.
  util::Error last = HealthError("\"" + target.host + "\" resolves to no address");
  for (const addrinfo* a = found; a != nullptr && Clock::now() < until; a = a->ai_next) {
    auto fd = Connect(*a, target, until, deadline);
    if (!fd.ok()) {
      last = fd.error();
      continue;
    }
    util::Fd closer(*fd);  // closed on every path out of the probe
    return Exchange(*fd, target, until, deadline);
  }
  return last;
}

int RunHealthcheck(const std::string& config_path, const std::string& url, std::ostream& out, std::ostream& err,
                   std::chrono::milliseconds deadline) {
  auto target = url.empty() ? HealthTargetFromConfig(config_path) : HealthTargetFromUrl(url);
  if (!target.ok()) {
    err << "mailhook healthcheck: " << target.error().message() << "\n";
    return 1;
  }
  auto code = ProbeHealth(*target, deadline);
  if (!code.ok()) {
    err << "mailhook healthcheck: " << code.error().message() << "\n";
    return 1;
  }
  if (*code < 200 || *code > 299) {
    err << "mailhook healthcheck: " << target->ToString() << " answered " << *code
        << " (the daemon is up but reports itself unhealthy; see its log)\n";
    return 1;
  }
  out << "mailhook healthcheck: " << target->ToString() << " answered " << *code << "\n";
  return 0;
}

}  // namespace mailhook::daemon
