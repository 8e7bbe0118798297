#include "delivery/signing.h"

#include <gtest/gtest.h>

#include "delivery/retry_policy.h"
#include "util/base64.h"

namespace mailhook::delivery {
namespace {

using std::chrono::seconds;
using std::chrono::system_clock;

const util::Secret kSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
constexpr const char* kId = "msg_p5jXN8AQM9LWM0D4loKWxJek";
constexpr int64_t kTimestamp = 1614265330;
constexpr const char* kBody = R"({"test": 2432232314})";
constexpr const char* kSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

system_clock::time_point At(int64_t unix_seconds) { return system_clock::time_point(seconds(unix_seconds)); }

TEST(SigningTest, StandardWebhooksTestVector) {
  auto sig = Sign(kSecret, kId, kTimestamp, kBody);
  ASSERT_TRUE(sig.ok()) << sig.error().ToString();
  EXPECT_EQ(*sig, kSignature);
}

TEST(SigningTest, SeveralSecretsGiveSpaceSeparatedSignatures) {
  util::Secret other("whsec_" + util::Base64Encode("another key of some length"));
  auto header = SignatureHeader({kSecret, other}, kId, kTimestamp, kBody);
  ASSERT_TRUE(header.ok());
  EXPECT_EQ(header->rfind(std::string(kSignature) + " v1,", 0), 0u) << *header;
  // A receiver that only knows the second secret still verifies.
  EXPECT_TRUE(Verify({other}, kId, "1614265330", kBody, *header, At(kTimestamp)));
}

TEST(SigningTest, KeysDecodedOnceSignLikeTheSecrets) {
  const util::Secret other("whsec_b2xkLXNlY3JldA==");
  auto a = DecodeSigningKey(kSecret);
  auto b = DecodeSigningKey(other);
  ASSERT_TRUE(a.ok() && b.ok());
  auto from_keys = SignatureHeader(std::vector<SigningKey>{*a, *b}, kId, kTimestamp, kBody);
  auto from_secrets = SignatureHeader({kSecret, other}, kId, kTimestamp, kBody);
  ASSERT_TRUE(from_keys.ok() && from_secrets.ok());
  EXPECT_EQ(*from_keys, *from_secrets);
  EXPECT_EQ(from_keys->substr(0, std::string(kSignature).size()), kSignature);
  EXPECT_FALSE(DecodeSigningKey(util::Secret("whsec_not*base64")).ok());
}

TEST(SigningTest, VerifyAcceptsTheVectorAndRejectsTampering) {
  EXPECT_TRUE(Verify({kSecret}, kId, "1614265330", kBody, kSignature, At(kTimestamp)));
  EXPECT_TRUE(Verify({kSecret}, kId, "1614265330", kBody, std::string("v2,xyz ") + kSignature, At(kTimestamp + 299)));
  EXPECT_FALSE(Verify({kSecret}, kId, "1614265330", R"({"test": 2432232315})", kSignature, At(kTimestamp)));
  EXPECT_FALSE(Verify({kSecret}, "msg_other", "1614265330", kBody, kSignature, At(kTimestamp)));
  EXPECT_FALSE(Verify({kSecret}, kId, "1614265330", kBody, kSignature, At(kTimestamp + 301)));
  EXPECT_FALSE(Verify({kSecret}, kId, "1614265330", kBody, kSignature, At(kTimestamp - 301)));
  EXPECT_FALSE(Verify({kSecret}, kId, "16142653x0", kBody, kSignature, At(kTimestamp)));
  EXPECT_FALSE(Verify({kSecret}, kId, "1614265330", kBody, "", At(kTimestamp)));
}

TEST(SigningTest, MalformedSecretIsAnErrorWithoutTheValue) {
  auto sig = Sign(util::Secret("whsec_not*base64!"), kId, kTimestamp, kBody);
  ASSERT_FALSE(sig.ok());
  EXPECT_EQ(sig.error().message().find("not*base64"), std::string::npos);
  EXPECT_NE(sig.error().message().find("whsec_"), std::string::npos);
}

TEST(RetryPolicyTest, ClassifiesStatusCodes) {
  for (int s : {200, 201, 202, 204, 299}) EXPECT_EQ(ClassifyStatus(s), OutcomeKind::kSuccess) << s;
  for (int s : {408, 429, 500, 502, 503, 504, 599}) {
    EXPECT_EQ(ClassifyStatus(s), OutcomeKind::kRetry) << s;
  }
  for (int s : {301, 302, 307, 400, 401, 403, 404, 410, 413, 422}) {
    EXPECT_EQ(ClassifyStatus(s), OutcomeKind::kPermanent) << s;
  }
}

TEST(RetryPolicyTest, ParsesRetryAfter) {
  auto now = At(784111777 - 60);  // one minute before the RFC's example date
  EXPECT_EQ(ParseRetryAfter("120", now), Duration(120000));
  EXPECT_EQ(ParseRetryAfter(" 0 ", now), Duration(0));
  EXPECT_EQ(ParseRetryAfter("Sun, 06 Nov 1994 08:49:37 GMT", now), Duration(60000));
  EXPECT_EQ(ParseRetryAfter("Sunday, 06-Nov-94 08:49:37 GMT", now), Duration(60000));
  EXPECT_EQ(ParseRetryAfter("Sun Nov  6 08:49:37 1994", now), Duration(60000));
  EXPECT_EQ(ParseRetryAfter("Sun, 06 Nov 1994 08:48:37 GMT", now + seconds(3600)), Duration(0));
  EXPECT_FALSE(ParseRetryAfter("soon", now).has_value());
  EXPECT_FALSE(ParseRetryAfter("12s", now).has_value());
  EXPECT_FALSE(ParseRetryAfter("", now).has_value());
}

TEST(RetryPolicyTest, ScheduleWithJitterThenExhausted) {
  RetryPolicy policy({Duration(1000), Duration(10000)});
  std::mt19937_64 rng(42);
  for (int i = 0; i < 200; ++i) {
    auto w1 = policy.NextWait(1, std::nullopt, rng);
    ASSERT_TRUE(w1.has_value());
    EXPECT_GE(w1->count(), 800);
    EXPECT_LE(w1->count(), 1200);
    auto w2 = policy.NextWait(2, std::nullopt, rng);
    ASSERT_TRUE(w2.has_value());
    EXPECT_GE(w2->count(), 8000);
    EXPECT_LE(w2->count(), 12000);
  }
  EXPECT_FALSE(policy.NextWait(3, std::nullopt, rng).has_value());
  EXPECT_FALSE(policy.NextWait(3, Duration(5000), rng).has_value());
}

TEST(RetryPolicyTest, LongerRetryAfterWinsShorterDoesNot) {
  RetryPolicy policy({Duration(1000)}, 0.0);
  std::mt19937_64 rng(1);
  EXPECT_EQ(policy.NextWait(1, Duration(30000), rng), Duration(30000));
  EXPECT_EQ(policy.NextWait(1, Duration(10), rng), Duration(1000));
  EXPECT_EQ(policy.NextWait(1, Duration(std::chrono::hours(24 * 365)), rng), RetryPolicy::kMaxRetryAfter);
}

}  // namespace
}  // namespace mailhook::delivery
