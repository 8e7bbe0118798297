#pragma once
/// TcpProxy: a TCP proxy on 127.0.0.1 in front of a real server (Dovecot),
/// for the network faults a server cannot make itself:
/// - BlackHole(): every connection open now stops forwarding, in both
///   directions, while both of its sockets stay open; what arrives is read
///   and dropped (counted in swallowed()). This is a proxy or NAT that lost
///   the session silently: TCP stays up, so keepalive never notices, and only
///   a round trip with a deadline does. Connections accepted afterwards
///   forward normally (a reconnect gets through).
/// - Reset(): every connection open now is closed with RST on both sides.
/// One thread serves every connection (poll); forwarding blocks on a full
/// peer, which loopback IMAP traffic never reaches for long. Thread-safe.

#include <poll.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace mailhook::testsupport {

class TcpProxy {
 public:
  /// Listens on 127.0.0.1 (a free port) and forwards to 127.0.0.1:`target_port`.
  /// Throws std::runtime_error if it cannot listen (a broken test environment).
  explicit TcpProxy(int target_port);
  ~TcpProxy();
  TcpProxy(const TcpProxy&) = delete;
  TcpProxy& operator=(const TcpProxy&) = delete;

  /// Where clients connect.
  int port() const { return port_; }
  /// Connections accepted since the start.
  int accepted() const { return accepted_.load(); }
  /// Connections open now that forward (not black-holed).
  int forwarding() const;
  /// The connections open now stop forwarding, sockets kept open. Returns
  /// how many were black-holed.
  int BlackHole();
  /// The connections open now are closed with RST (client and server side).
  /// Returns how many.
  int Reset();
  /// Bytes read from black-holed connections and dropped (either direction).
  uint64_t swallowed() const { return swallowed_.load(); }
  /// Bytes forwarded (either direction).
  uint64_t forwarded() const { return forwarded_.load(); }

 private:
  struct Link {
    int client = -1;
    int server = -1;
    bool black_holed = false;
    bool reset = false;  // closed with RST at the next turn of the serving thread
  };
  void Serve();
  void Accept();
  /// Reads what `from` has for `link`; false when that side closed (the link ends).
  bool Pump(Link& link, int from, int to);
  /// Moves what the polled `fds` have (fds[2 + 2k], fds[3 + 2k]: link of[k]);
  /// closes and drops links that ended or were reset. mu_ held.
  void PumpAll(const std::vector<pollfd>& fds, const std::vector<Link*>& of);
  void Wake();

  int target_port_;
  int listen_fd_ = -1;
  int port_ = 0;
  int wake_[2] = {-1, -1};  // a pipe: the test thread's commands wake the poll
  std::atomic<bool> stop_{false};
  std::atomic<int> accepted_{0};
  std::atomic<uint64_t> swallowed_{0};
  std::atomic<uint64_t> forwarded_{0};
  mutable std::mutex mu_;
  std::vector<std::unique_ptr<Link>> links_;  // guarded by mu_
  std::thread thread_;
};

}  // namespace mailhook::testsupport
