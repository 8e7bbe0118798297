// /healthz, /readyz and /metrics of a running daemon reflect its real state:
// ready once the folder idles, not ready while the server is down, and the
// contract's metrics counted.

#include <httplib.h>

#include <regex>
#include <thread>

#include "pipeline_fixture.h"

namespace mailhook::testsupport {
namespace {

TEST_F(PipelineTest, EndpointsFollowTheDaemon) {
  StartDaemon({}, "", "http: { listen: \"127.0.0.1:0\" }");
  WaitIdle();
  int port = daemon_.HttpPort();
  ASSERT_GT(port, 0) << daemon_.Log();
  httplib::Client http("127.0.0.1", port);

  auto health = http.Get("/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);

  // /readyz is a polled interface by nature: poll it until it shows `want`.
  auto ready_wait = [&](int want) {
    for (int i = 0; i < 200; ++i) {
      auto r = http.Get("/readyz");
      if (r && r->status == want) return true;
      std::this_thread::sleep_for(milliseconds(100));
    }
    return false;
  };
  EXPECT_TRUE(ready_wait(200)) << daemon_.Log();

  ImapClient imap(dovecot_);
  MH_ASSERT_OK(imap.Append("alice", "INBOX", SampleMessage("plain_utf8.eml")));
  ASSERT_TRUE(receiver_.WaitFor(1, seconds(20))) << daemon_.Log();
  ASSERT_TRUE(daemon_.WaitForLog("delivery.ok", seconds(10))) << daemon_.Log();

  auto metrics = http.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_EQ(metrics->status, 200);
  const std::string& m = metrics->body;
  EXPECT_NE(m.find("mailhook_messages_total{account=\"test\",folder=\"INBOX\"} 1"), std::string::npos) << m;
  EXPECT_NE(m.find("mailhook_deliveries_total{outcome=\"success\",webhook=\"hook\"} 1"), std::string::npos) << m;
  EXPECT_NE(m.find("mailhook_imap_connected{account=\"test\",folder=\"INBOX\"} 1"), std::string::npos) << m;
  EXPECT_NE(m.find("mailhook_delivery_seconds_count"), std::string::npos) << m;
  EXPECT_NE(m.find("mailhook_outbox_pending"), std::string::npos) << m;
  EXPECT_NE(m.find("mailhook_deadletters"), std::string::npos) << m;

  // The server goes away: not ready, naming the folder; still alive.
  MH_ASSERT_OK(dovecot_.Stop());
  EXPECT_TRUE(ready_wait(503)) << daemon_.Log();
  auto not_ready = http.Get("/readyz");
  ASSERT_TRUE(not_ready);
  EXPECT_NE(not_ready->body.find("test/INBOX"), std::string::npos) << not_ready->body;
  auto still_alive = http.Get("/healthz");
  ASSERT_TRUE(still_alive);
  EXPECT_EQ(still_alive->status, 200);
  auto after = http.Get("/metrics");
  ASSERT_TRUE(after);
  EXPECT_NE(after->body.find("mailhook_imap_reconnects_total{account=\"test\",folder=\"INBOX\"}"), std::string::npos)
      << after->body;
}

}  // namespace
}  // namespace mailhook::testsupport
