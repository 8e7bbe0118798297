#include "delivery/sink.h"

#include <httplib.h>

#include <sstream>

#include <gtest/gtest.h>

#include "delivery/signing.h"

namespace mailhook::delivery {
namespace {

const util::Secret kSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");

httplib::Headers Signed(const std::string& id, const std::string& body,
                        const util::Secret& secret = kSecret) {
  int64_t ts = std::chrono::duration_cast<std::chrono::seconds>(
                   std::chrono::system_clock::now().time_since_epoch())
                   .count();
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

  util::Secret wrong("whsec_" + Base64Encode("some other key"));
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

}  // namespace
}  // namespace mailhook::delivery
