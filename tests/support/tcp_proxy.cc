#include "tcp_proxy.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <stdexcept>

namespace mailhook::testsupport {
namespace {

bool SendAll(int fd, const char* data, size_t size) {
  size_t off = 0;
  while (off < size) {
    ssize_t n = send(fd, data + off, size - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

// Closes with RST instead of FIN: the peer's next read fails at once.
void CloseWithReset(int fd) {
  linger l{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  close(fd);
}

sockaddr_in Loopback(int port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  return addr;
}

}  // namespace

TcpProxy::TcpProxy(int target_port) : target_port_(target_port) {
  listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr = Loopback(0);
  if (listen_fd_ < 0 || bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      listen(listen_fd_, 64) != 0 || pipe2(wake_, O_CLOEXEC | O_NONBLOCK) != 0) {
    throw std::runtime_error("tcp proxy: cannot listen on 127.0.0.1");
  }
  socklen_t len = sizeof addr;
  getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  thread_ = std::thread([this] { Serve(); });
}

TcpProxy::~TcpProxy() {
  stop_ = true;
  Wake();
  if (thread_.joinable()) thread_.join();
  for (auto& link : links_) {
    close(link->client);
    close(link->server);
  }
  close(listen_fd_);
  close(wake_[0]);
  close(wake_[1]);
}

int TcpProxy::forwarding() const {
  std::lock_guard lock(mu_);
  int n = 0;
  for (const auto& link : links_) n += link->black_holed ? 0 : 1;
  return n;
}

int TcpProxy::BlackHole() {
  std::lock_guard lock(mu_);
  int n = 0;
  for (auto& link : links_) {
    n += link->black_holed ? 0 : 1;
    link->black_holed = true;
  }
  return n;
}

int TcpProxy::Reset() {
  int n = 0;
  {
    std::lock_guard lock(mu_);
    for (auto& link : links_) {
      n += link->reset ? 0 : 1;
      link->reset = true;  // closed by the serving thread: it may be polling these fds
    }
  }
  Wake();
  return n;
}

void TcpProxy::Wake() {
  const char c = 1;
  [[maybe_unused]] ssize_t ignored = write(wake_[1], &c, 1);
}

void TcpProxy::Accept() {
  int client = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
  if (client < 0) return;
  int server = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr = Loopback(target_port_);
  if (server < 0 || connect(server, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    if (server >= 0) close(server);
    close(client);
    return;
  }
  ++accepted_;
  auto link = std::make_unique<Link>();
  link->client = client;
  link->server = server;
  std::lock_guard lock(mu_);
  links_.push_back(std::move(link));
}

bool TcpProxy::Pump(Link& link, int from, int to) {
  char buf[16384];
  ssize_t n = recv(from, buf, sizeof buf, 0);
  if (n < 0 && (errno == EINTR || errno == EAGAIN)) return true;
  if (n <= 0) return false;
  if (link.black_holed) {
    swallowed_ += static_cast<uint64_t>(n);
    return true;
  }
  forwarded_ += static_cast<uint64_t>(n);
  return SendAll(to, buf, static_cast<size_t>(n));
}

void TcpProxy::Serve() {
  while (!stop_) {
    std::vector<pollfd> fds = {{listen_fd_, POLLIN, 0}, {wake_[0], POLLIN, 0}};
    std::vector<Link*> of;  // the link of fds[2 + k / 2]
    {
      std::lock_guard lock(mu_);
      for (auto& link : links_) {
        fds.push_back({link->client, POLLIN, 0});
        fds.push_back({link->server, POLLIN, 0});
        of.push_back(link.get());
      }
    }
    if (poll(fds.data(), fds.size(), 1000) < 0 && errno != EINTR) return;
    if (fds[1].revents) {
      char drain[64];
      while (read(wake_[0], drain, sizeof drain) > 0) {
      }
    }
    {
      std::lock_guard lock(mu_);
      PumpAll(fds, of);
    }
    if (fds[0].revents) Accept();
  }
}

void TcpProxy::PumpAll(const std::vector<pollfd>& fds, const std::vector<Link*>& of) {
  for (size_t k = 0; k < of.size(); ++k) {
    Link& link = *of[k];
    bool alive = !link.reset;
    if (alive && fds[2 + 2 * k].revents) alive = Pump(link, link.client, link.server);
    if (alive && fds[3 + 2 * k].revents) alive = Pump(link, link.server, link.client);
    if (alive) continue;
    CloseWithReset(link.client);
    CloseWithReset(link.server);
    link.client = link.server = -1;
  }
  std::erase_if(links_, [](const std::unique_ptr<Link>& l) { return l->client < 0; });
}

}  // namespace mailhook::testsupport
