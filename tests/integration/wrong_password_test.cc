// A wrong password gives one clear error line, and mailhook neither exits nor
// retries in a hot loop.

#include <regex>

#include "pipeline_fixture.h"

namespace mailhook::testsupport {
namespace {

size_t Count(const std::string& haystack, const std::string& needle) {
  size_t n = 0;
  for (size_t p = haystack.find(needle); p != std::string::npos; p = haystack.find(needle, p + 1)) ++n;
  return n;
}

TEST_F(PipelineTest, WrongPasswordIsOneClearErrorAndNoHotLoop) {
  AccountSpec account;
  account.extra = "password: not-the-password";
  ConfigSpec cfg;
  cfg.state_dir = daemon_.state_dir();
  std::string yaml = AccountYaml(dovecot_, account);
  // The builder writes the right password first; the later key would be a
  // duplicate, so replace it instead.
  yaml = std::regex_replace(yaml, std::regex(R"(password: "?secret1"?,?\s*)"), "");
  cfg.accounts.push_back(yaml);
  cfg.webhooks.push_back(WebhookYaml({"hook", receiver_.url(), kTestWebhookSecret, ""}));
  MH_ASSERT_OK(daemon_.WriteConfig(RenderConfig(cfg)));
  MH_ASSERT_OK(daemon_.Start());

  ASSERT_TRUE(daemon_.WaitForLog("login failed", seconds(20))) << daemon_.Log();
  // Stay for 10 s, then count: a hot loop would log in dozens of times.
  EXPECT_FALSE(daemon_.WaitForExit(seconds(10)).has_value()) << "must not exit on a bad password";
  std::string log = daemon_.Log();
  EXPECT_EQ(Count(log, "login failed"), 1u) << log;
  EXPECT_NE(log.find("app password"), std::string::npos) << "the error should name the likely fix";
  EXPECT_EQ(log.find("not-the-password"), std::string::npos) << "the password must never be logged";
  std::string dlog = dovecot_.ReadLog();
  EXPECT_LE(Count(dlog, "auth failed") + Count(dlog, "Password mismatch"), 2u) << dlog;
  MH_ASSERT_OK_AND_ASSIGN(int code, daemon_.Terminate());
  EXPECT_EQ(code, 0);
}

}  // namespace
}  // namespace mailhook::testsupport
