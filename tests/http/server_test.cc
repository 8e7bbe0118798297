#include "http/server.h"

#include <atomic>
#include <mutex>

#include <gtest/gtest.h>
#include <httplib.h>

#include "util/metrics.h"

namespace mailhook::http {
namespace {

/// A readiness source the test can flip while the server runs.
class FakeReadiness {
 public:
  Readiness Get() {
    std::lock_guard lock(mu_);
    return r_;
  }
  void Set(Readiness r) {
    std::lock_guard lock(mu_);
    r_ = std::move(r);
  }

 private:
  std::mutex mu_;
  Readiness r_;
};

class HealthServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<HealthServer>("127.0.0.1:0", [this] { return ready_.Get(); });
    auto st = server_->Start();
    ASSERT_TRUE(st.ok()) << st.error().ToString();
    ASSERT_GT(server_->port(), 0);
    client_ = std::make_unique<httplib::Client>("127.0.0.1", server_->port());
  }
  void TearDown() override { server_->Stop(); }

  FakeReadiness ready_;
  std::unique_ptr<HealthServer> server_;
  std::unique_ptr<httplib::Client> client_;
};

TEST_F(HealthServerTest, HealthzIsOk) {
  auto res = client_->Get("/healthz");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->body, "ok");
}

TEST_F(HealthServerTest, ReadyzFollowsReadiness) {
  ready_.Set({false, {"support/INBOX: connecting", "support/Urgent: login failed"}});
  auto res = client_->Get("/readyz");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 503);
  EXPECT_EQ(res->body, "support/INBOX: connecting\nsupport/Urgent: login failed\n");

  ready_.Set({true, {}});
  res = client_->Get("/readyz");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->body, "ready");
}

TEST_F(HealthServerTest, MetricsServesGlobalRegistry) {
  util::Metrics::Global().Describe("http_test_hits_total", "counter", "Test hits.");
  util::Metrics::Global().Inc("http_test_hits_total", {{"path", "x"}}, 3);
  auto res = client_->Get("/metrics");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->get_header_value("Content-Type").rfind("text/plain; version=0.0.4", 0), 0u);
  EXPECT_NE(res->body.find("# TYPE http_test_hits_total counter\n"
                           "http_test_hits_total{path=\"x\"} 3\n"),
            std::string::npos)
      << res->body;
  util::Metrics::Global().Reset();
}

TEST_F(HealthServerTest, UnknownPathIs404) {
  auto res = client_->Get("/nope");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 404);
  res = client_->Post("/nope", "x", "text/plain");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 404);
}

TEST_F(HealthServerTest, OtherMethodIs405WithAllow) {
  for (const char* path : {"/healthz", "/readyz", "/metrics"}) {
    auto res = client_->Post(path, "x", "text/plain");
    ASSERT_TRUE(res) << path;
    EXPECT_EQ(res->status, 405) << path;
    EXPECT_EQ(res->get_header_value("Allow"), "GET, HEAD") << path;
  }
  auto res = client_->Delete("/healthz");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 405);
}

TEST_F(HealthServerTest, ThrowingReadinessIs500AndServerSurvives) {
  HealthServer s("127.0.0.1:0", []() -> Readiness { throw std::runtime_error("boom"); });
  ASSERT_TRUE(s.Start().ok());
  httplib::Client c("127.0.0.1", s.port());
  auto res = c.Get("/readyz");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 500);
  res = c.Get("/healthz");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
}

TEST(HealthServerStartTest, PortInUseNamesAddressAndFix) {
  HealthServer first("127.0.0.1:0", [] { return Readiness{true, {}}; });
  ASSERT_TRUE(first.Start().ok());
  std::string addr = "127.0.0.1:" + std::to_string(first.port());
  HealthServer second(addr, [] { return Readiness{true, {}}; });
  auto st = second.Start();
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code(), "http.bind");
  EXPECT_TRUE(st.error().NeedsOperator());
  EXPECT_NE(st.error().message().find(addr), std::string::npos) << st.error().message();
  EXPECT_NE(st.error().message().find("port in use? change http.listen"), std::string::npos)
      << st.error().message();
  second.Stop();  // harmless after a failed Start
}

TEST(HealthServerStartTest, MalformedListenIsAnError) {
  for (const char* listen : {"8025", "127.0.0.1:", ":8025", "127.0.0.1:99999", "::1:80",
                             "127.0.0.1:8o25"}) {
    HealthServer s(listen, [] { return Readiness{true, {}}; });
    auto st = s.Start();
    ASSERT_FALSE(st.ok()) << listen;
    EXPECT_EQ(st.error().code(), "http.listen_invalid") << listen;
    EXPECT_NE(st.error().message().find(listen), std::string::npos);
  }
}

TEST(HealthServerStartTest, StopRightAfterStartReturnsAndFreesPort) {
  for (int i = 0; i < 20; ++i) {
    HealthServer s("127.0.0.1:0", [] { return Readiness{true, {}}; });
    ASSERT_TRUE(s.Start().ok());
    s.Stop();
    s.Stop();  // idempotent
    httplib::Client c("127.0.0.1", s.port());
    c.set_connection_timeout(1, 0);
    EXPECT_FALSE(c.Get("/healthz")) << "still serving after Stop";
  }
}

TEST(HealthServerStartTest, BracketedHostParses) {
  // The bracket form exists for IPv6 literals ("[::]:8025"); tests stay on
  // 127.0.0.1, which the same parse path accepts.
  HealthServer s("[127.0.0.1]:0", [] { return Readiness{true, {}}; });
  auto st = s.Start();
  ASSERT_TRUE(st.ok()) << st.error().ToString();
  httplib::Client c("127.0.0.1", s.port());
  auto res = c.Get("/healthz");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
}

}  // namespace
}  // namespace mailhook::http
