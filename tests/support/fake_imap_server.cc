#include "fake_imap_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <stdexcept>

namespace mailhook::imap::fake {
namespace {

bool SendAll(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

std::string Expand(std::string text, const std::string& tag, const std::string& line) {
  for (size_t at; (at = text.find("$TAG")) != std::string::npos;) text.replace(at, 4, tag);
  for (size_t at; (at = text.find("$LINE")) != std::string::npos;) text.replace(at, 5, line);
  return text;
}

}  // namespace

FakeImapServer::FakeImapServer(std::function<std::string(const std::string&)> on_uid, std::string greeting,
                               std::string capabilities, std::map<std::string, std::string> replies)
    : on_uid_(std::move(on_uid)),
      greeting_(std::move(greeting)),
      capabilities_(std::move(capabilities)),
      replies_(std::move(replies)) {
  listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(listen_fd_, 1) != 0)
    throw std::runtime_error("fake server: bind failed");
  socklen_t len = sizeof addr;
  getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  thread_ = std::thread([this] { Serve(); });
}

void FakeImapServer::Join() {
  if (thread_.joinable()) thread_.join();
}

FakeImapServerProcess::FakeImapServerProcess(const std::function<std::string()>& make_reply, std::string greeting,
                                             std::string capabilities) {
  int fds[2];
  if (pipe(fds) != 0) throw std::runtime_error("fake server process: pipe failed");
  pid_ = fork();
  if (pid_ < 0) throw std::runtime_error("fake server process: fork failed");
  if (pid_ == 0) {
    close(fds[0]);
    std::string reply = make_reply();
    {
      FakeImapServer server([&](const std::string&) { return reply; }, greeting, capabilities);
      int port = server.port();
      if (write(fds[1], &port, sizeof port) != sizeof port) _exit(1);
      close(fds[1]);
      server.Join();
    }
    _exit(0);
  }
  close(fds[1]);
  if (read(fds[0], &port_, sizeof port_) != sizeof port_) port_ = 0;
  close(fds[0]);
}

FakeImapServerProcess::~FakeImapServerProcess() {
  int status = 0;
  if (pid_ > 0) waitpid(pid_, &status, 0);
}

FakeImapServer::~FakeImapServer() {
  shutdown(listen_fd_, SHUT_RDWR);
  if (thread_.joinable()) thread_.join();
  close(listen_fd_);
}

void FakeImapServer::Serve() {
  pollfd p{listen_fd_, POLLIN, 0};
  if (poll(&p, 1, 10000) <= 0) return;
  int fd = accept(listen_fd_, nullptr, nullptr);
  if (fd < 0) return;
  SendAll(fd, greeting_);
  std::string buf;
  std::string idle_tag;  // the IDLE that a DONE ends
  char chunk[4096];
  for (;;) {
    size_t eol;
    while ((eol = buf.find("\r\n")) == std::string::npos) {
      pollfd q{fd, POLLIN, 0};
      if (poll(&q, 1, 10000) <= 0) {
        close(fd);
        return;
      }
      ssize_t n = recv(fd, chunk, sizeof chunk, 0);
      if (n <= 0) {
        close(fd);
        return;
      }
      buf.append(chunk, static_cast<size_t>(n));
    }
    std::string line = buf.substr(0, eol);
    buf.erase(0, eol + 2);
    transcript_ += line + "\n";
    if (line == "DONE") {  // ends IDLE (RFC 2177): no tag of its own
      auto it = replies_.find("DONE");
      if (!SendAll(fd, it != replies_.end() ? Expand(it->second, idle_tag, line) : idle_tag + " OK idle done\r\n")) {
        break;
      }
      continue;
    }
    std::string tag = line.substr(0, line.find(' '));
    std::string rest = line.substr(tag.size() + 1);
    std::string upper;
    for (char c : rest) upper += static_cast<char>(toupper(static_cast<unsigned char>(c)));
    std::string reply;
    const std::string verb = upper.substr(0, upper.find(' '));
    if (verb == "IDLE") idle_tag = tag;
    if (auto it = replies_.find(verb); it != replies_.end()) {
      if (it->second == "CLOSE") break;
      reply = Expand(it->second, tag, line);
      if (reply.ends_with("$CLOSE")) {  // the text, then the connection closes
        SendAll(fd, reply.substr(0, reply.size() - 6));
        break;
      }
    } else if (upper.rfind("LOGIN", 0) == 0) {
      reply = tag + " OK LOGIN done\r\n";
    } else if (upper.rfind("CAPABILITY", 0) == 0) {
      reply = "* CAPABILITY " + capabilities_ + "\r\n" + tag + " OK done\r\n";
    } else if (upper.rfind("SELECT", 0) == 0) {
      reply = "* 3 EXISTS\r\n* OK [UIDVALIDITY 7] ok\r\n* OK [UIDNEXT 100] ok\r\n" + tag +
              " OK [READ-WRITE] SELECT done\r\n";
    } else if (upper.rfind("NOOP", 0) == 0) {
      reply = tag + " OK NOOP done\r\n";
    } else if (upper.rfind("LOGOUT", 0) == 0) {
      SendAll(fd, "* BYE bye\r\n" + tag + " OK LOGOUT done\r\n");
      close(fd);
      return;
    } else if (upper.rfind("UID", 0) == 0) {
      std::string body = on_uid_(rest);
      reply = body == "BAD" ? tag + " BAD no\r\n" : body + tag + " OK UID done\r\n";
    } else {
      reply = tag + " BAD unknown command\r\n";
    }
    if (!SendAll(fd, reply)) break;
  }
  close(fd);
}

}  // namespace mailhook::imap::fake
