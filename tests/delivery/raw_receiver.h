#pragma once
/// RawReceiver: a hostile webhook receiver for tests, on 127.0.0.1:<any port>.
/// It reads each HTTP request (headers and a Content-Length body) and then hands
/// the socket to a handler that writes whatever bytes it likes, as slowly as it
/// likes. Handlers should end when stopping() turns true (the destructor sets it
/// and joins every connection thread).

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace mailhook::delivery::testing {

class RawReceiver {
 public:
  using Handler = std::function<void(int fd, RawReceiver& self)>;

  explicit RawReceiver(Handler handler) : handler_(std::move(handler)) {
    listen_fd_ = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    listen(listen_fd_, 64);
    socklen_t len = sizeof(addr);
    getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    acceptor_ = std::thread([this] { Accept(); });
  }
  ~RawReceiver() {
    stopping_ = true;
    acceptor_.join();
    std::vector<std::thread> threads;
    {
      std::lock_guard lock(mu_);
      threads.swap(threads_);
    }
    for (auto& t : threads) t.join();
    close(listen_fd_);
  }
  RawReceiver(const RawReceiver&) = delete;
  RawReceiver& operator=(const RawReceiver&) = delete;

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/hook"; }
  int port() const { return port_; }
  bool stopping() const { return stopping_; }
  /// Requests read completely so far.
  int requests() const { return requests_; }
  /// The last request's header block (for checks such as "no Accept-Encoding").
  std::string last_headers() {
    std::lock_guard lock(mu_);
    return last_headers_;
  }

  /// Writes all of `data` unless the peer is gone; false then.
  static bool Send(int fd, std::string_view data) {
    while (!data.empty()) {
      ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

 private:
  void Accept() {
    while (!stopping_) {
      pollfd p{listen_fd_, POLLIN, 0};
      if (poll(&p, 1, 20) <= 0) continue;
      int fd = accept(listen_fd_, nullptr, nullptr);
      if (fd < 0) continue;
      std::lock_guard lock(mu_);
      threads_.emplace_back([this, fd] { Serve(fd); });
    }
  }

  // Reads one request, then lets the handler answer; one request per connection.
  void Serve(int fd) {
    std::string in;
    char buf[4096];
    size_t header_end = std::string::npos;
    size_t need = 0;
    while (!stopping_) {
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, 20) <= 0) continue;
      ssize_t n = recv(fd, buf, sizeof(buf), 0);
      if (n <= 0) break;
      in.append(buf, static_cast<size_t>(n));
      if (header_end == std::string::npos) {
        header_end = in.find("\r\n\r\n");
        if (header_end == std::string::npos) continue;
        std::string lower = in.substr(0, header_end);
        for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        auto at = lower.find("content-length:");
        size_t length = at == std::string::npos ? 0 : std::stoul(lower.substr(at + 15));
        need = header_end + 4 + length;
        std::lock_guard lock(mu_);
        last_headers_ = in.substr(0, header_end);
      }
      if (in.size() >= need) {
        ++requests_;
        handler_(fd, *this);
        break;
      }
    }
    close(fd);
  }

  Handler handler_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int> requests_{0};
  std::thread acceptor_;
  std::mutex mu_;
  std::vector<std::thread> threads_;  // guarded by mu_
  std::string last_headers_;          // guarded by mu_
};

/// Resident set size and its peak (VmRSS, VmHWM) of this process, in bytes.
inline std::pair<size_t, size_t> MemoryUse() {
  FILE* f = fopen("/proc/self/status", "r");
  size_t rss = 0, hwm = 0;
  char line[256];
  while (f && fgets(line, sizeof(line), f)) {
    std::string_view l(line);
    if (l.starts_with("VmRSS:")) rss = std::stoul(std::string(l.substr(6))) * 1024;
    if (l.starts_with("VmHWM:")) hwm = std::stoul(std::string(l.substr(6))) * 1024;
  }
  if (f) fclose(f);
  return {rss, hwm};
}

/// Resets the peak RSS to the current RSS (Linux >= 4.0), so that a test can
/// measure the peak of what it does next.
inline bool ResetPeakMemory() {
  FILE* f = fopen("/proc/self/clear_refs", "w");
  if (!f) return false;
  bool ok = fputs("5", f) >= 0;
  return fclose(f) == 0 && ok;
}

}  // namespace mailhook::delivery::testing
