// PgConnection::Connect without a PostgreSQL server: the attempt is bounded by
// its own deadline (a listener that never answers), fails at once on a closed
// port, stops when its cancel token fires, and never puts the URL's password
// in the Error. The tests against a real server are in
// tests/integration/pg_connection_test.cc.
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include <gtest/gtest.h>

#include "pgstore/pg_connection.h"
#include "util/cancel_token.h"

namespace mailhook::pgstore {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

// A TCP socket on 127.0.0.1 with a port of its own; Listen() makes it a
// listener that never accepts (the kernel completes the handshake, nobody
// answers: a hung server), otherwise the port is bound but closed.
class LoopbackSocket {
 public:
  LoopbackSocket() : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    if (fd_ >= 0 && ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
      port_ = ntohs(addr.sin_port);
    }
  }
  ~LoopbackSocket() {
    if (fd_ >= 0) ::close(fd_);
  }
  bool Listen() { return ::listen(fd_, 8) == 0; }
  /// A listener is readable once a handshake completed (a client waits).
  bool WaitForPendingConnection(milliseconds timeout) {
    pollfd pfd{fd_, POLLIN, 0};
    return ::poll(&pfd, 1, static_cast<int>(timeout.count())) == 1;
  }
  int port() const { return port_; }
  std::string Url() const { return "postgresql://mailhook:Pw-do-not-leak@127.0.0.1:" + std::to_string(port_) + "/db"; }

 private:
  int fd_;
  int port_ = 0;
};

int64_t MsSince(steady_clock::time_point start) {
  return std::chrono::duration_cast<milliseconds>(steady_clock::now() - start).count();
}

TEST(PgConnectTest, ClosedPortFailsAtOnceAsBackoff) {
  LoopbackSocket closed;  // bound, not listening: connect() is refused
  ASSERT_NE(closed.port(), 0);
  PgConnectOptions options;
  options.connect_timeout = milliseconds(5000);
  const auto start = steady_clock::now();
  auto conn = PgConnection::Connect(closed.Url(), options);
  const int64_t took = MsSince(start);
  ASSERT_FALSE(conn.ok());
  EXPECT_LT(took, 5000) << "a refused connect must not wait for the timeout";
  EXPECT_EQ(conn.error().code(), "store.pg.connection");
  EXPECT_EQ(conn.error().retry(), util::RetryClass::kBackoff);
  EXPECT_TRUE(conn.error().IsStore());
  EXPECT_NE(conn.error().message().find("postgresql://mailhook:<redacted>@127.0.0.1"), std::string::npos)
      << conn.error().message();
  EXPECT_EQ(conn.error().message().find("Pw-do-not-leak"), std::string::npos) << conn.error().message();
  std::cerr << "refused in " << took << " ms: " << conn.error().ToString() << "\n";
}

// The point of the poll() loop: libpq alone would wait for the server's
// answer with no bound below whole seconds (or none, in non-blocking mode).
TEST(PgConnectTest, SilentServerTimesOutAtTheDeadline) {
  LoopbackSocket silent;
  ASSERT_TRUE(silent.Listen());
  PgConnectOptions options;
  options.connect_timeout = milliseconds(400);
  const auto start = steady_clock::now();
  auto conn = PgConnection::Connect(silent.Url(), options);
  const int64_t took = MsSince(start);
  ASSERT_FALSE(conn.ok());
  EXPECT_GE(took, 400) << "it gave up before the deadline: " << conn.error().ToString();
  EXPECT_LT(took, 2000) << "the deadline did not bound the attempt";
  EXPECT_EQ(conn.error().code(), "store.pg.connection");
  EXPECT_EQ(conn.error().retry(), util::RetryClass::kBackoff);
  EXPECT_NE(conn.error().message().find("connect timeout of 400 ms"), std::string::npos) << conn.error().message();
  EXPECT_EQ(conn.error().message().find("Pw-do-not-leak"), std::string::npos) << conn.error().message();
  std::cerr << "timed out in " << took << " ms\n";
}

TEST(PgConnectTest, CancelStopsAnAttemptUnderWay) {
  LoopbackSocket silent;
  ASSERT_TRUE(silent.Listen());
  util::CancelToken cancel;
  PgConnectOptions options;
  options.connect_timeout = milliseconds(30000);
  options.cancel = &cancel;
  bool waiting = false;
  std::thread canceller([&] {
    // Connected and waiting for the server's answer: cancel it there.
    waiting = silent.WaitForPendingConnection(milliseconds(10000));
    cancel.Cancel();
  });
  const auto start = steady_clock::now();
  auto conn = PgConnection::Connect(silent.Url(), options);
  const int64_t took = MsSince(start);
  canceller.join();
  ASSERT_TRUE(waiting) << "the attempt never reached the listener";
  ASSERT_FALSE(conn.ok());
  EXPECT_LT(took, 5000);
  EXPECT_EQ(conn.error().code(), "store.pg.connection");
  EXPECT_NE(conn.error().message().find("cancelled"), std::string::npos) << conn.error().message();
}

TEST(PgConnectTest, MalformedUrlNamesTheFixWithoutThePassword) {
  auto conn = PgConnection::Connect("postgresql://u:Pw-do-not-leak@127.0.0.1:notaport/db");
  ASSERT_FALSE(conn.ok());
  EXPECT_EQ(conn.error().message().find("Pw-do-not-leak"), std::string::npos) << conn.error().message();
  EXPECT_EQ(conn.error().code(), "store.pg.url");
  EXPECT_TRUE(conn.error().NeedsOperator());
  EXPECT_NE(conn.error().message().find("fix store.url"), std::string::npos) << conn.error().message();
  std::cerr << conn.error().ToString() << "\n";
}

}  // namespace
}  // namespace mailhook::pgstore
