#include "config/http_url.h"

#include <gtest/gtest.h>

namespace mailhook::config {
namespace {

TEST(HttpUrlTest, SplitsSchemeHostPortAndTarget) {
  auto u = HttpUrl::Parse("https://tickets.internal:8443/hooks/email?x=1#frag");
  ASSERT_TRUE(u.ok()) << u.error().message();
  EXPECT_TRUE(u->https());
  EXPECT_EQ(u->host(), "tickets.internal");
  EXPECT_EQ(u->port(), 8443);
  EXPECT_EQ(u->target(), "/hooks/email?x=1");  // the fragment is never sent
  EXPECT_EQ(u->origin(), "https://tickets.internal:8443");
  EXPECT_FALSE(u->is_loopback());

  auto bare = HttpUrl::Parse("http://127.0.0.1");
  ASSERT_TRUE(bare.ok());
  EXPECT_EQ(bare->port(), 80);
  EXPECT_EQ(bare->target(), "/");
  EXPECT_TRUE(bare->is_loopback());
  auto query = HttpUrl::Parse("https://h.example?token=x");
  ASSERT_TRUE(query.ok());
  EXPECT_EQ(query->target(), "/?token=x");
}

TEST(HttpUrlTest, SchemeAndHostInAnyCaseGiveOneOrigin) {
  // HTTP clients (cpp-httplib) read only a lower-case scheme.
  auto u = HttpUrl::Parse("HTTPS://Tickets.Internal/x");
  ASSERT_TRUE(u.ok());
  EXPECT_TRUE(u->https());
  EXPECT_EQ(u->origin(), "https://tickets.internal:443");
}

TEST(HttpUrlTest, Ipv6NeedsBrackets) {
  auto u = HttpUrl::Parse("http://[::1]:8080/h");
  ASSERT_TRUE(u.ok()) << u.error().message();
  EXPECT_EQ(u->host(), "::1");
  EXPECT_EQ(u->origin(), "http://[::1]:8080");
  EXPECT_TRUE(u->is_loopback());
  EXPECT_FALSE(HttpUrl::Parse("http://::1:8080/h").ok());
  EXPECT_FALSE(HttpUrl::Parse("http://[::1/h").ok());
  EXPECT_FALSE(HttpUrl::Parse("http://[nothex]/h").ok());
}

TEST(HttpUrlTest, RefusesUserinfoWithoutEchoingIt) {
  auto u = HttpUrl::Parse("https://user:s3cr3t@host.example/x");
  ASSERT_FALSE(u.ok());
  EXPECT_NE(u.error().message().find("user:password@"), std::string::npos) << u.error().message();
  EXPECT_EQ(u.error().message().find("s3cr3t"), std::string::npos);
}

TEST(HttpUrlTest, RefusesWhatNoRequestCouldBeMadeOf) {
  for (const char* bad :
       {"tickets.internal/x", "ftp://h/x", "https://", "https:///x", "https://:443/x", "https://h:/x", "https://h:0/x",
        "https://h:65536/x", "https://h:8a/x", "https://h/a b", "https://h/x\r\nX-Evil: 1"}) {
    EXPECT_FALSE(HttpUrl::Parse(bad).ok()) << bad;
  }
}

}  // namespace
}  // namespace mailhook::config
