#include "fake_smtp_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <fstream>
#include <stdexcept>

#include <openssl/ssl.h>

namespace mailhook::testsupport {

TestCertificates::TestCertificates() {
  const std::string& d = dir_.path();
  const std::string script =
      "set -e; cd " + d +
      "; openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key -out ca.pem "
      "-days 2 -subj /CN=mailhook-smtp-test-ca 2>/dev/null;"
      "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout good.key -out good.csr "
      "-subj /CN=127.0.0.1 2>/dev/null;"
      "printf 'subjectAltName=IP:127.0.0.1\\n' > good.ext;"
      "openssl x509 -req -in good.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out good.pem -days 2 "
      "-extfile good.ext 2>/dev/null";
  std::ofstream(d + "/make.sh") << script;
  ok_ = std::system(("sh " + d + "/make.sh").c_str()) == 0;
}

const TestCertificates& TestCertificates::Get() {
  static const TestCertificates certs;
  return certs;
}

/// One connection: the socket, TLS once started, and unread bytes.
struct FakeSmtpServer::Conn {
  int fd = -1;
  SSL_CTX* ctx = nullptr;
  SSL* ssl = nullptr;
  std::string buf;

  ~Conn() {
    if (ssl) SSL_free(ssl);
    if (ctx) SSL_CTX_free(ctx);
    if (fd >= 0) close(fd);
  }
  bool Send(const std::string& s) {
    size_t off = 0;
    while (off < s.size()) {
      const int n = ssl ? SSL_write(ssl, s.data() + off, static_cast<int>(s.size() - off))
                        : static_cast<int>(send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL));
      if (n <= 0) return false;
      off += static_cast<size_t>(n);
    }
    return true;
  }
  /// The next line without CRLF; false when the client went away (10 s max).
  bool ReadLine(std::string* line) {
    size_t eol;
    while ((eol = buf.find("\r\n")) == std::string::npos) {
      if (!ssl || SSL_pending(ssl) == 0) {
        pollfd q{fd, POLLIN, 0};
        if (poll(&q, 1, 10000) <= 0) return false;
      }
      char chunk[4096];
      const int n = ssl ? SSL_read(ssl, chunk, sizeof chunk) : static_cast<int>(recv(fd, chunk, sizeof chunk, 0));
      if (n <= 0) return false;
      buf.append(chunk, static_cast<size_t>(n));
    }
    *line = buf.substr(0, eol);
    buf.erase(0, eol + 2);
    return true;
  }
  bool StartTls() {
    const TestCertificates& certs = TestCertificates::Get();
    ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx || SSL_CTX_use_certificate_chain_file(ctx, certs.cert_file().c_str()) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, certs.key_file().c_str(), SSL_FILETYPE_PEM) != 1)
      return false;
    ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    return SSL_accept(ssl) == 1;
  }
};

namespace {

bool StartsWithNoCase(const std::string& s, const std::string& prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    if (std::toupper(static_cast<unsigned char>(s[i])) != std::toupper(static_cast<unsigned char>(prefix[i])))
      return false;
  }
  return true;
}

std::string WithoutStartTls(const std::string& ehlo) {
  std::string out;
  size_t at = 0;
  while (at < ehlo.size()) {
    size_t end = ehlo.find("\r\n", at);
    std::string line = ehlo.substr(at, end - at);
    at = end == std::string::npos ? ehlo.size() : end + 2;
    if (line.size() > 4 && StartsWithNoCase(line.substr(4), "STARTTLS")) continue;
    out += line + "\r\n";
  }
  // The last line must end the reply ("250 "), the others continue it.
  for (size_t i = 0, next; (next = out.find("\r\n", i)) != std::string::npos; i = next + 2) {
    if (out.size() > 3 + i) out[i + 3] = next + 2 == out.size() ? ' ' : '-';
  }
  return out;
}

}  // namespace

FakeSmtpServer::FakeSmtpServer(FakeSmtpScript script) : script_(std::move(script)) {
  // SSL_write to a client that gave up (a timeout test) must not kill the
  // test process; send() has MSG_NOSIGNAL, OpenSSL's writes do not.
  std::signal(SIGPIPE, SIG_IGN);
  listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(listen_fd_, 1) != 0)
    throw std::runtime_error("fake SMTP server: bind failed");
  socklen_t len = sizeof addr;
  getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  thread_ = std::thread([this] { Serve(); });
}

FakeSmtpServer::~FakeSmtpServer() {
  shutdown(listen_fd_, SHUT_RDWR);
  Join();
  close(listen_fd_);
}

void FakeSmtpServer::Join() {
  if (thread_.joinable()) thread_.join();
}

std::vector<std::string> FakeSmtpServer::commands() const {
  std::lock_guard lock(mu_);
  return commands_;
}

std::vector<std::string> FakeSmtpServer::clear_commands() const {
  std::lock_guard lock(mu_);
  return clear_;
}

std::string FakeSmtpServer::data() const {
  std::lock_guard lock(mu_);
  return data_;
}

void FakeSmtpServer::Record(const std::string& line, bool encrypted) {
  std::lock_guard lock(mu_);
  commands_.push_back(line);
  if (!encrypted) clear_.push_back(line);
}

void FakeSmtpServer::Serve() {
  pollfd p{listen_fd_, POLLIN, 0};
  if (poll(&p, 1, 10000) <= 0) return;
  Conn c;
  c.fd = accept(listen_fd_, nullptr, nullptr);
  if (c.fd < 0) return;
  // Without it a reply waits ~40 ms behind the unacknowledged TLS session
  // tickets (Nagle meets delayed ACK), as real servers avoid too.
  int one = 1;
  setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (script_.implicit_tls && !c.StartTls()) return;
  if (!Act(c, script_.greeting)) return;
  Dialogue(c);
}

// The script's override for `line`, else `fallback`.
std::string FakeSmtpServer::Choose(const std::string& line, const std::string& fallback) const {
  for (const auto& [prefix, answer] : script_.replies) {
    if (prefix.empty() ? line.empty() : StartsWithNoCase(line, prefix)) return answer;
  }
  return fallback;
}

bool FakeSmtpServer::Reply(Conn& c, const std::string& line, const std::string& fallback) {
  return Act(c, Choose(line, fallback));
}

bool FakeSmtpServer::Act(Conn& c, const std::string& reply) {
  if (reply == "CLOSE") return false;
  if (reply == "HANG") {
    std::string ignored;
    while (c.ReadLine(&ignored)) {
    }
    return false;
  }
  if (reply == "ENDLESS") {
    for (int i = 0; i < 1000000; ++i) {
      if (!c.Send("250-and more of the same endless reply\r\n")) break;
    }
    return false;
  }
  if (script_.reply_delay.count() > 0) std::this_thread::sleep_for(script_.reply_delay);  // the scripted slowness
  return c.Send(reply);
}

bool FakeSmtpServer::Dialogue(Conn& c) {
  std::string line;
  while (c.ReadLine(&line)) {
    Record(line, c.ssl != nullptr);
    if (StartsWithNoCase(line, "EHLO")) {
      if (!Reply(c, line, c.ssl ? WithoutStartTls(script_.ehlo) : script_.ehlo)) return false;
    } else if (StartsWithNoCase(line, "STARTTLS")) {
      if (!Reply(c, line, "220 2.0.0 Ready to start TLS\r\n")) return false;
      if (!c.StartTls()) return false;
    } else if (StartsWithNoCase(line, "AUTH LOGIN")) {
      if (!Reply(c, line, "334 VXNlcm5hbWU6\r\n")) return false;
      for (const char* next : {"334 UGFzc3dvcmQ6\r\n", "235 2.7.0 Authentication successful\r\n"}) {
        if (!c.ReadLine(&line)) return false;
        Record(line, c.ssl != nullptr);
        if (!Reply(c, line, next)) return false;
      }
    } else if (StartsWithNoCase(line, "AUTH")) {
      if (!Reply(c, line, "235 2.7.0 Authentication successful\r\n")) return false;
    } else if (StartsWithNoCase(line, "MAIL FROM:") || StartsWithNoCase(line, "RCPT TO:") ||
               StartsWithNoCase(line, "RSET")) {
      if (!Reply(c, line, "250 2.1.0 Ok\r\n")) return false;
    } else if (StartsWithNoCase(line, "DATA")) {
      const std::string answer = Choose(line, "354 End data with <CR><LF>.<CR><LF>\r\n");
      if (!Act(c, answer)) return false;
      if (!answer.starts_with("354")) continue;
      std::string body;
      do {
        if (!c.ReadLine(&body)) return false;
        std::lock_guard lock(mu_);
        data_ += body + "\r\n";
      } while (body != ".");
      if (!Reply(c, ".", "250 2.0.0 Ok: queued as FAKE1\r\n")) return false;
    } else if (StartsWithNoCase(line, "QUIT")) {
      Reply(c, line, "221 2.0.0 Bye\r\n");
      return true;
    } else if (!Reply(c, line, "502 5.5.2 Error: command not recognized\r\n")) {
      return false;
    }
  }
  return true;
}

}  // namespace mailhook::testsupport
