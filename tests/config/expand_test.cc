#include "config/expand.h"

#include <map>

#include <gtest/gtest.h>

namespace mailhook::config {
namespace {

Expansion Expand(std::string_view text) {
  static const std::map<std::string, std::string> env = {{"USER", "ann"}, {"EMPTY", ""}, {"PW", "p$a{s}s"}};
  return ExpandEnv(text, [](const std::string& name) -> const char* {
    auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
  });
}

TEST(ExpandEnvTest, ReplacesVariables) {
  auto e = Expand("user=${USER}, host=${HOST:-localhost}");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e.text, "user=ann, host=localhost");
}

TEST(ExpandEnvTest, DefaultAppliesWhenUnsetOrEmpty) {
  EXPECT_EQ(Expand("${EMPTY:-x}").text, "x");
  EXPECT_EQ(Expand("${USER:-x}").text, "ann");
  EXPECT_EQ(Expand("${NOPE:-}").text, "");
  auto empty = Expand("[${EMPTY}]");
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty.text, "[]");
}

TEST(ExpandEnvTest, MissingVariableIsReportedByName) {
  auto e = Expand("${USER} ${IMAP_PASSWORD} ${OTHER}");
  EXPECT_FALSE(e.ok());
  EXPECT_EQ(e.missing, (std::vector<std::string>{"IMAP_PASSWORD", "OTHER"}));
}

TEST(ExpandEnvTest, ValuesAreNotExpandedAgain) {
  auto e = Expand("${PW}");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e.text, "p$a{s}s");
}

TEST(ExpandEnvTest, DollarEscapesAndLoneDollars) {
  EXPECT_EQ(Expand("$${USER}").text, "${USER}");
  EXPECT_EQ(Expand("a$b $ $$ end$").text, "a$b $ $$ end$");
}

TEST(ExpandEnvTest, MalformedReferencesAreErrors) {
  EXPECT_FALSE(Expand("${USER").ok());
  EXPECT_FALSE(Expand("${}").ok());
  EXPECT_FALSE(Expand("${1X}").ok());
  EXPECT_FALSE(Expand("${A-B}").ok());
  EXPECT_EQ(Expand("${USER").malformed.size(), 1u);
}

}  // namespace
}  // namespace mailhook::config
