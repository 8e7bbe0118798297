#include "http/server.h"

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <vector>

#include <gtest/gtest.h>
#include <httplib.h>

#include "raw_client.h"
#include "util/metrics_catalog.h"

namespace mailhook::http {
namespace {

// Listen addresses come parsed (config::HostPort); see host_port_test for the parser.
config::HostPort Addr(const std::string& listen) { return config::HostPort::Parse(listen).value(); }

using std::chrono::milliseconds;
using std::chrono::seconds;
using testing_http::RawClient;
using Clock = std::chrono::steady_clock;

/// GET /healthz with every timeout at `limit`; the status, or 0 when no
/// answer came in time.
int ProbeHealthz(int port, seconds limit, milliseconds* took = nullptr) {
  httplib::Client c("127.0.0.1", port);
  c.set_connection_timeout(limit);
  c.set_read_timeout(limit);
  c.set_write_timeout(limit);
  auto start = Clock::now();
  auto res = c.Get("/healthz");
  if (took) *took = std::chrono::duration_cast<milliseconds>(Clock::now() - start);
  return res ? res->status : 0;
}

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
    server_ = std::make_unique<HealthServer>(
        Addr("127.0.0.1:0"), [this] { return ready_.Get(); }, metrics_);
    auto st = server_->Start();
    ASSERT_TRUE(st.ok()) << st.error().ToString();
    ASSERT_GT(server_->port(), 0);
    client_ = std::make_unique<httplib::Client>("127.0.0.1", server_->port());
  }
  void TearDown() override { server_->Stop(); }

  FakeReadiness ready_;
  util::MetricsCatalog metrics_;  // this test's own: values are exact
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

TEST_F(HealthServerTest, MetricsServesTheGivenCatalog) {
  metrics_.ForFolder("support", "INBOX").messages.Inc(3);
  auto res = client_->Get("/metrics");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->get_header_value("Content-Type").rfind("text/plain; version=0.0.4", 0), 0u);
  EXPECT_EQ(res->body, metrics_.Render());
  EXPECT_NE(res->body.find("# TYPE mailhook_messages_total counter\n"
                           "mailhook_messages_total{account=\"support\",folder=\"INBOX\"} 3\n"),
            std::string::npos)
      << res->body;
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
  util::MetricsCatalog metrics;
  HealthServer s(
      Addr("127.0.0.1:0"), []() -> Readiness { throw std::runtime_error("boom"); }, metrics);
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
  util::MetricsCatalog metrics;
  HealthServer first(
      Addr("127.0.0.1:0"),
      [] {
        return Readiness{true, {}};
      },
      metrics);
  ASSERT_TRUE(first.Start().ok());
  std::string addr = "127.0.0.1:" + std::to_string(first.port());
  HealthServer second(
      Addr(addr),
      [] {
        return Readiness{true, {}};
      },
      metrics);
  auto st = second.Start();
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code(), "http.bind");
  EXPECT_TRUE(st.error().NeedsOperator());
  EXPECT_NE(st.error().message().find(addr), std::string::npos) << st.error().message();
  EXPECT_NE(st.error().message().find("port in use? change http.listen"), std::string::npos) << st.error().message();
  second.Stop();  // harmless after a failed Start
}

TEST(HealthServerStartTest, StopRightAfterStartReturnsAndFreesPort) {
  for (int i = 0; i < 20; ++i) {
    util::MetricsCatalog metrics;
    HealthServer s(
        Addr("127.0.0.1:0"),
        [] {
          return Readiness{true, {}};
        },
        metrics);
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
  util::MetricsCatalog metrics;
  HealthServer s(
      Addr("[127.0.0.1]:0"),
      [] {
        return Readiness{true, {}};
      },
      metrics);
  auto st = s.Start();
  ASSERT_TRUE(st.ok()) << st.error().ToString();
  httplib::Client c("127.0.0.1", s.port());
  auto res = c.Get("/healthz");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
}

TEST_F(HealthServerTest, HealthzAnswersWhileFiftyClientsStallMidRequest) {
  // Each slow client has sent half a request and stops; with a 2-thread pool
  // two of them were enough to make the probe time out.
  std::vector<std::unique_ptr<RawClient>> slow;
  for (int i = 0; i < 50; ++i) {
    slow.push_back(std::make_unique<RawClient>(server_->port()));
    ASSERT_TRUE(slow.back()->connected());
    ASSERT_TRUE(slow.back()->Send("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "));
  }
  milliseconds took{};
  EXPECT_EQ(ProbeHealthz(server_->port(), seconds(3), &took), 200);
  EXPECT_LT(took, seconds(3));
  // The window was hit: every slow client was still waiting on its request
  // (neither answered nor closed) when the probe was answered.
  for (auto& c : slow) EXPECT_TRUE(c->StillWaiting());
}

TEST_F(HealthServerTest, ChunkedPostToMetricsIsRefusedBeforeItsBodyIsRead) {
  RawClient c(server_->port());
  ASSERT_TRUE(c.Send("POST /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n"));
  // Not one chunk sent: the answer must come from the head alone.
  ASSERT_TRUE(c.ReadUntilClosed(seconds(3))) << c.received();
  EXPECT_EQ(c.Status(), 405) << c.received();
  EXPECT_NE(c.received().find("Connection: close"), std::string::npos) << c.received();
}

TEST_F(HealthServerTest, StreamingAHundredMegabyteChunkedBodyIsCutOff) {
  RawClient c(server_->port());
  ASSERT_TRUE(c.Send("POST /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n"));
  std::string chunk = "100000\r\n" + std::string(0x100000, 'x') + "\r\n";
  size_t sent = 0;
  while (sent < 100u << 20 && c.Send(chunk)) sent += chunk.size();
  EXPECT_LT(sent, 100u << 20) << "the server kept reading the body";
  EXPECT_EQ(ProbeHealthz(server_->port(), seconds(3)), 200);
}

TEST_F(HealthServerTest, BodyOnGetIs413AndUnread) {
  for (const char* extra : {"Content-Length: 5\r\n", "Transfer-Encoding: chunked\r\n"}) {
    RawClient c(server_->port());
    ASSERT_TRUE(c.Send(std::string("GET /healthz HTTP/1.1\r\nHost: x\r\n") + extra + "\r\n"));
    ASSERT_TRUE(c.ReadUntilClosed(seconds(3))) << extra << c.received();
    EXPECT_EQ(c.Status(), 413) << extra << c.received();
  }
}

TEST_F(HealthServerTest, TooManyHeaderFieldsIs431) {
  RawClient c(server_->port());
  std::string head = "GET /healthz HTTP/1.1\r\nHost: x\r\n";
  for (int i = 0; i < 200; ++i) head += "a: b\r\n";
  ASSERT_TRUE(c.Send(head + "\r\n"));
  ASSERT_TRUE(c.ReadUntilClosed(seconds(3))) << c.received();
  EXPECT_EQ(c.Status(), 431) << c.received();
  // Counted for operators (logged at debug only: a client must not flood the log).
  // Counted before the answer is written, so exactly once by now.
  EXPECT_EQ(metrics_.HttpRejected("head_too_large").Value(), 1);
}

TEST_F(HealthServerTest, OversizedHeadIs431) {
  RawClient c(server_->port());
  ASSERT_TRUE(c.Send("GET /healthz HTTP/1.1\r\nX: " + std::string(20000, 'a') + "\r\n\r\n"));
  ASSERT_TRUE(c.ReadUntilClosed(seconds(3))) << c.received();
  EXPECT_EQ(c.Status(), 431) << c.received();
}

TEST_F(HealthServerTest, HeadGetsFieldsWithoutBody) {
  RawClient c(server_->port());
  ASSERT_TRUE(c.Send("HEAD /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  ASSERT_TRUE(c.ReadUntilClosed(seconds(3)));
  EXPECT_EQ(c.Status(), 200);
  EXPECT_NE(c.received().find("Content-Length: 2\r\n"), std::string::npos) << c.received();
  EXPECT_EQ(c.received().substr(c.received().size() - 4), "\r\n\r\n") << c.received();
}

TEST_F(HealthServerTest, PipelinedRequestsAreAnsweredInOrder) {
  RawClient c(server_->port());
  ASSERT_TRUE(
      c.Send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
             "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"
             "GET /readyz HTTP/1.0\r\n\r\n"));
  ASSERT_TRUE(c.ReadUntilClosed(seconds(3))) << c.received();  // HTTP/1.0: closed after the last
  const std::string& r = c.received();
  auto first = r.find("HTTP/1.1 200");
  auto second = r.find("HTTP/1.1 404");
  auto third = r.find("HTTP/1.1 503");
  ASSERT_NE(first, std::string::npos) << r;
  ASSERT_NE(second, std::string::npos) << r;
  ASSERT_NE(third, std::string::npos) << r;
  EXPECT_LT(first, second);
  EXPECT_LT(second, third);
}

TEST(HealthServerLimitsTest, TricklingHeadIsCutAtItsTotalDeadline) {
  ServerLimits limits = HealthServer::DefaultLimits();
  limits.head_timeout = milliseconds(300);
  util::MetricsCatalog metrics;
  HealthServer s(
      Addr("127.0.0.1:0"),
      [] {
        return Readiness{true, {}};
      },
      metrics, limits);
  ASSERT_TRUE(s.Start().ok());
  RawClient c(s.port());
  // A byte every 50 ms: a per-read timeout would never fire.
  std::string head = "GET /healthz HTTP/1.1\r\nX-Slow: " + std::string(200, 'a');
  auto start = Clock::now();
  size_t i = 0;
  bool cut = false;
  for (; i < head.size() && !cut; ++i) {
    if (!c.Send(head.substr(i, 1))) break;
    cut = c.ReadUntilClosed(milliseconds(50));
  }
  if (!cut) cut = c.ReadUntilClosed(seconds(2));
  ASSERT_TRUE(cut) << "never closed";
  auto took = Clock::now() - start;
  EXPECT_LT(i, head.size()) << "the whole head went through";
  EXPECT_GE(took, milliseconds(250));
  EXPECT_LT(took, seconds(3));
  EXPECT_EQ(c.Status(), 408) << c.received();
}

TEST(HealthServerLimitsTest, ConnectionCapEvictsTheOldestStalledClient) {
  ServerLimits limits = HealthServer::DefaultLimits();
  limits.max_connections = 4;
  util::MetricsCatalog metrics;
  HealthServer s(
      Addr("127.0.0.1:0"),
      [] {
        return Readiness{true, {}};
      },
      metrics, limits);
  ASSERT_TRUE(s.Start().ok());
  std::vector<std::unique_ptr<RawClient>> stalled;
  for (int i = 0; i < 4; ++i) {
    auto c = std::make_unique<RawClient>(s.port());
    // One full request first proves the server holds this connection (and
    // orders the four), then half a request that never ends.
    ASSERT_TRUE(c->Send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
    ASSERT_TRUE(c->ReadUntil("ok", seconds(3))) << i;
    ASSERT_TRUE(c->Send("GET /healthz HTTP/1.1\r\n"));
    stalled.push_back(std::move(c));
  }
  EXPECT_EQ(ProbeHealthz(s.port(), seconds(3)), 200);
  EXPECT_TRUE(stalled[0]->ReadUntilClosed(seconds(3))) << "the oldest was not evicted";
  for (int i = 1; i < 4; ++i) EXPECT_TRUE(stalled[i]->StillWaiting()) << i;
}

}  // namespace
}  // namespace mailhook::http
