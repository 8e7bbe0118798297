#include "smtp_policy_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <iostream>

namespace mailhook::testsupport {
namespace {

using util::Error;
using util::RetryClass;

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

bool SendAll(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

SmtpPolicyServer::~SmtpPolicyServer() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    // shutdown() wakes the threads blocked in accept() and recv().
    for (int fd : connections_) shutdown(fd, SHUT_RDWR);
  }
  if (listen_fd_ >= 0) shutdown(listen_fd_, SHUT_RDWR);
  if (acceptor_.joinable()) acceptor_.join();
  // The acceptor is gone: servers_ no longer grows.
  for (auto& t : servers_) t.join();
  if (listen_fd_ >= 0) close(listen_fd_);
}

util::Status SmtpPolicyServer::Start() {
  listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (listen_fd_ < 0 || bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      listen(listen_fd_, 16) != 0 || getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return Error("policy.listen", RetryClass::kNeedsOperator,
                 std::string("cannot listen on 127.0.0.1:0: ") + std::strerror(errno));
  }
  port_ = ntohs(addr.sin_port);
  acceptor_ = std::thread([this] { AcceptLoop(); });
  return util::Ok();
}

void SmtpPolicyServer::AcceptLoop() {
  for (;;) {
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      return;  // shut down by the destructor
    }
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) {
      close(fd);
      return;
    }
    connections_.push_back(fd);
    servers_.emplace_back([this, fd] { Serve(fd); });
  }
}

// One connection: requests are "name=value" lines ended by an empty line; the
// answer is "action=..." and an empty line (SMTPD_POLICY_README, "Protocol
// description"). Postfix sends the next request on the same connection.
void SmtpPolicyServer::Serve(int fd) {
  try {
    std::string buffer;
    std::map<std::string, std::string> request;
    char chunk[4096];
    for (;;) {
      ssize_t n = recv(fd, chunk, sizeof chunk, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      buffer.append(chunk, static_cast<size_t>(n));
      for (size_t eol; (eol = buffer.find('\n')) != std::string::npos;) {
        std::string line = buffer.substr(0, eol);
        buffer.erase(0, eol + 1);
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (!line.empty()) {
          auto eq = line.find('=');
          if (eq != std::string::npos) request[line.substr(0, eq)] = line.substr(eq + 1);
          continue;
        }
        if (!SendAll(fd, "action=" + Decide(request) + "\n\n")) break;
        request.clear();
      }
    }
  } catch (const std::exception& e) {
    std::cerr << "policy server: " << e.what() << "\n";
  }
  std::lock_guard<std::mutex> lock(mu_);
  connections_.erase(std::remove(connections_.begin(), connections_.end(), fd), connections_.end());
  close(fd);
}

std::string SmtpPolicyServer::Decide(const std::map<std::string, std::string>& request) {
  auto it = request.find("recipient");
  auto state = request.find("protocol_state");
  const bool end_of_data = state != request.end() && state->second == "END-OF-MESSAGE";
  const Key key{end_of_data ? PolicyStage::kEndOfData : PolicyStage::kRcpt,
                it == request.end() ? "" : Lower(it->second)};
  std::lock_guard<std::mutex> lock(mu_);
  ++requests_[key.first];
  const int attempt = ++seen_[key];
  std::string action = "DUNNO";
  if (auto r = reject_.find(key); r != reject_.end()) {
    action = r->second;
  } else if (auto d = defer_first_.find(key); d != defer_first_.end() && attempt == 1) {
    action = d->second;
    ++deferred_;
  }
  cv_.notify_all();
  return action;
}

void SmtpPolicyServer::DeferFirstAttemptFor(const std::string& address, const std::string& reply, PolicyStage stage) {
  std::lock_guard<std::mutex> lock(mu_);
  defer_first_[{stage, Lower(address)}] = reply;
}

void SmtpPolicyServer::RejectRecipient(const std::string& address, const std::string& reply, PolicyStage stage) {
  std::lock_guard<std::mutex> lock(mu_);
  reject_[{stage, Lower(address)}] = reply;
}

int SmtpPolicyServer::requests(PolicyStage stage) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = requests_.find(stage);
  return it == requests_.end() ? 0 : it->second;
}

int SmtpPolicyServer::requests_for(const std::string& address, PolicyStage stage) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = seen_.find({stage, Lower(address)});
  return it == seen_.end() ? 0 : it->second;
}

int SmtpPolicyServer::deferred() const {
  std::lock_guard<std::mutex> lock(mu_);
  return deferred_;
}

bool SmtpPolicyServer::WaitForRequests(const std::string& address, int n, std::chrono::milliseconds timeout,
                                       PolicyStage stage) const {
  const Key key{stage, Lower(address)};
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, timeout, [&] {
    auto it = seen_.find(key);
    return it != seen_.end() && it->second >= n;
  });
}

}  // namespace mailhook::testsupport
