// limits: (CONTRACT.md "Additions"): defaults, the top-level block, and an
// account's overrides of single keys.

#include <gtest/gtest.h>

#include "config/config.h"
#include "test_util.h"

namespace mailhook::config {
namespace {

using testing::Dump;
using testing::HasError;

LoadResult Load(const std::string& yaml) { return LoadConfigFromString(yaml, "config.yml"); }

constexpr const char* kTargets = R"(webhooks:
  - name: tickets
    url: https://tickets.internal/hooks/email
)";

std::string Account(const std::string& name, const std::string& extra = "") {
  return "  - name: " + name + "\n    host: imap.example.com\n    username: u\n    password: p\n" + extra;
}

TEST(LimitsTest, DefaultsAreTheContracts) {
  auto r = Load("accounts:\n" + Account("support") + kTargets);
  ASSERT_TRUE(r.config) << Dump(r);
  const Limits& l = r.config->accounts[0].limits;
  EXPECT_EQ(l.max_parts, 1000u);
  EXPECT_EQ(l.max_text_bytes, 4194304u);
  EXPECT_EQ(l.max_attempts, 3);
}

TEST(LimitsTest, AccountOverridesSingleKeysOfTheTopLevel) {
  auto r = Load("limits: { max_parts: 50, max_attempts: 5 }\naccounts:\n" + Account("a") +
                Account("b", "    limits: { max_attempts: 1, max_text_bytes: 2048 }\n") + kTargets);
  ASSERT_TRUE(r.config) << Dump(r);
  const Limits& a = r.config->accounts[0].limits;
  EXPECT_EQ(a.max_parts, 50u);
  EXPECT_EQ(a.max_attempts, 5);
  EXPECT_EQ(a.max_text_bytes, 4194304u);
  const Limits& b = r.config->accounts[1].limits;
  EXPECT_EQ(b.max_parts, 50u);  // from the top level
  EXPECT_EQ(b.max_attempts, 1);
  EXPECT_EQ(b.max_text_bytes, 2048u);
}

TEST(LimitsTest, BadValuesAreReportedWithTheirPosition) {
  auto r =
      Load("limits:\n  max_parts: 0\n  max_attempts: many\n  max_text_bytez: 1\naccounts:\n" + Account("a") + kTargets);
  EXPECT_TRUE(HasError(r, 2, 14, "\"max_parts\" in limits must be from 1 to 1000000")) << Dump(r);
  EXPECT_TRUE(HasError(r, 3, 17, "\"max_attempts\" in limits must be a whole number, not \"many\"")) << Dump(r);
  EXPECT_TRUE(HasError(r, 4, 3, "did you mean \"max_text_bytes\"")) << Dump(r);
}

}  // namespace
}  // namespace mailhook::config
