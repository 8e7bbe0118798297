#include "http/poll_server.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <exception>
#include <string_view>

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util/log.h"

namespace mailhook::http {
namespace {

using util::Error;
using util::RetryClass;

// After a response that closes the connection, unread request bytes would
// make the kernel answer with RST and the client could lose the response
// (RFC 9112 §9.6): shut down our side and discard input for a short while.
constexpr std::chrono::milliseconds kLingerTime{1000};
constexpr size_t kLingerMaxBytes = 1 << 20;
// Bytes read per connection per wake-up, so one fast sender cannot starve
// the others of the one thread.
constexpr size_t kReadChunk = 64 * 1024;
constexpr size_t kMaxReadsPerWake = 16;
constexpr size_t kMaxRequestsPerConnection = 1000;
// After EMFILE/ENFILE the listener stays readable; stop polling it briefly.
constexpr std::chrono::milliseconds kAcceptPause{100};

const char* Reason(int status) {
  switch (status) {
    case 200: return "OK";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
  }
}

std::string Serialize(const Response& r, bool head_only, bool close) {
  std::string out = "HTTP/1.1 " + std::to_string(r.status) + " " + Reason(r.status) + "\r\n";
  // RFC 9110 §8.6: no Content-Length in a 204; §15.3.5: no content either.
  bool no_content = r.status == 204 || r.status == 304;
  if (!no_content) {
    out += "Content-Type: " + r.content_type + "\r\n";
    out += "Content-Length: " + std::to_string(r.body.size()) + "\r\n";
  }
  for (const auto& [name, value] : r.fields) out += name + ": " + value + "\r\n";
  if (close) out += "Connection: close\r\n";
  out += "\r\n";
  if (!head_only && !no_content) out += r.body;
  return out;
}

}  // namespace

/// One client connection and where it is in its request.
struct PollServer::Conn {
  enum class Phase { kHead, kBody, kWrite, kLinger };
  int fd = -1;
  bool closed = false;
  Phase phase = Phase::kHead;
  Clock::time_point phase_start;  // what "oldest stalled" compares
  Clock::time_point deadline;
  size_t requests = 0;
  std::string in;  // head bytes, and bytes after a body (pipelining)
  HeadScan scan;
  Request request;
  uint64_t body_left = 0;
  std::string out;
  size_t out_sent = 0;
  bool close_after = false;
  size_t lingered = 0;

  void Enter(Phase p, Clock::time_point now, std::chrono::milliseconds limit) {
    phase = p;
    phase_start = now;
    deadline = now + limit;
  }
};

PollServer::PollServer(ServerLimits limits, HeadHandler on_head, Handler on_request, RejectReporter on_reject)
    : limits_(limits),
      on_head_(std::move(on_head)),
      on_request_(std::move(on_request)),
      on_reject_(std::move(on_reject)) {
  if (limits_.max_buffered_body_bytes == 0) limits_.max_buffered_body_bytes = limits_.max_body_bytes;
  if (limits_.max_connections == 0) limits_.max_connections = 1;
}

PollServer::~PollServer() {
  Stop();
  if (listen_fd_ >= 0) close(listen_fd_);
}

util::Status PollServer::Start(Listener listener) {
  if (thread_.joinable() || listen_fd_ >= 0) {
    close(listener.fd);
    return Error("http.already_started", RetryClass::kNeedsOperator, "PollServer::Start called twice (a bug)");
  }
  listen_fd_ = listener.fd;
  port_ = listener.port;
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) {
    return Error("http.eventfd", RetryClass::kNeedsOperator,
                 std::string("cannot create the server's wake-up descriptor (") + std::strerror(errno) +
                     "): raise the open-file limit (ulimit -n)");
  }
  thread_ = std::thread([this] {
    try {
      Loop();
    } catch (const std::exception& e) {
      util::Log(util::Area::kHttp).error("http.server_failed cause=\"{}\"", e.what());
    } catch (...) {
      util::Log(util::Area::kHttp).error("http.server_failed cause=unknown");
    }
  });
  return util::Ok();
}

void PollServer::Stop() {
  stop_.store(true);
  if (wake_fd_ >= 0) {
    uint64_t one = 1;
    [[maybe_unused]] auto n = write(wake_fd_, &one, sizeof one);
  }
  if (thread_.joinable()) thread_.join();
  for (auto& c : conns_) Close(*c);
  conns_.clear();
  if (listen_fd_ >= 0) {
    close(listen_fd_);
    listen_fd_ = -1;
  }
  if (wake_fd_ >= 0) {
    close(wake_fd_);
    wake_fd_ = -1;
  }
}

void PollServer::Loop() {
  std::vector<pollfd> fds;
  while (!stop_.load()) {
    auto now = Clock::now();
    fds.clear();
    fds.push_back({wake_fd_, POLLIN, 0});
    bool accepting = now >= accept_paused_until_;
    fds.push_back({accepting ? listen_fd_ : -1, POLLIN, 0});
    auto next = now + std::chrono::seconds(1);
    if (!accepting) next = std::min(next, accept_paused_until_);
    for (auto& c : conns_) {
      short events = c->phase == Conn::Phase::kWrite ? POLLOUT : POLLIN;
      fds.push_back({c->fd, events, 0});
      next = std::min(next, c->deadline);
    }
    auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(next - now).count();
    int n = poll(fds.data(), fds.size(), static_cast<int>(std::max<int64_t>(wait, 0)) + 1);
    if (n < 0 && errno != EINTR) {
      util::Log(util::Area::kHttp).error("http.poll_failed cause=\"{}\"", std::strerror(errno));
      return;
    }
    if (stop_.load()) return;
    now = Clock::now();
    size_t polled = conns_.size();
    for (size_t i = 0; n > 0 && i < polled; ++i) {
      if (fds[i + 2].revents != 0 && !conns_[i]->closed) Service(*conns_[i], fds[i + 2].revents, now);
    }
    if (n > 0 && (fds[1].revents & POLLIN)) AcceptSome(now);
    for (auto& c : conns_) {
      if (!c->closed && now >= c->deadline) Expire(*c, now);
    }
    std::erase_if(conns_, [](const std::unique_ptr<Conn>& c) { return c->closed; });
  }
}

void PollServer::AcceptSome(Clock::time_point now) {
  for (size_t i = 0; i < 64; ++i) {
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        // Out of descriptors: make room, and do not spin on the listener.
        EvictOldest();
        accept_paused_until_ = now + kAcceptPause;
        if (on_reject_) on_reject_(0, std::string("accept: ") + std::strerror(errno));
      }
      return;  // EAGAIN (drained), or a connection that died in the queue
    }
    size_t open = std::count_if(conns_.begin(), conns_.end(), [](const auto& c) { return !c->closed; });
    if (open >= limits_.max_connections) EvictOldest();
    auto c = std::make_unique<Conn>();
    c->fd = fd;
    c->Enter(Conn::Phase::kHead, now, limits_.head_timeout);
    conns_.push_back(std::move(c));
  }
}

void PollServer::EvictOldest() {
  // A lingering connection has had its answer: drop those first, then the one
  // waiting longest in its phase.
  Conn* victim = nullptr;
  for (auto& c : conns_) {
    if (c->closed) continue;
    if (victim == nullptr) {
      victim = c.get();
      continue;
    }
    bool c_linger = c->phase == Conn::Phase::kLinger;
    bool v_linger = victim->phase == Conn::Phase::kLinger;
    if (c_linger != v_linger ? c_linger : c->phase_start < victim->phase_start) victim = c.get();
  }
  if (victim == nullptr) return;
  if (victim->phase != Conn::Phase::kLinger && on_reject_) {
    on_reject_(0, "connection limit reached: dropped the oldest stalled connection");
  }
  Close(*victim);
}

void PollServer::Service(Conn& c, short revents, Clock::time_point now) {
  if (c.phase == Conn::Phase::kWrite) {
    if (revents & (POLLOUT | POLLERR | POLLHUP)) Flush(c, now);
    // A pipelined request may have arrived with the last one.
    if (c.phase == Conn::Phase::kHead && !c.in.empty()) ProcessInput(c, now);
    return;
  }
  ReadInput(c, now);
}

void PollServer::ReadInput(Conn& c, Clock::time_point now) {
  char buf[kReadChunk];
  for (size_t i = 0; i < kMaxReadsPerWake && !c.closed; ++i) {
    ssize_t n = recv(c.fd, buf, sizeof buf, 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {  // the peer closed (or reset): nothing left to answer
      Close(c);
      return;
    }
    if (c.phase == Conn::Phase::kLinger) {
      c.lingered += static_cast<size_t>(n);
      if (c.lingered > kLingerMaxBytes) Close(c);
      continue;
    }
    c.in.append(buf, static_cast<size_t>(n));
    ProcessInput(c, now);
    if (c.phase == Conn::Phase::kWrite) return;  // no reading while answering
  }
}

void PollServer::ProcessInput(Conn& c, Clock::time_point now) {
  while (!c.closed) {
    if (c.phase == Conn::Phase::kBody) {
      size_t take = static_cast<size_t>(std::min<uint64_t>(c.body_left, c.in.size()));
      c.request.body.append(c.in, 0, take);
      c.in.erase(0, take);
      c.body_left -= take;
      if (c.body_left > 0) return;
      FinishRequest(c, now);
      continue;  // the answer may have gone out at once: on to a pipelined request
    }
    if (c.phase != Conn::Phase::kHead || c.in.empty()) return;
    if (c.scan.scanned == 0) {
      // RFC 9112 §2.2: ignore empty lines before a request line.
      size_t skip = c.in.find_first_not_of("\r\n");
      c.in.erase(0, skip == std::string::npos ? c.in.size() : skip);
      if (c.in.empty()) return;
    }
    HeadParse p = ParseRequestHead(c.in, &c.scan, limits_.head);
    if (p.kind == HeadParse::Kind::kIncomplete) return;
    if (p.kind == HeadParse::Kind::kError) {
      Refuse(c, p.status, p.cause, now);
      return;
    }
    c.in.erase(0, p.head_bytes);
    c.scan = {};
    OnHead(c, std::move(p.head), now);
  }
}

void PollServer::OnHead(Conn& c, RequestHead head, Clock::time_point now) {
  ++c.requests;
  c.request = Request{std::move(head), {}};
  const RequestHead& h = c.request.head;
  bool head_only = h.method == "HEAD";
  std::optional<Response> early;
  try {
    early = on_head_ ? on_head_(h) : std::nullopt;
  } catch (const std::exception& e) {
    util::Log(util::Area::kHttp).error("http.handler_failed path={} cause=\"{}\"", h.path, e.what());
    early = Response{500, "text/plain; charset=utf-8", {}, "internal error\n", false};
  }
  if (early) {
    // Answered from the head: any announced body stays unread, so the
    // connection cannot be reused.
    if (h.AnnouncesBody()) early->close = true;
    Respond(c, *early, head_only, now);
    return;
  }
  if (h.has_transfer_encoding) {
    Refuse(c, limits_.max_body_bytes == 0 ? 413 : 411,
           limits_.max_body_bytes == 0 ? "a request body is not accepted here"
                                       : "Transfer-Encoding is not accepted: send Content-Length",
           now);
    return;
  }
  if (h.content_length > limits_.max_body_bytes) {
    Refuse(c, 413, "request body over " + std::to_string(limits_.max_body_bytes) + " bytes", now);
    return;
  }
  if (buffered_body_bytes_ + h.content_length > limits_.max_buffered_body_bytes) {
    Refuse(c, 503, "too many request bodies in progress; retry shortly", now);
    return;
  }
  c.body_left = h.content_length;
  buffered_body_bytes_ += h.content_length;
  // Address space only: pages are touched as bytes arrive, and the budget
  // above bounds what all announced bodies together may take.
  c.request.body.reserve(static_cast<size_t>(h.content_length));
  // RFC 9110 §10.1.1: a client that asked may wait (curl: 1 s) for this
  // before it sends the body. Nothing else is queued on the socket now, so
  // the few bytes go out at once; if not, the client sends on anyway.
  auto expect = h.Field("expect");
  if (expect && !h.http10 && expect->size() == 12 &&
      std::equal(expect->begin(), expect->end(), "100-continue",
                 [](char a, char b) { return std::tolower(static_cast<unsigned char>(a)) == b; })) {
    constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
    [[maybe_unused]] auto n = send(c.fd, kContinue.data(), kContinue.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  }
  c.Enter(Conn::Phase::kBody, now, limits_.body_timeout);
}

void PollServer::FinishRequest(Conn& c, Clock::time_point now) {
  buffered_body_bytes_ -= c.request.head.content_length;
  Response r;
  try {
    r = on_request_ ? on_request_(c.request) : Response{404, "text/plain; charset=utf-8", {}, "not found\n"};
  } catch (const std::exception& e) {
    util::Log(util::Area::kHttp).error("http.handler_failed path={} cause=\"{}\"", c.request.head.path, e.what());
    r = Response{500, "text/plain; charset=utf-8", {}, "internal error\n"};
  }
  c.request.body = std::string();  // free it now, not at the next request
  Respond(c, r, c.request.head.method == "HEAD", now);
}

void PollServer::Respond(Conn& c, const Response& r, bool head_only, Clock::time_point now) {
  c.close_after = r.close || !c.request.head.keep_alive || c.requests >= kMaxRequestsPerConnection;
  c.out = Serialize(r, head_only, c.close_after);
  c.out_sent = 0;
  c.Enter(Conn::Phase::kWrite, now, limits_.write_timeout);
  Flush(c, now);
}

void PollServer::Refuse(Conn& c, int status, const std::string& cause, Clock::time_point now) {
  if (on_reject_) on_reject_(status, cause);
  Response r{status, "text/plain; charset=utf-8", {}, cause + "\n", true};
  if (status == 503) r.fields.emplace_back("Retry-After", "1");
  Respond(c, r, false, now);
}

void PollServer::Flush(Conn& c, Clock::time_point now) {
  while (c.out_sent < c.out.size()) {
    ssize_t n = send(c.fd, c.out.data() + c.out_sent, c.out.size() - c.out_sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;  // wait for POLLOUT
    if (n <= 0) {
      Close(c);
      return;
    }
    c.out_sent += static_cast<size_t>(n);
  }
  c.out = std::string();
  AfterResponse(c, now);
}

void PollServer::AfterResponse(Conn& c, Clock::time_point now) {
  if (c.close_after) {
    shutdown(c.fd, SHUT_WR);
    c.in = std::string();
    c.lingered = 0;
    c.Enter(Conn::Phase::kLinger, now, kLingerTime);
    return;
  }
  c.request = Request{};
  c.Enter(Conn::Phase::kHead, now, limits_.head_timeout);
}

void PollServer::Expire(Conn& c, Clock::time_point) {
  bool mid_request = (c.phase == Conn::Phase::kHead && !c.in.empty()) || c.phase == Conn::Phase::kBody;
  if (!mid_request) {
    Close(c);  // an idle keep-alive, a client not reading, or a finished linger
    return;
  }
  if (c.phase == Conn::Phase::kBody) buffered_body_bytes_ -= c.request.head.content_length;
  c.phase = Conn::Phase::kHead;  // so Close() does not release the budget again
  // RFC 9110 §15.5.9: tell the client why, if it still listens; never wait.
  if (on_reject_) on_reject_(408, "request not received in time");
  std::string out = Serialize(Response{408, "text/plain; charset=utf-8", {}, "request timeout\n"}, false, true);
  [[maybe_unused]] auto n = send(c.fd, out.data(), out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  Close(c);
}

void PollServer::Close(Conn& c) {
  if (c.closed) return;
  if (c.phase == Conn::Phase::kBody) buffered_body_bytes_ -= c.request.head.content_length;
  close(c.fd);
  c.fd = -1;
  c.closed = true;
}

}  // namespace mailhook::http
