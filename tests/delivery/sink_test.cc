#include "delivery/sink.h"

#include <httplib.h>

#include <chrono>
#include <memory>
#include <sstream>
#include <vector>

#include <gtest/gtest.h>

#include "../http/raw_client.h"
#include "delivery/signing.h"
#include "util/base64.h"

namespace mailhook::delivery {
namespace {

const util::Secret kSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");

httplib::Headers Signed(const std::string& id, const std::string& body, const util::Secret& secret = kSecret) {
  int64_t ts =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  return {{"webhook-id", id},
          {"webhook-timestamp", std::to_string(ts)},
          {"webhook-signature", *Sign(secret, id, ts, body)}};
}

TEST(SinkTest, PrintsVerifiedEventsAsCompactLines) {
  std::stringstream out;
  Sink sink(kSecret, out);
  ASSERT_TRUE(sink.Start("127.0.0.1:0").ok());
  ASSERT_GT(sink.port(), 0);
  httplib::Client client("127.0.0.1", sink.port());
  std::string body = "{\n  \"id\": \"evt_1\",\n  \"n\": [1, 2]\n}";
  auto res = client.Post("/any/path", Signed("evt_1", body), body, "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 204);

  util::Secret wrong("whsec_" + util::Base64Encode("some other key"));
  auto bad = client.Post("/", Signed("evt_2", body, wrong), body, "application/json");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 401);
  auto unsigned_res = client.Post("/", body, "application/json");
  ASSERT_TRUE(unsigned_res);
  EXPECT_EQ(unsigned_res->status, 401);
  sink.Stop();
  EXPECT_EQ(out.str(), "{\"id\":\"evt_1\",\"n\":[1,2]}\n");
}

TEST(SinkTest, WithoutSecretAcceptsAnyJsonAndRejectsNonJson) {
  std::stringstream out;
  Sink sink(std::nullopt, out);
  ASSERT_TRUE(sink.Start("127.0.0.1:0").ok());
  httplib::Client client("127.0.0.1", sink.port());
  auto ok = client.Post("/", R"({"a": 1})", "application/json");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 204);
  auto bad = client.Post("/", "not json", "application/json");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);
  sink.Stop();
  EXPECT_EQ(out.str(), "{\"a\":1}\n");
}

TEST(SinkTest, BadListenIsAnError) {
  std::stringstream out;
  Sink sink(std::nullopt, out);
  EXPECT_FALSE(sink.Start("nonsense").ok());
  EXPECT_FALSE(sink.Start("127.0.0.1:99999").ok());
}

using std::chrono::milliseconds;
using std::chrono::seconds;
using testing_http::RawClient;

TEST(SinkTest, StalledSendersDoNotStopOthers) {
  std::stringstream out;
  Sink sink(kSecret, out);
  ASSERT_TRUE(sink.Start("127.0.0.1:0").ok());
  // 20 senders stall: half with half a head, half in the middle of a body.
  std::vector<std::unique_ptr<RawClient>> stalled;
  for (int i = 0; i < 20; ++i) {
    auto c = std::make_unique<RawClient>(sink.port());
    ASSERT_TRUE(c->connected());
    ASSERT_TRUE(c->Send(i % 2 ? "POST / HTTP/1.1\r\nHost: x\r\nwebhook-id: "
                              : "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{\"a\":"));
    stalled.push_back(std::move(c));
  }
  httplib::Client client("127.0.0.1", sink.port());
  client.set_connection_timeout(seconds(3));
  client.set_read_timeout(seconds(3));
  std::string body = R"({"id":"evt_ok"})";
  auto start = std::chrono::steady_clock::now();
  auto res = client.Post("/", Signed("evt_ok", body), body, "application/json");
  ASSERT_TRUE(res) << "a good sender was blocked by stalled ones";
  EXPECT_EQ(res->status, 204);
  EXPECT_LT(std::chrono::steady_clock::now() - start, seconds(3));
  for (auto& c : stalled) EXPECT_TRUE(c->StillWaiting());  // they were stalled meanwhile
  sink.Stop();
  EXPECT_EQ(out.str(), "{\"id\":\"evt_ok\"}\n");
}

TEST(SinkTest, OversizedBodyIs413BeforeItIsRead) {
  std::stringstream out;
  Sink sink(std::nullopt, out);
  ASSERT_TRUE(sink.Start("127.0.0.1:0").ok());
  RawClient c(sink.port());
  // 300 MiB announced, not one byte of it sent.
  ASSERT_TRUE(c.Send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 314572800\r\n\r\n"));
  ASSERT_TRUE(c.ReadUntilClosed(seconds(3))) << c.received();
  EXPECT_EQ(c.Status(), 413) << c.received();
  sink.Stop();
  EXPECT_EQ(out.str(), "");
}

TEST(SinkTest, ChunkedAndCompressedBodiesAreRefusedUnread) {
  std::stringstream out;
  Sink sink(std::nullopt, out);
  ASSERT_TRUE(sink.Start("127.0.0.1:0").ok());
  {
    RawClient c(sink.port());
    ASSERT_TRUE(c.Send("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"));
    ASSERT_TRUE(c.ReadUntilClosed(seconds(3))) << c.received();
    EXPECT_EQ(c.Status(), 411) << c.received();
  }
  {
    RawClient c(sink.port());
    ASSERT_TRUE(
        c.Send("POST / HTTP/1.1\r\nHost: x\r\nContent-Encoding: gzip\r\n"
               "Content-Length: 100000\r\n\r\n"));
    ASSERT_TRUE(c.ReadUntilClosed(seconds(3))) << c.received();
    EXPECT_EQ(c.Status(), 415) << c.received();
  }
  sink.Stop();
  EXPECT_EQ(out.str(), "");
}

TEST(SinkTest, TooManyHeaderFieldsIs431) {
  std::stringstream out;
  Sink sink(std::nullopt, out);
  ASSERT_TRUE(sink.Start("127.0.0.1:0").ok());
  RawClient c(sink.port());
  std::string head = "POST / HTTP/1.1\r\nHost: x\r\n";
  for (int i = 0; i < 500; ++i) head += "a: b\r\n";
  ASSERT_TRUE(c.Send(head + "Content-Length: 2\r\n\r\n{}"));
  ASSERT_TRUE(c.ReadUntilClosed(seconds(3))) << c.received();
  EXPECT_EQ(c.Status(), 431) << c.received();
}

TEST(SinkTest, SlowBodyIsCutAtItsDeadline) {
  std::stringstream out;
  http::ServerLimits limits = Sink::DefaultLimits();
  limits.body_timeout = milliseconds(300);
  Sink sink(std::nullopt, out, limits);
  ASSERT_TRUE(sink.Start("127.0.0.1:0").ok());
  RawClient c(sink.port());
  ASSERT_TRUE(c.Send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"));
  EXPECT_TRUE(c.ReadUntilClosed(seconds(3))) << "a stalled body was kept open";
  EXPECT_EQ(c.Status(), 408) << c.received();
}

TEST(SinkTest, LargeEventIsAccepted) {
  std::stringstream out;
  Sink sink(kSecret, out);
  ASSERT_TRUE(sink.Start("127.0.0.1:0").ok());
  std::string body = R"({"id":"evt_big","data":")" + std::string(8u << 20, 'A') + "\"}";
  httplib::Client client("127.0.0.1", sink.port());
  auto res = client.Post("/", Signed("evt_big", body), body, "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 204);
  sink.Stop();
  EXPECT_EQ(out.str().size(), body.size() + 1);
}

}  // namespace
}  // namespace mailhook::delivery
