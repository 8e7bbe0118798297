// The config's secrets stay in mailhook: a hook (which runs on bytes a
// stranger sent) and a `*_command` secret helper see none of the daemon's
// environment beyond PATH, HOME, LANG, LC_*, TZ, TMPDIR and MAILHOOK_*, only
// their own `env:` and `pass_env:` entries, and no descriptor above stderr.

#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include "pipeline_fixture.h"

namespace mailhook::testsupport {
namespace {

std::string WriteScript(const std::string& path, const std::string& body) {
  std::ofstream(path) << "#!/bin/sh\n" << body;
  chmod(path.c_str(), 0755);
  return path;
}

/// `password: "<literal>"` of AccountYaml, read from the environment instead.
std::string PasswordFromEnv(std::string account_yaml, const std::string& password) {
  std::string literal = "password: " + Quote(password);
  size_t at = account_yaml.find(literal);
  EXPECT_NE(at, std::string::npos) << account_yaml;
  if (at != std::string::npos) account_yaml.replace(at, literal.size(), "password: \"${IMAP_PASSWORD}\"");
  return account_yaml;
}

class HookEnvironmentTest : public PipelineTest {};

TEST_F(HookEnvironmentTest, HookAndSecretHelperSeeNoSecretOfTheDaemon) {
  const std::string imap_password = dovecot_.password("alice");
  const std::string bearer = "bearer-token-only-for-the-webhook";
  ASSERT_GE(imap_password.size(), 6u);
  // As a container would start it: the secrets in mailhook's environment.
  daemon_.SetEnv("IMAP_PASSWORD", imap_password);
  daemon_.SetEnv("WEBHOOK_SECRET", kTestWebhookSecret);
  daemon_.SetEnv("TICKETS_TOKEN", bearer);
  daemon_.SetEnv("MH_TEST_UNRELATED", "not-for-hooks");
  daemon_.SetEnv("MH_TEST_PROXY", "http://proxy.internal:3128");
  daemon_.SetEnv("MAILHOOK_TEST_SETTING", "kept");

  const std::string dir = daemon_.dir();
  std::ofstream(dir + "/ticket_token") << "token-from-file\n";
  // The hook: its open descriptors and its environment, as it sees them.
  // `sh -c`, not a script file (sh keeps a script open on fd 10), and
  // `exec >` (a plain `>` would park stdout on fd 10 while ls runs).
  const std::string hook = "[\"/bin/sh\", \"-c\", " +
                           Quote(
                               "exec > \"$0/hook_fds.txt\"; ls /proc/$$/fd; "
                               "exec > \"$0/hook_env.txt\"; env; true") +
                           ", " + Quote(dir) + "]";
  // A secret helper (value_command) runs at config load, in the daemon.
  std::string helper = WriteScript(dir + "/helper.sh", "env > \"$1/helper_env.txt\"\necho helper-value\n");

  ConfigSpec cfg;
  cfg.state_dir = daemon_.state_dir();
  cfg.accounts.push_back(PasswordFromEnv(AccountYaml(dovecot_, {}), imap_password));
  cfg.webhooks.push_back(
      WebhookYaml({"hook", receiver_.url(), "${WEBHOOK_SECRET}",
                   "headers: {Authorization: \"Bearer ${TICKETS_TOKEN}\", X-Helper: {value_command: [" + Quote(helper) +
                       ", " + Quote(dir) + "]}}"}));
  cfg.hooks.push_back("{name: printenv, command: " + hook +
                      ", env: {TICKET_URL: \"https://helpdesk.example\", TICKET_TOKEN: {file: " +
                      Quote(dir + "/ticket_token") + "}}, pass_env: [MH_TEST_PROXY]}");
  MH_ASSERT_OK(daemon_.WriteConfig(RenderConfig(cfg)));
  MH_ASSERT_OK(daemon_.Start());
  WaitIdle();

  ImapClient imap(dovecot_);
  MH_ASSERT_OK(imap.Append("alice", "INBOX", SampleMessage("plain_utf8.eml")));
  ASSERT_TRUE(daemon_.WaitForLog("delivery.ok hook=printenv", seconds(30))) << daemon_.Log();
  // The secrets from the environment did reach the places they belong.
  ASSERT_TRUE(receiver_.WaitFor(1, seconds(30)));
  EXPECT_EQ(receiver_.Requests()[0].Header("Authorization"), "Bearer " + bearer);
  EXPECT_EQ(receiver_.Requests()[0].Header("X-Helper"), "helper-value");

  const std::string hook_env = "\n" + ReadFile(dir + "/hook_env.txt");
  const std::string helper_env = "\n" + ReadFile(dir + "/helper_env.txt");
  ASSERT_NE(hook_env.find("\nMAILHOOK_EVENT_ID=evt_"), std::string::npos) << hook_env;
  ASSERT_NE(helper_env.find("\nPATH="), std::string::npos) << helper_env;
  for (const std::string& secret :
       {imap_password, std::string(kTestWebhookSecret), bearer, std::string("not-for-hooks")}) {
    EXPECT_EQ(hook_env.find(secret), std::string::npos) << "hook sees " << secret << ":" << hook_env;
    EXPECT_EQ(helper_env.find(secret), std::string::npos) << "helper sees " << secret << ":" << helper_env;
  }
  // What the hook should see: its env: (a file's value too), its pass_env:,
  // and the base set.
  for (const char* line : {"\nTICKET_URL=https://helpdesk.example\n", "\nTICKET_TOKEN=token-from-file\n",
                           "\nMH_TEST_PROXY=http://proxy.internal:3128\n", "\nMAILHOOK_TEST_SETTING=kept\n",
                           "\nMAILHOOK_ACCOUNT=test\n"}) {
    EXPECT_NE(hook_env.find(line), std::string::npos) << line << " missing:" << hook_env;
  }
  EXPECT_EQ(helper_env.find("MH_TEST_PROXY"), std::string::npos) << helper_env;
  // No socket, pipe or lock file of the daemon reached the hook.
  EXPECT_EQ(ReadFile(dir + "/hook_fds.txt"), "0\n1\n2\n");
  // Nor did a secret reach the log.
  for (const std::string& secret :
       {imap_password, std::string(kTestWebhookSecret), bearer, std::string("token-from-file")}) {
    EXPECT_EQ(daemon_.Log().find(secret), std::string::npos) << secret;
  }
}

}  // namespace
}  // namespace mailhook::testsupport
