#include "http/client.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <optional>

#include <libetpan/libetpan.h>

#include "imap/etpan_ptr.h"
#include "imap/tls_stream.h"
#include "util/strings.h"

namespace mailhook::http {
namespace {

using util::Error;
using util::RetryClass;
using Clock = ClientConnection::Clock;

// Headers in one response at most (each also counts against the head's bytes).
constexpr size_t kMaxResponseHeaders = 200;
// A chunk-size line (hex digits, extensions) at most.
constexpr size_t kMaxChunkLine = 1024;
// Request bodies are written in pieces, so a server reading slowly meets the
// deadline within about one piece's wait.
constexpr size_t kWritePiece = 16 * 1024;
// At least the stream's own buffer (8 KiB), so reads bypass it: no byte of a
// response waits inside libetpan where Reusable() could not see it.
constexpr size_t kReadBytes = 16 * 1024;

std::chrono::milliseconds Left(Clock::time_point deadline) {
  return std::max(std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()), std::chrono::milliseconds(0));
}

bool Readable(int fd) {
  if (fd < 0) return false;
  pollfd p{fd, POLLIN, 0};
  return poll(&p, 1, 0) > 0;
}

// What a server sent, for an error message: its first 60 bytes, printable
// ASCII only (no control sequences reach a log).
std::string Shown(std::string_view s) {
  std::string out(s.substr(0, 60));
  for (char& c : out) {
    if (c < 0x20 || c > 0x7e) c = '?';
  }
  return "\"" + out + "\"";
}

bool SafeHeaderText(std::string_view s) {
  return s.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos;
}

// "host" or "host:port" (IPv6 literals in brackets), as RFC 9110 7.2 asks.
std::string HostHeader(const ClientOrigin& o) {
  std::string host = o.host.find(':') != std::string::npos ? "[" + o.host + "]" : o.host;
  const uint16_t default_port = o.https ? 443 : 80;
  if (o.port != default_port) host += ":" + std::to_string(o.port);
  return host;
}

// How a response's body is delimited (RFC 9112 6.3).
enum class Framing { kNone, kLength, kChunked, kUntilClose };

struct StatusLine {
  int status = 0;
  bool http10 = false;
};

// "HTTP/1.1 200 OK": the version, a space, three digits from 100 to 599, and
// the reason after a space (or nothing).
std::optional<StatusLine> ParseStatusLine(std::string_view line) {
  const auto digit = [&](size_t i) { return line[i] >= '0' && line[i] <= '9'; };
  if (line.size() < 12 || !line.starts_with("HTTP/1.") || !digit(7) || line[8] != ' ' || !digit(9) || !digit(10) ||
      !digit(11) || (line.size() > 12 && line[12] != ' ')) {
    return std::nullopt;
  }
  StatusLine out;
  out.status = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
  out.http10 = line[7] == '0';
  if (out.status < 100 || out.status > 599) return std::nullopt;
  return out;
}

}  // namespace

ClientOrigin ClientOrigin::Of(const config::HttpUrl& url) {
  ClientOrigin o;
  o.https = url.https();
  o.host = url.host();
  o.port = url.port();
  return o;
}

const std::string* ClientResponse::Header(std::string_view name) const {
  for (const auto& [n, v] : headers) {
    if (util::EqualsIgnoreCase(n, name)) return &v;
  }
  return nullptr;
}

struct ClientConnection::Impl {
  ClientOrigin origin;
  imap::StreamPtr stream;
  std::string pending;  // read from the server, not yet parsed
  bool reusable = false;
  Clock::time_point deadline;
  int stop_fd = -1;

  std::string Where() const { return (origin.https ? "https://" : "http://") + HostHeader(origin); }

  bool StoppedOrLate() const { return Readable(stop_fd) || Clock::now() >= deadline - std::chrono::milliseconds(5); }

  // Why an I/O call failed: the stop fd, the deadline, or the server (the
  // stream does not tell a close from a reset).
  Error IoError(std::string_view doing) const {
    if (Readable(stop_fd)) return Error("http.stopped", RetryClass::kBackoff, std::string(doing) + ": stopped");
    if (StoppedOrLate()) return Error("http.timeout", RetryClass::kBackoff, std::string(doing) + ": timed out");
    return Error("http.closed", RetryClass::kBackoff, std::string(doing) + ": " + Where() + " closed the connection");
  }

  Error BadResponse(const std::string& why) const {
    return Error("http.bad_response", RetryClass::kBackoff, Where() + " sent " + why);
  }

  util::Status Write(std::string_view data, std::string_view doing) {
    for (size_t at = 0; at < data.size(); at += kWritePiece) {
      const std::string_view piece = data.substr(at, kWritePiece);
      // A write looks at neither the stop fd nor the clock before sending.
      if (StoppedOrLate()) return IoError(doing);
      imap::SetStreamTimeout(stream.get(), Left(deadline));
      if (mailstream_write(stream.get(), piece.data(), piece.size()) != static_cast<ssize_t>(piece.size())) {
        return IoError(doing);
      }
    }
    return util::Ok();
  }

  // Appends what the server sends next to `pending`; an error when nothing
  // came. With `eof`, the server closing the connection sets *eof instead.
  util::Status Fill(std::string_view doing, bool* eof = nullptr) {
    if (Left(deadline).count() == 0) return IoError(doing);
    imap::SetStreamTimeout(stream.get(), Left(deadline));
    char buf[kReadBytes];
    const ssize_t n = mailstream_read(stream.get(), buf, sizeof buf);
    if (n > 0) {
      pending.append(buf, static_cast<size_t>(n));
      return util::Ok();
    }
    if (eof != nullptr && !StoppedOrLate()) {
      *eof = true;
      return util::Ok();
    }
    return IoError(doing);
  }

  struct BodyFraming {
    Framing kind = Framing::kUntilClose;
    uint64_t length = 0;  // kLength's
    bool close = false;   // the connection must not carry another request
  };

  util::Result<ClientResponse> ReadHead();
  // How the body of `response` is delimited, from its status and headers.
  util::Result<BodyFraming> FramingOf(const ClientResponse& response) const;
  util::Status ReadBody(ClientResponse& response, Framing framing, uint64_t length, size_t max_body);
  util::Status ReadChunked(ClientResponse& response, size_t max_body);
  // Waits until `pending` holds a whole line (CRLF) of at most kMaxChunkLine
  // bytes, `what` naming it in the error; its end's offset.
  util::Result<size_t> LineEnd(std::string_view doing, std::string_view what);
};

ClientConnection::ClientConnection(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ClientConnection::~ClientConnection() = default;

util::Result<std::unique_ptr<ClientConnection>> ClientConnection::Open(const ClientOrigin& origin,
                                                                       Clock::time_point deadline, int stop_fd) {
  auto impl = std::make_unique<Impl>();
  impl->origin = origin;
  impl->deadline = deadline;
  impl->stop_fd = stop_fd;
  if (Readable(stop_fd)) return impl->IoError("connecting to " + impl->Where());
  const std::string hint = "443 for https://, 80 for http://, unless the url names a port";
  auto stream = imap::OpenPlainStream(origin.host, origin.port, Left(deadline), stop_fd, hint);
  if (!stream) {
    if (impl->StoppedOrLate()) return impl->IoError("connecting to " + impl->Where());
    return Error("http.connect", RetryClass::kBackoff, stream.error().message());
  }
  impl->stream = std::move(stream.value());
  imap::StopScanningImapNesting(impl->stream.get());  // a "(" in a body is only text
  // Small requests on a kept-alive connection otherwise stall ~40 ms on
  // Nagle and the server's delayed ACK.
  const int one = 1;
  const int fd = mailstream_low_get_fd(mailstream_get_low(impl->stream.get()));
  (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  // Every wait ends by the deadline: a TLS handshake trickled a byte at a
  // time cannot stretch it.
  imap::SetStreamDeadline(impl->stream.get(), deadline);
  if (origin.https) {
    imap::SetStreamTimeout(impl->stream.get(), Left(deadline));
    imap::TlsOptions tls{origin.host, origin.ca_file, origin.tls_verify, origin.owner,
                         "https:// needs the server's TLS port"};
    if (auto s = imap::StartTls(impl->stream.get(), tls); !s.ok()) {
      if (impl->StoppedOrLate()) return impl->IoError("TLS with " + impl->Where());
      const bool verify =
          s.error().code() == "tls.verify" || s.error().code() == "tls.host_name" || s.error().code() == "tls.context";
      return Error(verify ? "http.tls_verify" : "http.tls", verify ? RetryClass::kNeedsOperator : RetryClass::kBackoff,
                   s.error().message());
    }
  }
  return std::unique_ptr<ClientConnection>(new ClientConnection(std::move(impl)));
}

bool ClientConnection::Reusable() {
  Impl& d = *impl_;
  if (!d.reusable || !d.pending.empty() || d.stream->read_buffer_len > 0) return false;
  // Readable while idle: the server closed it (or sent what nobody asked for).
  const int fd = mailstream_low_get_fd(mailstream_get_low(d.stream.get()));
  if (Readable(fd) || imap::HasPendingTlsData(d.stream.get())) d.reusable = false;
  return d.reusable;
}

util::Result<ClientResponse> ClientConnection::Exchange(const ClientRequest& request, Clock::time_point deadline,
                                                        int stop_fd, size_t max_body) {
  Impl& d = *impl_;
  d.reusable = false;
  d.deadline = deadline;
  d.stop_fd = stop_fd;
  // A write does not look at the stop fd: one that fired sends nothing.
  if (d.StoppedOrLate()) return d.IoError("sending to " + d.Where());
  imap::SetStreamDeadline(d.stream.get(), deadline);
  imap::SetInterruptFd(d.stream.get(), stop_fd);

  std::string head = request.method + " " + request.target + " HTTP/1.1\r\nHost: " + HostHeader(d.origin) + "\r\n";
  for (const auto& [name, value] : request.headers) {
    if (!SafeHeaderText(name) || !SafeHeaderText(value) || name.find(':') != std::string::npos) {
      return Error("http.bad_request", RetryClass::kNeedsOperator,
                   "the header \"" + name + "\" has a line break, NUL or colon in its name or value: not sent");
    }
    head += name + ": " + value + "\r\n";
  }
  head += "Content-Length: " + std::to_string(request.body.size()) + "\r\n\r\n";
  const std::string doing = "sending to " + d.Where();
  // A small body goes with the head: one write, one segment.
  std::string_view rest = request.body;
  if (rest.size() <= kWritePiece) {
    head += rest;
    rest = {};
  }
  if (auto s = d.Write(head, doing); !s.ok()) return s.error();
  if (auto s = d.Write(rest, doing); !s.ok()) return s.error();
  if (d.StoppedOrLate()) return d.IoError(doing);
  imap::SetStreamTimeout(d.stream.get(), Left(deadline));
  if (mailstream_flush(d.stream.get()) < 0) return d.IoError(doing);

  auto response = d.ReadHead();
  if (!response) return response.error();
  auto framing = d.FramingOf(*response);
  if (!framing) return framing.error();
  if (auto s = d.ReadBody(*response, framing->kind, framing->length, max_body); !s.ok()) return s.error();
  const std::string* connection = response->Header("Connection");
  d.reusable = framing->kind != Framing::kUntilClose && !framing->close && !response->body_capped &&
               !(connection != nullptr && util::ListHasToken(*connection, "close"));
  return response;
}

util::Result<ClientConnection::Impl::BodyFraming> ClientConnection::Impl::FramingOf(
    const ClientResponse& response) const {
  BodyFraming out;
  if (response.status == 204 || response.status == 304) {
    out.kind = Framing::kNone;
    return out;
  }
  const std::string* te = nullptr;  // the last Transfer-Encoding decides (its codings are one list)
  const std::string* cl = nullptr;
  for (const auto& [name, value] : response.headers) {
    if (util::EqualsIgnoreCase(name, "Transfer-Encoding")) te = &value;
    if (!util::EqualsIgnoreCase(name, "Content-Length")) continue;
    uint64_t length = 0;
    auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), length);
    if (ec != std::errc() || end != value.data() + value.size() || value.empty() ||
        (cl != nullptr && length != out.length)) {
      return BadResponse("an invalid or a second, different Content-Length (" + Shown(value) + ")");
    }
    cl = &value;
    out.length = length;
  }
  if (te != nullptr) {
    // Only chunked is understood, and only as the last coding (RFC 9112 6.3).
    const size_t comma = te->rfind(',');
    if (!util::EqualsIgnoreCase(util::TrimOws(std::string_view(*te).substr(comma == std::string::npos ? 0 : comma + 1)),
                                "chunked")) {
      return BadResponse("a Transfer-Encoding other than chunked (" + Shown(*te) + ")");
    }
    out.kind = Framing::kChunked;
    out.close = cl != nullptr;  // both: chunked wins, and the connection is not trusted again
    return out;
  }
  out.kind = cl != nullptr ? Framing::kLength : Framing::kUntilClose;
  return out;
}

util::Result<ClientResponse> ClientConnection::Impl::ReadHead() {
  const std::string doing = "waiting for " + Where() + " to answer";
  for (;;) {
    size_t end = pending.find("\r\n\r\n");
    while (end == std::string::npos) {
      if (pending.size() > kMaxResponseHeadBytes) {
        return BadResponse("a response head over " + std::to_string(kMaxResponseHeadBytes) + " bytes");
      }
      const size_t searched = pending.size() < 3 ? 0 : pending.size() - 3;  // a trickle is not rescanned
      if (auto s = Fill(doing); !s.ok()) return s.error();
      end = pending.find("\r\n\r\n", searched);
    }
    if (end + 4 > kMaxResponseHeadBytes) {
      return BadResponse("a response head over " + std::to_string(kMaxResponseHeadBytes) + " bytes");
    }
    std::string_view head(pending.data(), end + 2);
    ClientResponse response;
    const size_t line_end = head.find("\r\n");
    const auto status = ParseStatusLine(head.substr(0, line_end));
    if (!status) return BadResponse("no HTTP/1.x status line (" + Shown(head.substr(0, line_end)) + ")");
    // 101 switches protocols, which nothing here asked for.
    if (status->status == 101) return BadResponse("101 Switching Protocols, unasked");
    response.status = status->status;
    for (size_t at = line_end + 2; at < head.size();) {
      const size_t next = head.find("\r\n", at);
      std::string_view line = head.substr(at, next - at);
      at = next + 2;
      const size_t colon = line.find(':');
      if (colon == std::string_view::npos || colon == 0) {
        return BadResponse("a malformed header line (" + Shown(line) + ")");
      }
      if (response.headers.size() >= kMaxResponseHeaders) {
        return BadResponse("more than " + std::to_string(kMaxResponseHeaders) + " headers");
      }
      response.headers.emplace_back(std::string(util::TrimOws(line.substr(0, colon))),
                                    std::string(util::TrimOws(line.substr(colon + 1))));
    }
    pending.erase(0, end + 4);
    // 1xx: an interim answer (100 Continue, 103 Early Hints); the final one follows.
    if (response.status < 200) continue;
    if (status->http10) response.headers.emplace_back("Connection", "close");  // no keep-alive negotiated here
    return response;
  }
}

util::Status ClientConnection::Impl::ReadBody(ClientResponse& response, Framing framing, uint64_t length,
                                              size_t max_body) {
  const std::string doing = "reading the answer of " + Where();
  switch (framing) {
    case Framing::kNone: return util::Ok();
    case Framing::kChunked: return ReadChunked(response, max_body);
    case Framing::kLength: {
      const uint64_t keep = std::min<uint64_t>(length, max_body);
      while (pending.size() < keep) {
        if (auto s = Fill(doing); !s.ok()) return s;
      }
      // Bytes after the body stay in `pending`: Reusable() then refuses the
      // connection.
      response.body_capped = length > max_body;
      response.body = pending.substr(0, static_cast<size_t>(keep));
      pending.erase(0, static_cast<size_t>(keep));
      return util::Ok();
    }
    case Framing::kUntilClose: {
      bool eof = false;
      while (!eof && pending.size() <= max_body) {
        if (auto s = Fill(doing, &eof); !s.ok()) return s;
      }
      response.body_capped = pending.size() > max_body;
      response.body = pending.substr(0, std::min(pending.size(), max_body));
      pending.clear();
      return util::Ok();
    }
  }
  return util::Ok();
}

util::Result<size_t> ClientConnection::Impl::LineEnd(std::string_view doing, std::string_view what) {
  size_t eol = pending.find("\r\n");
  while (eol == std::string::npos) {
    if (pending.size() > kMaxChunkLine) return BadResponse(std::string(what) + " over 1 KiB");
    if (auto s = Fill(doing); !s.ok()) return s.error();
    eol = pending.find("\r\n");
  }
  return eol;
}

util::Status ClientConnection::Impl::ReadChunked(ClientResponse& response, size_t max_body) {
  const std::string doing = "reading the answer of " + Where();
  for (;;) {
    auto eol = LineEnd(doing, "a chunk-size line");
    if (!eol) return eol.error();
    uint64_t size = 0;
    auto [end, ec] = std::from_chars(pending.data(), pending.data() + *eol, size, 16);
    if (ec != std::errc() || end == pending.data() || (end != pending.data() + *eol && *end != ';' && *end != ' ')) {
      return BadResponse("an invalid chunk size (" + Shown(std::string_view(pending).substr(0, *eol)) + ")");
    }
    pending.erase(0, *eol + 2);
    if (size == 0) break;
    const size_t room = max_body - response.body.size();  // the body never exceeds max_body
    if (size > room) {
      response.body_capped = true;  // the rest is never read: the connection is dropped
      while (pending.size() < room) {
        if (auto s = Fill(doing); !s.ok()) return s;
      }
      response.body.append(pending, 0, room);
      pending.clear();
      return util::Ok();
    }
    while (pending.size() < size + 2) {
      if (auto s = Fill(doing); !s.ok()) return s;
    }
    if (pending.compare(size, 2, "\r\n") != 0) return BadResponse("a chunk without its CRLF");
    response.body.append(pending, 0, size);
    pending.erase(0, size + 2);
  }
  // Trailers, up to the empty line that ends the message; their fields are not used.
  for (size_t trailers = 0;; ++trailers) {
    auto eol = LineEnd(doing, "a trailer line");
    if (!eol) return eol.error();
    pending.erase(0, *eol + 2);
    if (*eol == 0) return util::Ok();
    if (trailers == kMaxResponseHeaders) {
      return BadResponse("more than " + std::to_string(kMaxResponseHeaders) + " trailers");
    }
  }
}

}  // namespace mailhook::http
