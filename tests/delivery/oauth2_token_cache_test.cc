// OAuth2TokenCache with a scripted token endpoint and a manual clock: when it
// refreshes, what it shares between threads, and where a rotated refresh
// token goes.
#include "delivery/oauth2_token_cache.h"

#include <sys/stat.h>

#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <sstream>
#include <thread>

#include "log_capture.h"
#include "temp_dir.h"

namespace mailhook::delivery {
namespace {

using namespace std::chrono_literals;

config::Account AccountWith(config::SecretRef refresh) {
  config::Account a;
  a.name = "gmail";
  a.auth = config::AuthMethod::kXoauth2;
  config::OAuth2Refresh o;
  o.token_url = config::HttpUrl::Parse("https://oauth2.example/token").value();
  o.client_id = "c";
  o.refresh_token = std::move(refresh);
  a.oauth2 = std::move(o);
  return a;
}

/// A token endpoint that hands out "at1", "at2"... and records the refresh
/// tokens it was given.
struct Endpoint {
  std::atomic<int> calls{0};
  std::vector<std::string> refresh_tokens;
  std::optional<std::string> rotate;  // sent back as refresh_token
  std::chrono::seconds expires_in{3600};
  bool invalid_grant = false;
  std::optional<util::Error> fail;
  int stop_fd = -2;  // the last request's
  std::mutex mu;

  OAuth2TokenCache::Requester requester() {
    return [this](const TokenRequest& r) -> util::Result<TokenGrant> {
      std::lock_guard lock(mu);
      refresh_tokens.push_back(r.refresh_token.reveal());
      int n = ++calls;
      stop_fd = r.stop_fd;
      if (fail) return *fail;
      if (invalid_grant) return util::Error("oauth2.invalid_grant", util::RetryClass::kNeedsOperator, "revoked");
      TokenGrant g;
      g.access_token = util::Secret("at" + std::to_string(n));
      g.expires_in = expires_in;
      if (rotate) g.refresh_token = util::Secret(*rotate);
      return g;
    };
  }
};

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(OAuth2TokenCacheTest, CachesUntilShortlyBeforeExpiry) {
  Endpoint ep;
  util::ManualClock clock;
  config::Account a = AccountWith(config::SecretRef(util::Secret("rt")));
  OAuth2TokenCache cache(a, ep.requester(), clock);
  EXPECT_EQ(cache.AccessToken()->reveal(), "at1");
  clock.Advance(3600s - 61s);
  EXPECT_EQ(cache.AccessToken()->reveal(), "at1");
  EXPECT_EQ(ep.calls.load(), 1);
  clock.Advance(2s);  // inside the last minute
  EXPECT_EQ(cache.AccessToken()->reveal(), "at2");
  EXPECT_EQ(ep.calls.load(), 2);
  EXPECT_EQ(ep.refresh_tokens, (std::vector<std::string>{"rt", "rt"}));
  EXPECT_EQ(OAuth2TokenCache::RefreshMargin(30s), 15s);
}

TEST(OAuth2TokenCacheTest, RejectRefreshesOncePerRejectedToken) {
  Endpoint ep;
  util::ManualClock clock;
  config::Account a = AccountWith(config::SecretRef(util::Secret("rt")));
  OAuth2TokenCache cache(a, ep.requester(), clock);
  util::Secret first = *cache.AccessToken();
  cache.Reject(first);
  EXPECT_EQ(cache.AccessToken()->reveal(), "at2");
  cache.Reject(first);  // a second connection that also failed with at1
  EXPECT_EQ(cache.AccessToken()->reveal(), "at2");
  EXPECT_EQ(ep.calls.load(), 2);
}

TEST(OAuth2TokenCacheTest, ConnectionsShareOneRefresh) {
  Endpoint ep;
  config::Account a = AccountWith(config::SecretRef(util::Secret("rt")));
  OAuth2TokenCache cache(a, ep.requester());
  std::vector<std::thread> threads;
  std::atomic<int> good{0};
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] {
      auto t = cache.AccessToken();
      if (t.ok() && t->reveal() == "at1") ++good;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(good.load(), 8);
  EXPECT_EQ(ep.calls.load(), 1);
}

TEST(OAuth2TokenCacheTest, RotatedTokenIsWrittenBackToAWritableFile) {
  testsupport::TempDir dir("mh-oauth2-");
  const std::string path = dir.Sub("refresh");
  std::ofstream(path) << "rt-old\n";
  chmod(path.c_str(), 0644);
  Endpoint ep;
  ep.rotate = "rt-new";
  util::ManualClock clock;
  config::Account a = AccountWith(config::SecretRef::File(path));
  OAuth2TokenCache cache(a, ep.requester(), clock);
  ASSERT_TRUE(cache.AccessToken().ok());
  EXPECT_EQ(ReadFile(path), "rt-new\n");
  struct stat st {};
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ep.rotate.reset();
  cache.Reject(util::Secret("at1"));
  ASSERT_TRUE(cache.AccessToken().ok());
  EXPECT_EQ(ep.refresh_tokens, (std::vector<std::string>{"rt-old", "rt-new"}));
}

TEST(OAuth2TokenCacheTest, RotatedInlineTokenIsKeptInMemoryUntilInvalidGrant) {
  Endpoint ep;
  ep.rotate = "rt-new";
  util::ManualClock clock;
  config::Account a = AccountWith(config::SecretRef(util::Secret("rt-config")));
  OAuth2TokenCache cache(a, ep.requester(), clock);
  ASSERT_TRUE(cache.AccessToken().ok());
  cache.Reject(util::Secret("at1"));
  ASSERT_TRUE(cache.AccessToken().ok());
  ep.invalid_grant = true;
  cache.Reject(util::Secret("at2"));
  auto refused = cache.AccessToken();
  ASSERT_FALSE(refused.ok());
  EXPECT_TRUE(refused.error().NeedsOperator());
  clock.Advance(60s);  // the failure's hold
  // The operator's fix is in the configured source: it is read again.
  ep.invalid_grant = false;
  ASSERT_TRUE(cache.AccessToken().ok());
  EXPECT_EQ(ep.refresh_tokens, (std::vector<std::string>{"rt-config", "rt-new", "rt-new", "rt-config"}));
}

// A requester that says a lifetime of seconds::max() (the client cuts it, but
// the cache must not trust it): renew time stays in the future.
TEST(OAuth2TokenCacheTest, AHugeLifetimeDoesNotOverflowTheRenewalTime) {
  Endpoint ep;
  ep.expires_in = std::chrono::seconds::max();
  util::ManualClock clock;
  config::Account a = AccountWith(config::SecretRef(util::Secret("rt")));
  OAuth2TokenCache cache(a, ep.requester(), clock);
  EXPECT_EQ(cache.AccessToken()->reveal(), "at1");
  clock.Advance(23h);
  EXPECT_EQ(cache.AccessToken()->reveal(), "at1");
  EXPECT_EQ(ep.calls.load(), 1);
  clock.Advance(1h);  // a day at most
  EXPECT_EQ(cache.AccessToken()->reveal(), "at2");
}

int CountLines(const std::string& text, const std::string& part) {
  int n = 0;
  for (size_t at = text.find(part); at != std::string::npos; at = text.find(part, at + 1)) ++n;
  return n;
}

// An outage: the first failure is handed to every connection that asks
// before its retry time, without a request of their own.
TEST(OAuth2TokenCacheTest, AFailureIsSharedUntilItsRetryTime) {
  Endpoint ep;
  ep.fail = util::Error("oauth2.token_request", util::RetryClass::kBackoff, "no answer");
  util::ManualClock clock;
  config::Account a = AccountWith(config::SecretRef(util::Secret("rt")));
  OAuth2TokenCache cache(a, ep.requester(), clock);
  ASSERT_FALSE(cache.AccessToken().ok());
  std::vector<std::thread> threads;
  std::atomic<int> failed{0};
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] {
      auto t = cache.AccessToken();
      if (!t.ok() && t.error().code() == "oauth2.token_request") ++failed;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failed.load(), 8);
  EXPECT_EQ(ep.calls.load(), 1);
  clock.Advance(2s);  // the first hold is over: one new request
  ASSERT_FALSE(cache.AccessToken().ok());
  ASSERT_FALSE(cache.AccessToken().ok());
  EXPECT_EQ(ep.calls.load(), 2);
  clock.Advance(2s);  // the second hold is twice as long
  ASSERT_FALSE(cache.AccessToken().ok());
  EXPECT_EQ(ep.calls.load(), 2);
  clock.Advance(2s);
  ep.fail.reset();
  EXPECT_EQ(cache.AccessToken()->reveal(), "at3");
}

// invalid_grant with a worker and IDLE connections: one request, one error line.
TEST(OAuth2TokenCacheTest, InvalidGrantIsOneRequestAndOneOperatorError) {
  testsupport::LogCapture logs({"imap"});
  Endpoint ep;
  ep.invalid_grant = true;
  util::ManualClock clock;
  config::Account a = AccountWith(config::SecretRef(util::Secret("rt")));
  OAuth2TokenCache cache(a, ep.requester(), clock);
  std::vector<std::thread> threads;
  std::atomic<int> refused{0};
  for (int i = 0; i < 5; ++i) {
    threads.emplace_back([&] {
      auto t = cache.AccessToken();
      if (!t.ok() && t.error().code() == "oauth2.invalid_grant") ++refused;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(refused.load(), 5);
  EXPECT_EQ(ep.calls.load(), 1);
  clock.Advance(60s);  // retried after the hold: still refused, not said again
  ASSERT_FALSE(cache.AccessToken().ok());
  EXPECT_EQ(ep.calls.load(), 2);
  const std::string text = logs.Text();
  EXPECT_EQ(CountLines(text, "error oauth2.needs_operator account=gmail code=oauth2.invalid_grant"), 1) << text;
}

// A request ended by the caller's stop is no answer of the endpoint: the next
// caller (a restarted watcher) asks again.
TEST(OAuth2TokenCacheTest, AStoppedRequestIsNotRemembered) {
  Endpoint ep;
  ep.fail = util::Error("oauth2.stopped", util::RetryClass::kBackoff, "stopping");
  util::ManualClock clock;
  config::Account a = AccountWith(config::SecretRef(util::Secret("rt")));
  OAuth2TokenCache cache(a, ep.requester(), clock);
  ASSERT_FALSE(cache.AccessToken(42).ok());
  EXPECT_EQ(ep.stop_fd, 42);  // the caller's stop reaches the request
  ep.fail.reset();
  EXPECT_EQ(cache.AccessToken()->reveal(), "at2");
}

}  // namespace
}  // namespace mailhook::delivery
