// Config keys that keep secrets where they belong (issue 7): a hook's own
// environment (env:, pass_env:) and the opt-in that tls_verify: false needs.

#include <gtest/gtest.h>

#include "config/config.h"
#include "test_util.h"

namespace mailhook::config {
namespace {

using testing::Dump;
using testing::HasError;
using testing::Reveal;
using testing::ScopedEnv;
using testing::TempDir;

LoadResult Load(const std::string& yaml) { return LoadConfigFromString(yaml, "config.yml"); }

// Line 1..5: the account; 6..8: the webhook; hooks follow from line 9.
constexpr const char* kBase = R"(accounts:
  - name: support
    host: imap.example.com
    username: support@example.com
    password: hunter2
webhooks:
  - name: tickets
    url: https://tickets.internal/hooks/email
)";

TEST(HookEnvTest, EnvValuesComeInlineFromTheEnvironmentFromFilesAndFromCommands) {
  TempDir dir;
  std::string token_file = dir.Write("ticket_token", "file-token\n");
  ScopedEnv url("MH_TEST_TICKET_URL", "https://helpdesk.example.com");
  auto r = Load(std::string(kBase) + R"(hooks:
  - name: helpdesk
    command: [/bin/cat]
    env:
      TICKET_API_URL: ${MH_TEST_TICKET_URL}
      TICKET_GROUP: Support
      TICKET_API_TOKEN_FILE_VALUE: { file: )" +
                token_file + R"( }
      FROM_COMMAND: { command: [printf, "cmd-token"] }
    pass_env: [HTTPS_PROXY, NO_PROXY]
)");
  ASSERT_TRUE(r.config) << Dump(r);
  const Hook& h = r.config->hooks.at(0);
  ASSERT_EQ(h.env.size(), 4u);
  EXPECT_EQ(h.env[0].first, "TICKET_API_URL");
  EXPECT_EQ(Reveal(h.env[0].second), "https://helpdesk.example.com");
  EXPECT_EQ(Reveal(h.env[1].second), "Support");
  EXPECT_EQ(Reveal(h.env[2].second), "file-token");
  EXPECT_EQ(h.env[3].first, "FROM_COMMAND");
  EXPECT_EQ(Reveal(h.env[3].second), "cmd-token");
  EXPECT_EQ(h.pass_env, (std::vector<std::string>{"HTTPS_PROXY", "NO_PROXY"}));
}

TEST(HookEnvTest, NoEnvAndNoPassEnvByDefault) {
  auto r = Load(std::string(kBase) + "hooks:\n  - name: archive\n    command: [/bin/cat]\n");
  ASSERT_TRUE(r.config) << Dump(r);
  EXPECT_TRUE(r.config->hooks.at(0).env.empty());
  EXPECT_TRUE(r.config->hooks.at(0).pass_env.empty());
}

TEST(HookEnvTest, BadNamesAndValuesAreErrorsWithTheirPosition) {
  auto r = Load(std::string(kBase) + R"(hooks:
  - name: archive
    command: [/bin/cat]
    env:
      1BAD: x
      MAILHOOK_UID: "7"
      NESTED: [a, b]
      BOTH: { file: /x, command: [echo] }
      MISSING_FILE: { file: /nonexistent/mailhook-test-secret }
      TYPO: { path: /x }
    pass_env: [OK_NAME, "bad-name"]
)");
  EXPECT_FALSE(r.config);
  EXPECT_TRUE(HasError(r, 13, 7, "variable name \"1BAD\"")) << Dump(r);
  EXPECT_TRUE(HasError(r, 14, 7, "MAILHOOK_* variables are set by mailhook")) << Dump(r);
  EXPECT_TRUE(HasError(r, 15, 15, "must be a string, { file: PATH } or { command: [argv] }")) << Dump(r);
  EXPECT_TRUE(HasError(r, 16, 13, "exactly one of file: PATH or command: [argv]")) << Dump(r);
  EXPECT_TRUE(HasError(r, 17, 29, "/nonexistent/mailhook-test-secret")) << Dump(r);
  EXPECT_TRUE(HasError(r, 18, 15, "unknown key \"path\"")) << Dump(r);
  EXPECT_TRUE(HasError(r, 19, 25, "variable name \"bad-name\"")) << Dump(r);
}

TEST(HookEnvTest, EnvMustBeAMap) {
  auto r = Load(std::string(kBase) + "hooks:\n  - name: archive\n    command: [/bin/cat]\n    env: [A=b]\n");
  EXPECT_TRUE(HasError(r, 12, 10, "env of hook \"archive\" must be a map")) << Dump(r);
}

TEST(HookEnvTest, ErrorsNeverShowAValue) {
  auto r = Load(std::string(kBase) + R"(hooks:
  - name: archive
    command: [/bin/cat]
    env:
      "BAD NAME": top-secret-value
      GOOD: { command: [sh, -c, "echo top-secret-value; exit 3"] }
)");
  EXPECT_FALSE(r.config);
  EXPECT_EQ(Dump(r).find("top-secret-value"), std::string::npos) << Dump(r);
}

TEST(InsecureTlsTest, AccountTlsVerifyFalseNeedsAllowInsecure) {
  std::string yaml = kBase;
  yaml.insert(yaml.find("    username"), "    tls_verify: false\n");
  auto r = Load(yaml);
  EXPECT_FALSE(r.config);
  EXPECT_TRUE(HasError(r, 4, 17, "tls_verify: false in account \"support\" accepts any certificate")) << Dump(r);
  EXPECT_TRUE(HasError(r, 4, 17, "add allow_insecure: true")) << Dump(r);

  yaml.insert(yaml.find("    username"), "    allow_insecure: true\n");
  r = Load(yaml);
  ASSERT_TRUE(r.config) << Dump(r);
  EXPECT_FALSE(r.config->accounts[0].tls_verify);
}

TEST(InsecureTlsTest, WebhookTlsVerifyFalseNeedsAllowInsecure) {
  std::string yaml = std::string(kBase) + "    tls_verify: false\n";
  auto r = Load(yaml);
  EXPECT_FALSE(r.config);
  EXPECT_TRUE(HasError(r, 9, 17, "tls_verify: false in webhook \"tickets\" accepts any certificate")) << Dump(r);

  r = Load(yaml + "    allow_insecure: true\n");
  ASSERT_TRUE(r.config) << Dump(r);
  EXPECT_FALSE(r.config->webhooks[0].tls_verify);
  EXPECT_TRUE(r.config->webhooks[0].allow_insecure);
}

TEST(InsecureTlsTest, EveryInsecureSettingIsListedForTheStartUpWarning) {
  auto r = Load(std::string(kBase) + "    tls_verify: false\n    allow_insecure: true\n");
  ASSERT_TRUE(r.config) << Dump(r);
  EXPECT_TRUE(InsecureSettings(*r.config).size() == 1) << ::testing::PrintToString(InsecureSettings(*r.config));
  Config c = *r.config;
  c.accounts[0].tls = TlsMode::kNone;
  c.accounts[0].tls_verify = false;
  std::vector<std::string> lines = InsecureSettings(c);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_NE(lines[0].find("account support: tls: none"), std::string::npos) << lines[0];
  EXPECT_NE(lines[1].find("account support: tls_verify: false"), std::string::npos) << lines[1];
  EXPECT_NE(lines[2].find("webhook tickets: tls_verify: false"), std::string::npos) << lines[2];

  r = Load(kBase);
  ASSERT_TRUE(r.config) << Dump(r);
  EXPECT_TRUE(InsecureSettings(*r.config).empty());
}

}  // namespace
}  // namespace mailhook::config
