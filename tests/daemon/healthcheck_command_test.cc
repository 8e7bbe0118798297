// `mailhook healthcheck` against real HTTP servers on loopback: 2xx → 0,
// 503 → 1, nothing listening → 1, a server that accepts but never answers → 1
// within the 3 s deadline, and the config's http.listen (wildcards probed on
// loopback, none at all named in the error).

#include "daemon/healthcheck_command.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "../delivery/raw_receiver.h"

namespace mailhook::daemon {
namespace {

using delivery::testing::RawReceiver;
using namespace std::chrono_literals;

RawReceiver::Handler Answer(int status) {
  return [status](int fd, RawReceiver&) {
    RawReceiver::Send(fd,
                      "HTTP/1.1 " + std::to_string(status) + " X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
  };
}

struct Outcome {
  int code;
  std::string out;
  std::string err;
  std::chrono::milliseconds took;
};

Outcome Probe(const std::string& config, const std::string& url) {
  std::ostringstream out, err;
  auto start = std::chrono::steady_clock::now();
  int code = RunHealthcheck(config, url, out, err);
  auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
  return {code, out.str(), err.str(), took};
}

std::string Url(int port, const std::string& path = "/healthz") {
  return "http://127.0.0.1:" + std::to_string(port) + path;
}

TEST(HealthcheckCommandTest, TwoHundredIsHealthy) {
  RawReceiver server(Answer(200));
  Outcome r = Probe("", Url(server.port()));
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(server.requests(), 1);
  EXPECT_NE(server.last_headers().find("GET /healthz HTTP/1.0"), std::string::npos) << server.last_headers();
  EXPECT_NE(r.out.find("answered 200"), std::string::npos) << r.out;
}

TEST(HealthcheckCommandTest, UrlWithoutPathProbesHealthz) {
  RawReceiver server(Answer(204));
  EXPECT_EQ(Probe("", Url(server.port(), "")).code, 0);
  EXPECT_NE(server.last_headers().find("GET /healthz "), std::string::npos) << server.last_headers();
}

TEST(HealthcheckCommandTest, ServiceUnavailableIsUnhealthy) {
  RawReceiver server(Answer(503));
  Outcome r = Probe("", Url(server.port()));
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("answered 503"), std::string::npos) << r.err;
}

TEST(HealthcheckCommandTest, NothingListeningIsUnhealthy) {
  // A bound socket that does not listen: the port is ours and connecting is refused.
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  Outcome r = Probe("", Url(ntohs(addr.sin_port)));
  close(fd);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("Connection refused"), std::string::npos) << r.err;
  EXPECT_LT(r.took, 1000ms);
}

TEST(HealthcheckCommandTest, SilentServerFailsWithinTheDeadline) {
  // Accepts and reads the request, then says nothing until the test ends.
  RawReceiver server([](int, RawReceiver& self) {
    while (!self.stopping()) std::this_thread::sleep_for(10ms);
  });
  Outcome r = Probe("", Url(server.port()));
  EXPECT_EQ(r.code, 1);
  // The request reached the server (so the wait was for the answer, not the
  // connection) and the command gave up at its 3 s deadline, not later.
  EXPECT_EQ(server.requests(), 1);
  EXPECT_NE(r.err.find("no answer"), std::string::npos) << r.err;
  EXPECT_GE(r.took, kHealthcheckDeadline - 50ms);
  EXPECT_LT(r.took, kHealthcheckDeadline + 1000ms);
}

TEST(HealthcheckCommandTest, HttpsUrlIsRefused) {
  Outcome r = Probe("", "https://127.0.0.1:8025/healthz");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("http://"), std::string::npos) << r.err;
}

class HealthcheckConfigTest : public ::testing::Test {
 protected:
  std::string Write(const std::string& http) {
    dir_ = std::filesystem::temp_directory_path() / ("healthcheck_test_" + std::to_string(getpid()) + "_" +
                                                     ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
    std::string path = (dir_ / "mailhook.yml").string();
    std::ofstream(path) << "state_dir: " << (dir_ / "state").string() << "\n"
                        << http
                        << "accounts:\n  - name: a\n    host: imap.example.com\n    username: u\n    password: p\n"
                           "webhooks:\n  - name: t\n    url: https://tickets.internal/x\n";
    return path;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
};

TEST_F(HealthcheckConfigTest, WildcardListenIsProbedOnLoopback) {
  RawReceiver server(Answer(200));
  std::string path = Write("http: { listen: \"0.0.0.0:" + std::to_string(server.port()) + "\" }\n");
  Outcome r = Probe(path, "");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(server.requests(), 1);
}

TEST_F(HealthcheckConfigTest, WildcardsMapToTheirLoopbackAddress) {
  EXPECT_EQ(HealthTargetFor(config::HostPort("::", 8025)).ToString(), "http://[::1]:8025/healthz");
  EXPECT_EQ(HealthTargetFor(config::HostPort("0.0.0.0", 9)).ToString(), "http://127.0.0.1:9/healthz");
  EXPECT_EQ(HealthTargetFor(config::HostPort("10.1.2.3", 9)).ToString(), "http://10.1.2.3:9/healthz");
}

// The probe runs every few seconds: it reads http.listen only, never a secret,
// and a config whose other parts are broken (a secret file missing while it
// is rotated) does not make a running daemon unhealthy.
TEST_F(HealthcheckConfigTest, ReadsOnlyHttpListenNotTheSecrets) {
  RawReceiver server(Answer(200));
  std::string path = Write("http: { listen: \"127.0.0.1:${MH_HEALTH_PORT}\" }\n");
  std::ofstream(path, std::ios::app) << "    secret_file: /nonexistent/webhook_secret\n";
  ::setenv("MH_HEALTH_PORT", std::to_string(server.port()).c_str(), 1);
  Outcome r = Probe(path, "");
  ::unsetenv("MH_HEALTH_PORT");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(server.requests(), 1);
}

TEST_F(HealthcheckConfigTest, NoListenSaysHowToAddOne) {
  Outcome r = Probe(Write(""), "");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("has no http.listen"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("listen: \"0.0.0.0:8025\""), std::string::npos) << r.err;
}

TEST_F(HealthcheckConfigTest, InvalidConfigIsNamed) {
  Outcome r = Probe(Write("http: { listen: \"8025\" }\n"), "");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("mailhook check -c"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace mailhook::daemon
