#include "config/host_port.h"

#include <gtest/gtest.h>

namespace mailhook::config {
namespace {

TEST(HostPortTest, ParsesNamesAddressesAndBracketedIpv6) {
  auto a = HostPort::Parse("127.0.0.1:8025");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->host(), "127.0.0.1");
  EXPECT_EQ(a->port(), 8025);
  auto v6 = HostPort::Parse("[::1]:0");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->host(), "::1");
  EXPECT_EQ(v6->port(), 0);  // any free port
  EXPECT_EQ(v6->ToString(), "[::1]:0");
  auto name = HostPort::Parse("localhost:65535");
  ASSERT_TRUE(name.ok());
  EXPECT_EQ(name->ToString(), "localhost:65535");
}

TEST(HostPortTest, MalformedIsAnErrorThatQuotesItAndShowsTheForm) {
  for (const char* bad :
       {"8025", "127.0.0.1:", ":8025", "127.0.0.1:99999", "::1:80", "127.0.0.1:8o25", "[::1:80", "[]:80", "a b:80"}) {
    auto r = HostPort::Parse(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().code(), "config.listen");
    EXPECT_NE(r.error().message().find(bad), std::string::npos) << r.error().message();
    EXPECT_NE(r.error().message().find("127.0.0.1:8025"), std::string::npos);
  }
}

}  // namespace
}  // namespace mailhook::config
