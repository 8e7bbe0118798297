#include "config/check.h"

#include <sstream>

#include <gtest/gtest.h>

namespace mailhook::config {
namespace {

TEST(PrintCheckTest, ValidConfigPrintsASummaryAndReturnsZero) {
  auto r = LoadConfigFromString(R"(accounts:
  - { name: a, host: h, username: u, password: p, folders: [INBOX, Sent] }
  - { name: b, host: h, username: u, password: p }
webhooks: [{ name: w, url: "https://x.example/" }]
hooks: [{ name: h, command: [/bin/true] }]
)",
                                "mailhook.yml");
  std::ostringstream out;
  EXPECT_EQ(PrintCheck(r, out), 0);
  EXPECT_EQ(out.str(), "mailhook.yml: OK: 2 accounts (3 folders), 1 webhook, 1 hook\n");
}

TEST(PrintCheckTest, InvalidConfigPrintsEveryErrorOnItsOwnLineAndReturnsTwo) {
  auto r = LoadConfigFromString("accounts:\n  - { name: a, host: h, username: u, pasword: hunter2 }\nfoo: 1\n",
                                "mailhook.yml");
  std::ostringstream out;
  EXPECT_EQ(PrintCheck(r, out), 2);
  std::string text = out.str();
  size_t lines = std::count(text.begin(), text.end(), '\n');
  EXPECT_EQ(lines, r.errors.size());
  EXPECT_GE(lines, 3u);  // foo, pasword, no password, no targets
  EXPECT_NE(text.find("mailhook.yml:3:1: unknown key \"foo\""), std::string::npos) << text;
  EXPECT_NE(text.find("mailhook.yml:2:"), std::string::npos) << text;
  EXPECT_EQ(text.find("hunter2"), std::string::npos) << text;
}

}  // namespace
}  // namespace mailhook::config
