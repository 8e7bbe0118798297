#include "imap/tls_stream.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string_view>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "imap/nesting_scanner.h"
#include "imap/response_code.h"
#include "util/log.h"

// libetpan exports these but does not install their header (DESIGN.md).
extern "C" {
struct mailstream_cancel* mailstream_cancel_new(void);
void mailstream_cancel_free(struct mailstream_cancel* cancel);
}

namespace mailhook::imap {
namespace {

using util::Error;
using util::RetryClass;

/// Per-stream state behind mailstream_low::data.
struct StreamData {
  int fd = -1;
  int stop_fd = -1;
  SSL* ssl = nullptr;  // null until StartTls
  std::chrono::milliseconds timeout{60000};
  // SetStreamDeadline: no wait goes past it, however many there are.
  std::optional<std::chrono::steady_clock::time_point> deadline;
  struct mailstream_cancel* cancel = nullptr;
  uint64_t budget = 0;         // 0: unbounded
  uint64_t syntax_budget = 0;  // bytes outside literals; 0: unbounded
  uint64_t used = 0;
  bool over_budget = false;
  NestingScanner nesting;    // refuses lists nested deeper than libetpan can parse
  bool scan_nesting = true;  // IMAP's; off for the protocols that share the stream
  bool too_deep = false;
  // ScreenByeGreeting: the greeting's first line is held here until it is
  // whole, then handed on (from `held_given`) unless it is a BYE.
  std::optional<std::string>* bye_greeting = nullptr;  // null: not screening
  std::string held;
  size_t held_given = 0;
};

StreamData* DataOf(mailstream_low* low) { return static_cast<StreamData*>(low->data); }

// How long the next wait may take: the per-wait timeout, cut to what is left
// before the deadline (a handshake or a trickled reply has many waits).
std::chrono::milliseconds Budget(const StreamData* d) {
  if (!d->deadline) return d->timeout;
  const auto left = std::chrono::ceil<std::chrono::milliseconds>(*d->deadline - std::chrono::steady_clock::now());
  return std::clamp(left, std::chrono::milliseconds(0), d->timeout);
}

std::string OpenSslErrors() {
  std::string out;
  unsigned long e;
  while ((e = ERR_get_error()) != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out;
}

enum class Wait { kReady, kTimeout, kStopped, kError };

// Waits until fd is ready for `events`, the stop fd fires, or the timeout ends.
Wait WaitFor(int fd, int stop_fd, short events, std::chrono::milliseconds timeout) {
  pollfd fds[2] = {{fd, events, 0}, {stop_fd, POLLIN, 0}};
  nfds_t n = stop_fd >= 0 ? 2 : 1;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() < 0) left = std::chrono::milliseconds(0);
    int r = poll(fds, n, static_cast<int>(left.count()));
    if (r < 0) {
      if (errno == EINTR) continue;
      return Wait::kError;
    }
    if (r == 0) return Wait::kTimeout;
    if (n == 2 && (fds[1].revents & POLLIN)) return Wait::kStopped;
    if (fds[0].revents) return Wait::kReady;  // includes POLLHUP/POLLERR: the read reports it
  }
}

// --- the mailstream_low_driver callbacks -------------------------------------

// Reads what is there (at least one byte), waiting within the timeout; -1 on
// close, error, timeout or stop.
ssize_t DriverReadSome(StreamData* d, void* buf, size_t count) {
  for (;;) {
    if (d->ssl) {
      // Decrypted bytes already inside OpenSSL never wake poll(): read them first.
      ERR_clear_error();
      int n = SSL_read(d->ssl, buf, static_cast<int>(std::min<size_t>(count, 1 << 30)));
      if (n > 0) return n;
      int err = SSL_get_error(d->ssl, n);
      if (err == SSL_ERROR_WANT_READ) {
        if (WaitFor(d->fd, d->stop_fd, POLLIN, Budget(d)) != Wait::kReady) return -1;
        continue;
      }
      if (err == SSL_ERROR_WANT_WRITE) {
        if (WaitFor(d->fd, d->stop_fd, POLLOUT, Budget(d)) != Wait::kReady) return -1;
        continue;
      }
      return -1;  // closed (SSL_ERROR_ZERO_RETURN) or broken
    }
    ssize_t n = recv(d->fd, buf, count, 0);
    if (n > 0) return n;
    if (n == 0) return -1;  // peer closed
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return -1;
    if (WaitFor(d->fd, d->stop_fd, POLLIN, Budget(d)) != Wait::kReady) return -1;
  }
}

ssize_t BudgetedRead(StreamData* d, void* buf, size_t count) {
  if (d->budget != 0) {
    // Never ask the socket for more than the budget allows: past it the
    // read fails before a byte more reaches libetpan's buffers.
    if (d->used >= d->budget) {
      d->over_budget = true;
      return -1;
    }
    count = static_cast<size_t>(std::min<uint64_t>(count, d->budget - d->used));
  }
  if (d->too_deep) return -1;
  ssize_t n = DriverReadSome(d, buf, count);
  if (n <= 0) return n;
  d->used += static_cast<uint64_t>(n);
  if (d->scan_nesting && !d->nesting.Scan(static_cast<const char*>(buf), static_cast<size_t>(n))) {
    d->too_deep = true;  // for good: the stream is out of step now
    return -1;
  }
  if (d->syntax_budget != 0 && d->nesting.syntax_bytes() > d->syntax_budget) {
    d->over_budget = true;
    return -1;
  }
  return n;
}

// At most this much is held while waiting for the greeting's line end; the
// first line of what was held is screened either way.
constexpr size_t kMaxScreenedGreeting = 4096;

// Reads until the greeting's first line is whole. A BYE line goes to
// *bye_greeting and the read fails, so libetpan never parses it (its
// parse_greeting leaks a BYE greeting); any other line is handed on. False
// when the read fails: a BYE, or nothing read.
bool ScreenGreeting(StreamData* d) {
  while (d->held.find('\n') == std::string::npos && d->held.size() < kMaxScreenedGreeting) {
    char chunk[1024];
    ssize_t n = BudgetedRead(d, chunk, sizeof chunk);
    if (n <= 0) break;
    d->held.append(chunk, static_cast<size_t>(n));
  }
  std::string_view line(d->held);
  if (auto bye = FindBye(line.substr(0, line.find('\n')))) {
    *d->bye_greeting = std::move(*bye);
    d->bye_greeting = nullptr;
    d->held.clear();
    return false;
  }
  d->bye_greeting = nullptr;
  return !d->held.empty();
}

ssize_t DriverRead(mailstream_low* low, void* buf, size_t count) {
  StreamData* d = DataOf(low);
  if (d->bye_greeting != nullptr && !ScreenGreeting(d)) return -1;
  if (d->held_given < d->held.size()) {
    const size_t n = std::min(count, d->held.size() - d->held_given);
    std::memcpy(buf, d->held.data() + d->held_given, n);
    d->held_given += n;
    if (d->held_given == d->held.size()) {
      d->held.clear();
      d->held_given = 0;
    }
    return static_cast<ssize_t>(n);
  }
  return BudgetedRead(d, buf, count);
}

ssize_t DriverWrite(mailstream_low* low, const void* buf, size_t count) {
  StreamData* d = DataOf(low);
  for (;;) {
    if (d->ssl) {
      ERR_clear_error();
      int n = SSL_write(d->ssl, buf, static_cast<int>(std::min<size_t>(count, 1 << 30)));
      if (n > 0) return n;
      int err = SSL_get_error(d->ssl, n);
      short ev = static_cast<short>(err == SSL_ERROR_WANT_READ ? POLLIN : err == SSL_ERROR_WANT_WRITE ? POLLOUT : 0);
      if (ev == 0) return -1;
      if (WaitFor(d->fd, d->stop_fd, ev, Budget(d)) != Wait::kReady) return -1;
      continue;
    }
    // MSG_NOSIGNAL: a server that hung up must not kill us with SIGPIPE.
    ssize_t n = send(d->fd, buf, count, MSG_NOSIGNAL);
    if (n >= 0) return n;
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return -1;
    if (WaitFor(d->fd, d->stop_fd, POLLOUT, Budget(d)) != Wait::kReady) return -1;
  }
}

int DriverClose(mailstream_low* low) {
  StreamData* d = DataOf(low);
  if (d->ssl) {
    // No bidirectional close_notify: the peer may be gone, and waiting for it
    // is what makes libetpan's own close slow.
    SSL_free(d->ssl);
    d->ssl = nullptr;
  }
  if (d->fd >= 0) {
    ::close(d->fd);
    d->fd = -1;
  }
  return 0;
}

int DriverGetFd(mailstream_low* low) { return DataOf(low)->fd; }

void DriverFree(mailstream_low* low) {
  StreamData* d = DataOf(low);
  DriverClose(low);
  if (d->cancel) mailstream_cancel_free(d->cancel);
  delete d;
  low->data = nullptr;
  free(low);  // allocated by mailstream_low_new with malloc
}

void DriverCancel(mailstream_low*) {}

struct mailstream_cancel* DriverGetCancel(mailstream_low* low) {
  // Must be non-NULL or mailstream_wait_idle() fails (DESIGN.md).
  return DataOf(low)->cancel;
}

carray* DriverCertificateChain(mailstream_low* low) {
  StreamData* d = DataOf(low);
  if (!d->ssl) return nullptr;
  STACK_OF(X509)* chain = SSL_get_peer_cert_chain(d->ssl);
  if (!chain) return nullptr;
  carray* out = carray_new(4);
  for (int i = 0; i < sk_X509_num(chain); ++i) {
    unsigned char* der = nullptr;
    int len = i2d_X509(sk_X509_value(chain, i), &der);
    if (len < 0) continue;
    MMAPString* s = mmap_string_new_len(reinterpret_cast<char*>(der), static_cast<size_t>(len));
    OPENSSL_free(der);
    carray_add(out, s, nullptr);
  }
  return out;
}

mailstream_low_driver kDriver = {
    DriverRead, DriverWrite,  DriverClose,     DriverGetFd,
    DriverFree, DriverCancel, DriverGetCancel, DriverCertificateChain,
    nullptr,  // setup_idle: NULL lets libetpan use its own cancel pipe
    nullptr,  // unsetup_idle
    nullptr,  // interrupt_idle
};

// One SSL_CTX per (ca_file, verify): contexts are heavy and thread-safe to share.
SSL_CTX* SharedContext(const TlsOptions& options, std::string* error) {
  static std::mutex mu;
  // Live for the process and never destroyed: sessions may still use a
  // context while static destructors run, and a reachable pointer keeps
  // LeakSanitizer from calling the contexts leaked.
  static auto* contexts = new std::map<std::pair<std::string, bool>, SSL_CTX*>();
  std::lock_guard lock(mu);
  auto key = std::make_pair(options.ca_file.value_or(""), options.verify);
  if (auto it = contexts->find(key); it != contexts->end()) return it->second;

  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (!ctx) {
    *error = "cannot create a TLS context: " + OpenSslErrors();
    return nullptr;
  }
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  // An idle session then holds ~42 KiB instead of two full record buffers.
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_ENABLE_PARTIAL_WRITE);
  if (options.verify) {
    int ok = options.ca_file ? SSL_CTX_load_verify_locations(ctx, options.ca_file->c_str(), nullptr)
                             : SSL_CTX_set_default_verify_paths(ctx);
    if (ok != 1) {
      *error =
          options.ca_file
              ? "cannot load ca_file " + *options.ca_file + ": " + OpenSslErrors() + " (is it a PEM certificate file?)"
              : "cannot load the system trust store: " + OpenSslErrors() + " (install ca-certificates)";
      SSL_CTX_free(ctx);
      return nullptr;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  } else {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  }
  contexts->emplace(key, ctx);
  return ctx;
}

bool IsIpAddress(const std::string& host) {
  in6_addr a6;
  in_addr a4;
  return inet_pton(AF_INET, host.c_str(), &a4) == 1 || inet_pton(AF_INET6, host.c_str(), &a6) == 1;
}

// SNI and the name the certificate must carry. Each call can fail (a name
// OpenSSL rejects, no memory), and an unchecked failure would leave the
// host-name check off while the chain check still passes: any certificate
// from a trusted CA would then do.
util::Status SetPeerName(SSL* ssl, int fd, const TlsOptions& options) {
  auto refused = [&](const std::string& what) {
    return Error("tls.host_name", RetryClass::kNeedsOperator,
                 "cannot set the TLS " + what + " to \"" + options.host + "\": " + OpenSslErrors() +
                     " (check `host`: a DNS name of at most 255 characters or an IP address)");
  };
  if (options.verify && options.host.empty()) return refused("host name to verify");
  if (SSL_set_fd(ssl, fd) != 1) {
    return Error("tls.oom", RetryClass::kBackoff, "cannot attach the socket to TLS: " + OpenSslErrors());
  }
  const bool ip = IsIpAddress(options.host);
  // SNI takes names only (RFC 6066 §3).
  if (!ip && SSL_set_tlsext_host_name(ssl, options.host.c_str()) != 1) return refused("server name (SNI)");
  if (!options.verify) return util::Ok();
  if (ip) {
    if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), options.host.c_str()) != 1)
      return refused("IP address to verify");
  } else {
    SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    if (SSL_set1_host(ssl, options.host.c_str()) != 1) return refused("host name to verify");
  }
  return util::Ok();
}

// A dead network path is noticed by keepalive; a peer that stops
// acknowledging our writes by TCP_USER_TIMEOUT.
void TuneConnectedSocket(int fd) {
  int one = 1, idle = 60, intvl = 20, cnt = 3;
  unsigned int user_timeout = 120000;
  setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl);
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
  setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout, sizeof user_timeout);
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

// The connected socket as a plain libetpan stream on our driver; it owns fd.
util::Result<StreamPtr> WrapSocket(int fd, int stop_fd, std::chrono::milliseconds timeout) {
  auto* data = new StreamData;
  data->fd = fd;
  data->stop_fd = stop_fd;
  data->timeout = timeout;
  data->cancel = mailstream_cancel_new();
  mailstream_low* low = mailstream_low_new(data, &kDriver);
  if (!low) {
    ::close(fd);
    if (data->cancel) mailstream_cancel_free(data->cancel);
    delete data;
    return Error("imap.oom", RetryClass::kBackoff, "out of memory creating a stream");
  }
  mailstream* stream = mailstream_new(low, 8192);
  if (!stream) {
    mailstream_low_close(low);
    mailstream_low_free(low);
    return Error("imap.oom", RetryClass::kBackoff, "out of memory creating a stream");
  }
  return StreamPtr(stream);
}

}  // namespace

util::Result<StreamPtr> OpenPlainStream(const std::string& host, uint16_t port, std::chrono::milliseconds timeout,
                                        int stop_fd, std::string_view port_hint) {
  // One timeout for the whole connect, resolving included (as far as
  // getaddrinfo returns), however many addresses are tried.
  const auto connect_deadline = std::chrono::steady_clock::now() + timeout;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  std::string port_str = std::to_string(port);
  int gai = getaddrinfo(host.c_str(), port_str.c_str(), &hints, &res);
  if (gai != 0) {
    return Error("imap.resolve", RetryClass::kBackoff,
                 "cannot resolve " + host + ": " + gai_strerror(gai) + " (check `host` and DNS)");
  }
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> guard(res, freeaddrinfo);

  std::string last_error = "no address";
  for (addrinfo* ai = res; ai; ai = ai->ai_next) {
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
    if (fd < 0) {
      last_error = std::strerror(errno);
      continue;
    }
    int r = connect(fd, ai->ai_addr, ai->ai_addrlen);
    if (r < 0 && errno == EINPROGRESS) {
      const auto left =
          std::chrono::ceil<std::chrono::milliseconds>(connect_deadline - std::chrono::steady_clock::now());
      Wait w = WaitFor(fd, stop_fd, POLLOUT, std::max(left, std::chrono::milliseconds(0)));
      if (w == Wait::kReady) {
        int so_error = 0;
        socklen_t len = sizeof so_error;
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &len);
        r = so_error == 0 ? 0 : -1;
        errno = so_error;
      } else {
        errno = w == Wait::kStopped ? ECANCELED : ETIMEDOUT;
        r = -1;
      }
    }
    if (r < 0) {
      int saved = errno;
      last_error = std::strerror(saved);
      ::close(fd);
      if (saved == ECANCELED) break;
      continue;
    }
    TuneConnectedSocket(fd);
    return WrapSocket(fd, stop_fd, timeout);
  }
  return Error("imap.connect", RetryClass::kBackoff,
               "cannot connect to " + host + ":" + port_str + ": " + last_error +
                   " (is the server up and the port right? " + std::string(port_hint) + ")");
}

util::Status StartTls(mailstream* stream, const TlsOptions& options) {
  StreamData* d = DataOf(mailstream_get_low(stream));
  std::string ctx_error;
  SSL_CTX* ctx = SharedContext(options, &ctx_error);
  if (!ctx) return Error("tls.context", RetryClass::kNeedsOperator, ctx_error);

  SSL* ssl = SSL_new(ctx);
  if (!ssl) return Error("tls.oom", RetryClass::kBackoff, "cannot create TLS session: " + OpenSslErrors());
  if (util::Status s = SetPeerName(ssl, d->fd, options); !s.ok()) {
    SSL_free(ssl);
    return s;
  }

  for (;;) {
    ERR_clear_error();
    int r = SSL_connect(ssl);
    if (r == 1) break;
    int err = SSL_get_error(ssl, r);
    short ev = static_cast<short>(err == SSL_ERROR_WANT_READ ? POLLIN : err == SSL_ERROR_WANT_WRITE ? POLLOUT : 0);
    if (ev != 0) {
      Wait w = WaitFor(d->fd, d->stop_fd, ev, Budget(d));
      if (w == Wait::kReady) continue;
      SSL_free(ssl);
      return Error("tls.handshake", RetryClass::kBackoff,
                   w == Wait::kStopped ? "TLS handshake cancelled (shutting down)"
                                       : "TLS handshake with " + options.host + " timed out");
    }
    long verify = SSL_get_verify_result(ssl);
    std::string ssl_errors = OpenSslErrors();
    SSL_free(ssl);
    if (verify != X509_V_OK) {
      std::string why = X509_verify_cert_error_string(verify);
      std::string fix;
      if (verify == X509_V_ERR_HOSTNAME_MISMATCH || verify == X509_V_ERR_IP_ADDRESS_MISMATCH) {
        fix = "the certificate is not valid for host \"" + options.host +
              "\": connect using a name the certificate covers";
      } else {
        fix = options.ca_file ? "the certificate is not signed by a CA in ca_file " + *options.ca_file
                              : "the certificate is not trusted by the system store: set ca_file to "
                                "the CA that signed it";
      }
      return Error("tls.verify", RetryClass::kNeedsOperator,
                   "TLS certificate verification failed for " + options.host + ": " + why + "; " + fix +
                       (options.owner.empty()
                            ? ""
                            : " (or, only for a test server, tls_verify: false for this " + options.owner + ")"));
    }
    return Error("tls.handshake", RetryClass::kBackoff,
                 "TLS handshake with " + options.host +
                     " failed: " + (ssl_errors.empty() ? "connection closed" : ssl_errors) +
                     " (is this port really TLS? " + options.port_hint + ")");
  }
  d->ssl = ssl;
  return util::Ok();
}

bool IsEncrypted(mailstream* stream) { return DataOf(mailstream_get_low(stream))->ssl != nullptr; }

bool HasPendingTlsData(mailstream* stream) {
  StreamData* d = DataOf(mailstream_get_low(stream));
  return (d->ssl && SSL_pending(d->ssl) > 0) || d->held_given < d->held.size();
}

void SetInterruptFd(mailstream* stream, int stop_fd) { DataOf(mailstream_get_low(stream))->stop_fd = stop_fd; }

void SetStreamTimeout(mailstream* stream, std::chrono::milliseconds timeout) {
  DataOf(mailstream_get_low(stream))->timeout = timeout;
}

void StopScanningImapNesting(mailstream* stream) { DataOf(mailstream_get_low(stream))->scan_nesting = false; }

void SetStreamDeadline(mailstream* stream, std::optional<std::chrono::steady_clock::time_point> deadline) {
  DataOf(mailstream_get_low(stream))->deadline = deadline;
}

void StartResponseBudget(mailstream* stream, uint64_t limit, uint64_t syntax_limit) {
  StreamData* d = DataOf(mailstream_get_low(stream));
  d->budget = limit;
  d->syntax_budget = syntax_limit;
  d->nesting.ResetSyntaxBytes();
  d->used = 0;
  d->over_budget = false;
}

void ScreenByeGreeting(mailstream* stream, std::optional<std::string>* bye_text) {
  DataOf(mailstream_get_low(stream))->bye_greeting = bye_text;
}

bool ResponseBudgetExceeded(mailstream* stream) { return DataOf(mailstream_get_low(stream))->over_budget; }

bool ResponseTooDeep(mailstream* stream) { return DataOf(mailstream_get_low(stream))->too_deep; }

uint64_t ResponseBytesRead(mailstream* stream) { return DataOf(mailstream_get_low(stream))->used; }

}  // namespace mailhook::imap
