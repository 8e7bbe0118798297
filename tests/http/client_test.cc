// src/http/client.h against scripted servers on loopback: what a server sends
// is written byte for byte by the test, including what no good server sends.
#include "http/client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace mailhook::http {
namespace {

using std::chrono::milliseconds;
using Clock = ClientConnection::Clock;

/// A server on 127.0.0.1 that hands each accepted connection to `script`,
/// one at a time, on its own thread. The script reads requests with
/// ReadRequest and writes what it likes.
class ScriptedServer {
 public:
  using Script = std::function<void(int fd, ScriptedServer& self)>;

  explicit ScriptedServer(Script script) : script_(std::move(script)) {
    listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    listen(listen_fd_, 8);
    socklen_t len = sizeof addr;
    getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { Run(); });
  }
  ~ScriptedServer() {
    stopping_ = true;
    thread_.join();
    close(listen_fd_);
  }
  ScriptedServer(const ScriptedServer&) = delete;
  ScriptedServer& operator=(const ScriptedServer&) = delete;

  uint16_t port() const { return port_; }
  bool stopping() const { return stopping_; }
  int connections() const { return connections_; }
  std::string received() {
    std::lock_guard lock(mu_);
    return received_;
  }

  /// Reads one request (head and Content-Length body); false when the client
  /// closed first or the server is stopping.
  bool ReadRequest(int fd) {
    std::string in;
    size_t need = std::string::npos;
    while (!stopping_ && in.size() < need) {
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, 20) <= 0) continue;
      char buf[4096];
      const ssize_t n = recv(fd, buf, sizeof buf, 0);
      if (n <= 0) return false;
      in.append(buf, static_cast<size_t>(n));
      if (const size_t end = in.find("\r\n\r\n"); need == std::string::npos && end != std::string::npos) {
        const size_t at = in.find("Content-Length: ");
        need = end + 4 + (at == std::string::npos ? 0 : std::stoul(in.substr(at + 16)));
      }
    }
    std::lock_guard lock(mu_);
    received_ += in;
    return in.size() >= need;
  }

  static void Send(int fd, std::string_view data) {
    while (!data.empty()) {
      const ssize_t n = send(fd, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return;
      data.remove_prefix(static_cast<size_t>(n));
    }
  }

 private:
  void Run() {
    while (!stopping_) {
      pollfd p{listen_fd_, POLLIN, 0};
      if (poll(&p, 1, 20) <= 0) continue;
      const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      ++connections_;
      script_(fd, *this);
      close(fd);
    }
  }

  Script script_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int> connections_{0};
  std::mutex mu_;
  std::string received_;
  std::thread thread_;
};

/// Answers each request on a connection with the next of `answers`, then
/// waits for the client to close.
ScriptedServer::Script Answers(std::vector<std::string> answers) {
  return [answers](int fd, ScriptedServer& self) {
    for (const std::string& answer : answers) {
      if (!self.ReadRequest(fd)) return;
      ScriptedServer::Send(fd, answer);
    }
    while (!self.stopping() && self.ReadRequest(fd)) {
    }
  };
}

ClientOrigin Origin(const ScriptedServer& server) {
  ClientOrigin o;
  o.host = "127.0.0.1";
  o.port = server.port();
  return o;
}

ClientRequest Post(std::string body = "{}") {
  ClientRequest r;
  r.target = "/hook?x=1";
  r.headers = {{"Content-Type", "application/json"}};
  static std::vector<std::string> keep;  // the request views its body
  keep.push_back(std::move(body));
  r.body = keep.back();
  return r;
}

Clock::time_point In(milliseconds ms) { return Clock::now() + ms; }

std::unique_ptr<ClientConnection> Connect(const ScriptedServer& server) {
  auto c = ClientConnection::Open(Origin(server), In(milliseconds(5000)), -1);
  EXPECT_TRUE(c) << c.error().message();
  return c ? std::move(*c) : nullptr;
}

TEST(HttpClientTest, SendsOneWellFormedRequestWithHostAndContentLength) {
  ScriptedServer server(Answers({"HTTP/1.1 204 No Content\r\n\r\n"}));
  auto c = Connect(server);
  ASSERT_TRUE(c);
  auto r = c->Exchange(Post("hello"), In(milliseconds(5000)), -1, 1024);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->status, 204);
  EXPECT_EQ(server.received(), "POST /hook?x=1 HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(server.port()) +
                                   "\r\nContent-Type: application/json\r\nContent-Length: 5\r\n\r\nhello");
}

TEST(HttpClientTest, ChunkedBodyIsJoinedAndTheConnectionCarriesTheNextRequest) {
  ScriptedServer server(
      Answers({"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
               "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\n",
               "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nRetry-After: 7\r\n\r\nok"}));
  auto c = Connect(server);
  ASSERT_TRUE(c);
  auto first = c->Exchange(Post(), In(milliseconds(5000)), -1, 1024);
  ASSERT_TRUE(first) << first.error().message();
  EXPECT_EQ(first->body, "hello world");
  EXPECT_FALSE(first->body_capped);
  ASSERT_TRUE(c->Reusable());
  auto second = c->Exchange(Post(), In(milliseconds(5000)), -1, 1024);
  ASSERT_TRUE(second) << second.error().message();
  EXPECT_EQ(second->body, "ok");
  ASSERT_NE(second->Header("retry-after"), nullptr);
  EXPECT_EQ(*second->Header("retry-after"), "7");
  EXPECT_EQ(server.connections(), 1);
}

TEST(HttpClientTest, InterimResponsesAreSkipped) {
  ScriptedServer server(
      Answers({"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
               "HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok"}));
  auto c = Connect(server);
  ASSERT_TRUE(c);
  auto r = c->Exchange(Post(), In(milliseconds(5000)), -1, 1024);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->status, 201);
  EXPECT_EQ(r->body, "ok");
  EXPECT_EQ(r->Header("Link"), nullptr);
}

TEST(HttpClientTest, BodiesOverTheCapAreCutAndTheConnectionIsDropped) {
  const std::string big(100000, 'A');
  std::string chunked = "HTTP/1.1 500 Oops\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 100; ++i) chunked += "3e8\r\n" + std::string(1000, 'B') + "\r\n";
  chunked += "0\r\n\r\n";
  // A chunk size near 2^64 must not wrap any count.
  const std::string huge_chunk =
      "HTTP/1.1 500 Oops\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\n" + std::string(2000, 'C');
  for (const std::string& answer : {"HTTP/1.1 500 Oops\r\nContent-Length: 100000\r\n\r\n" + big, chunked, huge_chunk}) {
    ScriptedServer server(Answers({answer}));
    auto c = Connect(server);
    ASSERT_TRUE(c);
    auto r = c->Exchange(Post(), In(milliseconds(5000)), -1, 1500);
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(r->status, 500);
    EXPECT_EQ(r->body.size(), 1500u);
    EXPECT_TRUE(r->body_capped);
    EXPECT_FALSE(c->Reusable());
  }
}

TEST(HttpClientTest, ABodyUntilCloseEndsThereAndClosesTheConnection) {
  ScriptedServer server([](int fd, ScriptedServer& self) {
    if (self.ReadRequest(fd)) ScriptedServer::Send(fd, "HTTP/1.1 200 OK\r\n\r\nuntil the end");
  });
  auto c = Connect(server);
  ASSERT_TRUE(c);
  auto r = c->Exchange(Post(), In(milliseconds(5000)), -1, 1024);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->body, "until the end");
  EXPECT_FALSE(c->Reusable());
}

TEST(HttpClientTest, ConnectionCloseAndHttp10AreNotReused) {
  for (const char* answer : {"HTTP/1.1 200 OK\r\nConnection: keep-alive, Close\r\nContent-Length: 0\r\n\r\n",
                             "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n"}) {
    ScriptedServer server(Answers({answer}));
    auto c = Connect(server);
    ASSERT_TRUE(c);
    auto r = c->Exchange(Post(), In(milliseconds(5000)), -1, 1024);
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(r->status, 200);
    EXPECT_FALSE(c->Reusable()) << answer;
  }
}

TEST(HttpClientTest, AConnectionTheServerClosedWhileIdleIsNotReused) {
  ScriptedServer server([](int fd, ScriptedServer& self) {
    if (self.ReadRequest(fd)) ScriptedServer::Send(fd, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
  });  // then closes
  auto c = Connect(server);
  ASSERT_TRUE(c);
  ASSERT_TRUE(c->Exchange(Post(), In(milliseconds(5000)), -1, 1024));
  // The server's FIN arrives a moment after the answer: wait for it.
  const auto deadline = In(milliseconds(5000));
  while (c->Reusable() && Clock::now() < deadline) std::this_thread::sleep_for(milliseconds(5));
  EXPECT_FALSE(c->Reusable());
}

TEST(HttpClientTest, WhatIsNotAnHttpAnswerIsABadResponse) {
  const std::string huge_head = "HTTP/1.1 200 OK\r\n" + std::string(70000, 'X') + ": y\r\n\r\n";
  for (const std::string& answer :
       {std::string("SSH-2.0-OpenSSH_9.2\r\n\r\n"), huge_head, std::string("HTTP/1.1 200 OK\r\nno colon\r\n\r\n"),
        std::string("HTTP/1.1 200 OK\r\nContent-Length: 12x\r\n\r\n"),
        std::string("HTTP/1.1 200 OK\r\nContent-Length: \x1b[2J\r\n\r\n"),
        std::string("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n"),
        std::string("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"),
        std::string("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n0\r\n\r\n"),
        std::string("HTTP/1.1 -20 Odd\r\n\r\n"), std::string("HTTP/1.1 099 Odd\r\n\r\n"),
        std::string("HTTP/1.1 600 Odd\r\n\r\n"), std::string("HTTP/1.x 200 OK\r\n\r\n"),
        std::string("HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n"),
        std::string("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 50\r\n\r\nhello")}) {
    ScriptedServer server(Answers({answer}));
    auto c = Connect(server);
    ASSERT_TRUE(c);
    auto r = c->Exchange(Post(), In(milliseconds(5000)), -1, 1024);
    ASSERT_FALSE(r) << answer.substr(0, 60);
    EXPECT_EQ(r.error().code(), "http.bad_response") << r.error().message();
    EXPECT_NE(r.error().message().find("http://127.0.0.1:"), std::string::npos) << r.error().message();
    EXPECT_EQ(r.error().message().find('\x1b'), std::string::npos) << "a server's escape reached the message";
    EXPECT_FALSE(c->Reusable());
  }
}

TEST(HttpClientTest, BothLengthAndChunkedIsReadChunkedAndTheConnectionDropped) {
  ScriptedServer server(
      Answers({"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
               "2\r\nok\r\n0\r\n\r\n"}));
  auto c = Connect(server);
  ASSERT_TRUE(c);
  auto r = c->Exchange(Post(), In(milliseconds(5000)), -1, 1024);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->body, "ok");
  EXPECT_FALSE(c->Reusable()) << "a smuggling-shaped answer must not leave the connection in use";
}

// "(" is IMAP's list syntax to the stream below, and nothing to HTTP.
TEST(HttpClientTest, ABodyOfParenthesesIsOnlyText) {
  const std::string body(5000, '(');
  ScriptedServer server(Answers({"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n" + body}));
  auto c = Connect(server);
  ASSERT_TRUE(c);
  auto r = c->Exchange(Post(), In(milliseconds(5000)), -1, 8192);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->body, body);
  EXPECT_TRUE(c->Reusable());
}

TEST(HttpClientTest, ATricklingServerCannotHoldARequestPastItsDeadline) {
  ScriptedServer server([](int fd, ScriptedServer& self) {
    if (!self.ReadRequest(fd)) return;
    const std::string answer = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + std::string(100, 'a');
    for (char ch : answer) {
      if (self.stopping()) return;
      ScriptedServer::Send(fd, std::string(1, ch));
      std::this_thread::sleep_for(milliseconds(20));
    }
  });
  auto c = Connect(server);
  ASSERT_TRUE(c);
  const auto started = Clock::now();
  auto r = c->Exchange(Post(), In(milliseconds(300)), -1, 1024);
  const auto took = Clock::now() - started;
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), "http.timeout") << r.error().message();
  EXPECT_GE(took, milliseconds(290));
  EXPECT_LT(took, milliseconds(1500));
}

TEST(HttpClientTest, TheStopFdEndsAWaitAtOnceAndAFiredOneSendsNothing) {
  ScriptedServer server([](int fd, ScriptedServer& self) {
    while (!self.stopping() && self.ReadRequest(fd)) {
    }  // never answers
  });
  auto c = Connect(server);
  ASSERT_TRUE(c);
  const int stop = eventfd(0, EFD_CLOEXEC);
  std::thread stopper([stop] {
    std::this_thread::sleep_for(milliseconds(100));
    const uint64_t one = 1;
    (void)!write(stop, &one, sizeof one);
  });
  const auto started = Clock::now();
  auto r = c->Exchange(Post(), In(milliseconds(10000)), stop, 1024);
  stopper.join();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), "http.stopped") << r.error().message();
  EXPECT_LT(Clock::now() - started, milliseconds(5000));
  const size_t sent = server.received().size();
  auto again = c->Exchange(Post("second"), In(milliseconds(10000)), stop, 1024);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code(), "http.stopped");
  std::this_thread::sleep_for(milliseconds(50));  // a write would have arrived by now
  EXPECT_EQ(server.received().size(), sent);
  auto open = ClientConnection::Open(Origin(server), In(milliseconds(5000)), stop);
  ASSERT_FALSE(open);
  EXPECT_EQ(open.error().code(), "http.stopped");
  close(stop);
}

TEST(HttpClientTest, AHeaderWithALineBreakIsRefusedAndNothingIsSent) {
  ScriptedServer server(Answers({"HTTP/1.1 204 No Content\r\n\r\n"}));
  auto c = Connect(server);
  ASSERT_TRUE(c);
  ClientRequest req = Post();
  req.headers.emplace_back("X-Note", "a\r\nInjected: 1");
  auto r = c->Exchange(req, In(milliseconds(5000)), -1, 1024);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), "http.bad_request");
  EXPECT_EQ(r.error().retry(), util::RetryClass::kNeedsOperator);
  std::this_thread::sleep_for(milliseconds(50));
  EXPECT_EQ(server.received(), "");
}

TEST(HttpClientTest, NoServerIsAConnectError) {
  int port = 0;
  {
    ScriptedServer gone(Answers({}));
    port = gone.port();
  }  // closed: nothing listens there now
  ClientOrigin o;
  o.host = "127.0.0.1";
  o.port = static_cast<uint16_t>(port);
  auto c = ClientConnection::Open(o, In(milliseconds(5000)), -1);
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code(), "http.connect");
  EXPECT_NE(c.error().message().find("Connection refused"), std::string::npos) << c.error().message();
}

}  // namespace
}  // namespace mailhook::http
