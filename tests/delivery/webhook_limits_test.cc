// A hostile or broken receiver cannot make one delivery attempt cost unbounded
// memory or time, nor get a secret of ours into the dead letters or the log.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>

#include <gtest/gtest.h>

#include "delivery/webhook_target.h"
#include "gzip_bomb.h"
#include "raw_receiver.h"

namespace mailhook::delivery {
namespace {

const util::CancelToken& Never() { return util::CancelToken::Never(); }

using testsupport::GzipBomb;

using namespace std::chrono_literals;
using testing::RawReceiver;
using Steady = std::chrono::steady_clock;

constexpr size_t kMiB = 1024 * 1024;
constexpr size_t kBombBytes = 200 * kMiB;   // what the hostile bodies would cost if read whole
constexpr size_t kMemoryBound = 32 * kMiB;  // what one attempt may add to the peak RSS

store::Delivery Row() {
  store::Delivery d;
  d.item.event_id = "evt_limits";
  d.item.target = "webhook:hostile";
  d.item.payload = R"({"id":"evt_limits"})";
  return d;
}

config::Webhook Hook(const std::string& url, config::Duration timeout = 5s) {
  config::Webhook w;
  w.name = "hostile";
  w.url = config::HttpUrl::Parse(url).value();
  w.timeout = timeout;
  w.secrets = {util::Secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")};
  w.headers = {{"Authorization", util::Secret("Bearer t0ken-secret-value")}};
  return w;
}

std::unique_ptr<WebhookTarget> Make(const config::Webhook& w) {
  auto t = WebhookTarget::Create(w, "1");
  EXPECT_TRUE(t.ok()) << t.error().ToString();
  return t.ok() ? std::move(t).value() : nullptr;
}

/// Delivers once and returns the outcome and how much the peak RSS grew.
std::pair<Outcome, size_t> DeliverMeasured(WebhookTarget& target) {
  EXPECT_TRUE(testing::ResetPeakMemory());
  size_t before = testing::MemoryUse().first;
  Outcome out = target.Deliver(Row(), Never());
  size_t peak = testing::MemoryUse().second;
  return {out, peak > before ? peak - before : 0};
}

TEST(WebhookLimitsTest, HugeResponseBodyIsReadOnlyUpToTheCap) {
  RawReceiver receiver([](int fd, RawReceiver& self) {
    std::string head = "HTTP/1.1 500 Oops\r\nContent-Length: " + std::to_string(kBombBytes) + "\r\n\r\n";
    if (!RawReceiver::Send(fd, head)) return;
    std::string chunk(64 * 1024, 'A');
    for (size_t sent = 0; sent < kBombBytes && !self.stopping(); sent += chunk.size()) {
      if (!RawReceiver::Send(fd, chunk)) return;  // the client stopped reading and closed
    }
  });
  auto target = Make(Hook(receiver.url()));
  ASSERT_TRUE(target);
  auto [out, growth] = DeliverMeasured(*target);
  EXPECT_EQ(out.kind, OutcomeKind::kRetry);
  EXPECT_EQ(out.http_status, 500);
  EXPECT_NE(out.error.find("HTTP 500: AAAA"), std::string::npos) << out.error;
  EXPECT_LT(out.error.size(), kMaxErrorExcerptChars + 64);
  EXPECT_LT(growth, kMemoryBound) << "peak RSS grew by " << growth / kMiB << " MiB";
  // The pooled connection was dropped (unread bytes): the next attempt works.
  auto again = target->Deliver(Row(), Never());
  EXPECT_EQ(again.http_status, 500);
  EXPECT_EQ(receiver.requests(), 2);
}

TEST(WebhookLimitsTest, GzipBombResponseIsNeverInflated) {
  const std::string bomb = GzipBomb(kBombBytes);
  ASSERT_LT(bomb.size(), kMiB);
  RawReceiver receiver([&bomb](int fd, RawReceiver&) {
    RawReceiver::Send(fd, "HTTP/1.1 503 Busy\r\nContent-Encoding: gzip\r\nContent-Length: " +
                              std::to_string(bomb.size()) + "\r\n\r\n" + bomb);
  });
  auto target = Make(Hook(receiver.url()));
  ASSERT_TRUE(target);
  auto [out, growth] = DeliverMeasured(*target);
  EXPECT_EQ(out.kind, OutcomeKind::kRetry);
  EXPECT_EQ(out.http_status, 503);
  EXPECT_LT(growth, kMemoryBound) << "peak RSS grew by " << growth / kMiB << " MiB";
  for (char c : out.error) EXPECT_TRUE(c >= 0x20 && c < 0x7f) << static_cast<int>(c);
  // We never ask for a compressed response.
  std::string headers = receiver.last_headers();
  for (char& c : headers) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  EXPECT_EQ(headers.find("accept-encoding"), std::string::npos) << headers;
}

/// A receiver that answers `head` and then `trickle` one byte every 200 ms, for
/// at most 8 s (so that a client without a whole-attempt deadline returns too).
RawReceiver::Handler Trickler(std::string head, std::string trickle) {
  return [head, trickle](int fd, RawReceiver& self) {
    if (!RawReceiver::Send(fd, head)) return;
    std::mutex mu;
    std::condition_variable cv;
    auto until = Steady::now() + 8s;
    for (size_t i = 0; Steady::now() < until && !self.stopping(); ++i) {
      if (!RawReceiver::Send(fd, std::string(1, trickle[i % trickle.size()]))) return;
      std::unique_lock lock(mu);
      cv.wait_for(lock, 200ms);  // the pace of the trickle, not a wait for a condition
    }
  };
}

void ExpectEndsAtTheTimeout(RawReceiver& receiver) {
  auto target = Make(Hook(receiver.url(), 1s));
  ASSERT_TRUE(target);
  auto start = Steady::now();
  Outcome out = target->Deliver(Row(), Never());
  auto elapsed = Steady::now() - start;
  EXPECT_EQ(out.kind, OutcomeKind::kRetry);
  EXPECT_FALSE(out.cancelled);
  EXPECT_NE(out.error.find("timed out"), std::string::npos) << out.error;
  EXPECT_GE(elapsed, 900ms);  // the receiver was trickling, not refusing
  EXPECT_LT(elapsed, 2500ms) << std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count();
  EXPECT_EQ(target->InFlightCount(), 0u);
}

TEST(WebhookLimitsTest, ReceiverTricklingHeadersCannotHoldAnAttemptPastItsTimeout) {
  RawReceiver receiver(Trickler("HTTP/1.1 200 OK\r\n", "X-Slow: zzzzzzzzzz\r\n"));
  ExpectEndsAtTheTimeout(receiver);
}

TEST(WebhookLimitsTest, ReceiverTricklingTheBodyCannotHoldAnAttemptPastItsTimeout) {
  RawReceiver receiver(Trickler("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", "z"));
  ExpectEndsAtTheTimeout(receiver);
}

TEST(WebhookLimitsTest, EchoedSecretsAreRedactedFromTheErrorExcerpt) {
  // The receiver echoes our request headers back in its error body, as some
  // frameworks' debug pages do.
  RawReceiver receiver([](int fd, RawReceiver& self) {
    // The two headers first, so that they fall inside the excerpt.
    std::string body = "bad request\x1b[31m\n", rest;
    std::string headers = self.last_headers() + "\r\n";
    for (size_t at = 0, end; (end = headers.find("\r\n", at)) != std::string::npos; at = end + 2) {
      std::string line = headers.substr(at, end - at) + "\n";
      std::string lower = line;
      for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      bool echo = lower.starts_with("authorization:") || lower.starts_with("webhook-signature:");
      (echo ? body : rest) += line;
    }
    body += rest;
    RawReceiver::Send(fd,
                      "HTTP/1.1 400 Bad Request\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
  });
  auto target = Make(Hook(receiver.url()));
  ASSERT_TRUE(target);
  Outcome out = target->Deliver(Row(), Never());
  EXPECT_EQ(out.kind, OutcomeKind::kPermanent);
  EXPECT_EQ(out.error.find("t0ken-secret-value"), std::string::npos) << out.error;
  EXPECT_EQ(out.error.find("v1,"), std::string::npos) << out.error;
  // Both were echoed inside the excerpt, and only their values are gone.
  EXPECT_NE(out.error.find("Authorization: <redacted>"), std::string::npos) << out.error;
  EXPECT_NE(out.error.find("webhook-signature: <redacted>"), std::string::npos) << out.error;
  EXPECT_NE(out.error.find("HTTP 400: bad request"), std::string::npos) << out.error;
  for (char c : out.error) EXPECT_TRUE(c >= 0x20 && c < 0x7f) << static_cast<int>(c);
}

TEST(WebhookLimitsTest, RedactedExcerptIsShortPrintableAndDropsACutSecret) {
  std::vector<std::string> secrets = {"Bearer abcdefghij", "abcdefghij"};
  EXPECT_EQ(RedactedExcerpt("x Bearer abcdefghij y abcdefghij", secrets), "x <redacted> y <redacted>");
  EXPECT_EQ(RedactedExcerpt("a\tb\xc3\xa9", {}), "a b??");
  std::string long_body(1000, 'x');
  EXPECT_EQ(RedactedExcerpt(long_body, {}).size(), kMaxErrorExcerptChars + 3);
  // Cut by the size cap in the middle of a secret: its first bytes go too.
  EXPECT_EQ(RedactedExcerpt("ok Bearer abc", secrets, /*truncated=*/true).find("abc"), std::string::npos);
}

TEST(WebhookLimitsTest, PlainHttpOffTheHostNeedsAllowInsecure) {
  EXPECT_TRUE(config::IsLoopbackHost("127.0.0.1"));
  EXPECT_TRUE(config::IsLoopbackHost("127.8.9.10"));
  EXPECT_TRUE(config::IsLoopbackHost("LocalHost"));
  EXPECT_TRUE(config::IsLoopbackHost("::1"));
  EXPECT_FALSE(config::IsLoopbackHost("128.0.0.1"));
  EXPECT_FALSE(config::IsLoopbackHost("localhost.evil.example"));
  EXPECT_FALSE(config::IsLoopbackHost("receiver"));
  for (const char* ok :
       {"http://127.0.0.1:1/x", "http://localhost/x", "http://[::1]:8080/x", "https://tickets.example/x"}) {
    EXPECT_TRUE(WebhookTarget::Create(Hook(ok), "1").ok()) << ok;
  }
  auto plain = WebhookTarget::Create(Hook("http://tickets.example/x"), "1");
  ASSERT_FALSE(plain.ok());
  EXPECT_NE(plain.error().message().find("allow_insecure: true"), std::string::npos);
  auto hook = Hook("http://tickets.example/x");
  hook.allow_insecure = true;
  EXPECT_TRUE(WebhookTarget::Create(hook, "1").ok());
  auto unverified = Hook("https://tickets.example/x");
  unverified.tls_verify = false;
  EXPECT_FALSE(WebhookTarget::Create(unverified, "1").ok());
}

TEST(WebhookLimitsTest, RequestThatThrowsLeavesNothingInFlight) {
  RawReceiver receiver([](int fd, RawReceiver&) { RawReceiver::Send(fd, "HTTP/1.1 204 No Content\r\n\r\n"); });
  auto target = Make(Hook(receiver.url()));
  ASSERT_TRUE(target);
  target->SetBodyFaultForTest([] { throw std::runtime_error("injected"); });
  Outcome out = target->Deliver(Row(), Never());
  EXPECT_EQ(out.kind, OutcomeKind::kRetry);
  EXPECT_NE(out.error.find("injected"), std::string::npos) << out.error;
  // Nothing stays registered: a later cancel has no freed client to stop
  // (under ASan a stale registration is a heap-use-after-free here).
  EXPECT_EQ(target->InFlightCount(), 0u);
  util::CancelToken stop;
  target->SetBodyFaultForTest([] { throw std::runtime_error("injected, with a token this time"); });
  out = target->Deliver(Row(), stop);
  EXPECT_NE(out.error.find("with a token"), std::string::npos) << out.error;
  EXPECT_EQ(target->InFlightCount(), 0u);
  stop.Cancel();
  target->SetBodyFaultForTest(nullptr);
  EXPECT_EQ(target->Deliver(Row(), Never()).kind, OutcomeKind::kSuccess);
}

TEST(WebhookLimitsTest, TokenThatFiredBeforeTheCallSendsNothing) {
  std::atomic<int> requests{0};
  RawReceiver receiver([&](int fd, RawReceiver&) {
    ++requests;
    RawReceiver::Send(fd, "HTTP/1.1 204 No Content\r\n\r\n");
  });
  auto target = Make(Hook(receiver.url()));
  ASSERT_TRUE(target);
  util::CancelToken stop;
  stop.Cancel();
  Outcome out = target->Deliver(Row(), stop);
  EXPECT_TRUE(out.cancelled);
  EXPECT_EQ(target->InFlightCount(), 0u);
  // The next call with a live token goes through: the receiver counts it alone.
  EXPECT_EQ(target->Deliver(Row(), Never()).kind, OutcomeKind::kSuccess);
  EXPECT_EQ(requests.load(), 1);
}

}  // namespace
}  // namespace mailhook::delivery
