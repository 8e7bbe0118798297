// AccountSet keeps an account's OAuth2 token cache across a restart of the
// account (a reload that changed anything in its entry or the top-level
// limits), so an in-memory rotated refresh token survives it.
#include "daemon/account_set.h"

#include <gtest/gtest.h>

#include <mutex>

#include "temp_dir.h"

namespace mailhook::daemon {
namespace {

using delivery::TokenGrant;
using delivery::TokenRequest;

config::Account Gmail() {
  config::Account a;
  a.name = "gmail";
  a.auth = config::AuthMethod::kXoauth2;
  config::OAuth2Refresh o;
  o.token_url = config::HttpUrl::Parse("https://oauth2.example/token").value();
  o.client_id = "c";
  o.refresh_token = config::SecretRef(util::Secret("rt-config"));
  a.oauth2 = std::move(o);
  return a;
}

class AccountSetTest : public ::testing::Test {
 protected:
  /// A token endpoint that rotates the refresh token on every grant.
  delivery::OAuth2TokenCache::Requester Endpoint() {
    return [this](const TokenRequest& r) -> util::Result<TokenGrant> {
      std::lock_guard lock(mu_);
      sent_.push_back(r.refresh_token.reveal());
      TokenGrant g;
      g.access_token = util::Secret("at" + std::to_string(sent_.size()));
      g.expires_in = std::chrono::seconds(3600);
      g.refresh_token = util::Secret("rt-rotated" + std::to_string(sent_.size()));
      return g;
    };
  }

  testsupport::TempDir dir_{"mh-accountset-"};
  util::MetricsCatalog metrics_;
  StorePool stores_{store::SqliteStoreOpener(dir_.path()), 1};
  RouteTable routes_{std::make_shared<config::Config>()};
  std::mutex mu_;
  std::vector<std::string> sent_;
};

TEST_F(AccountSetTest, ARestartKeepsTheRotatedRefreshToken) {
  AccountSet set(
      metrics_, stores_, [] {}, routes_);
  set.set_token_requester(Endpoint());
  const config::Account before = Gmail();
  auto first = set.TokenCacheFor(before);
  ASSERT_TRUE(first->AccessToken().ok());  // rotated: rt-rotated1, in memory only (inline source)
  // The reloaded entry: another folder, the same oauth2 block, a new config.
  config::Account after = Gmail();
  after.folders.emplace_back();
  auto second = set.TokenCacheFor(after);
  EXPECT_EQ(second, first);
  second->Reject(util::Secret("at1"));
  ASSERT_TRUE(second->AccessToken().ok());
  EXPECT_EQ(sent_, (std::vector<std::string>{"rt-config", "rt-rotated1"}));
}

TEST_F(AccountSetTest, AChangedOAuth2BlockGetsAFreshCache) {
  AccountSet set(
      metrics_, stores_, [] {}, routes_);
  set.set_token_requester(Endpoint());
  auto first = set.TokenCacheFor(Gmail());
  ASSERT_TRUE(first->AccessToken().ok());
  config::Account changed = Gmail();
  changed.oauth2->refresh_token = config::SecretRef(util::Secret("rt-new-consent"));
  auto second = set.TokenCacheFor(changed);
  EXPECT_NE(second, first);
  ASSERT_TRUE(second->AccessToken().ok());
  EXPECT_EQ(sent_, (std::vector<std::string>{"rt-config", "rt-new-consent"}));
  config::Account plain = Gmail();
  plain.oauth2.reset();
  EXPECT_EQ(set.TokenCacheFor(plain), nullptr);
}

}  // namespace
}  // namespace mailhook::daemon
