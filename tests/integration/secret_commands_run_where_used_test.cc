// Loading the config runs nothing: a *_command secret runs where its value is
// used (IMAP login, the dispatcher building a webhook or hook), so `check`
// without --connect and `deadletters list` never run one. Each command here
// leaves a marker file when it runs.

#include <filesystem>
#include <thread>

#include "pipeline_fixture.h"

namespace mailhook::testsupport {
namespace {

namespace fs = std::filesystem;

class SecretCommandsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto marker = [&](const std::string& name, const std::string& value) {
      return "[\"/bin/sh\", \"-c\", \"touch " + Marker(name) + "; echo " + value + "\"]";
    };
    MH_ASSERT_OK(daemon_.WriteConfig("state_dir: " + daemon_.state_dir() +
                                     "\n"
                                     "accounts:\n"
                                     "  - name: support\n"
                                     "    host: 127.0.0.1\n"
                                     "    port: 1\n"  // refused at once: the password is resolved before connecting
                                     "    tls: none\n"
                                     "    allow_insecure: true\n"
                                     "    username: u\n"
                                     "    password_command: " +
                                     marker("password", "pw") +
                                     "\n"
                                     "webhooks:\n"
                                     "  - name: w\n"
                                     "    url: http://127.0.0.1:1/\n"
                                     "    secret_command: " +
                                     marker("secret", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw") +
                                     "\n"
                                     "    headers:\n"
                                     "      Authorization: { value_command: " +
                                     marker("header", "tok") +
                                     ", prefix: \"Bearer \" }\n"
                                     "hooks:\n"
                                     "  - name: h\n"
                                     "    command: [/bin/true]\n"
                                     "    env:\n"
                                     "      TOKEN: { command: " +
                                     marker("env", "tok") + " }\n"));
  }

  std::string Marker(const std::string& name) const { return daemon_.dir() + "/ran-" + name; }
  bool Ran(const std::string& name) const { return fs::exists(Marker(name)); }
  // Waits for a marker (the daemon runs the commands on its own threads).
  bool WaitForMarker(const std::string& name, milliseconds timeout) const {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!Ran(name)) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(milliseconds(20));
    }
    return true;
  }

  MailhookProcess daemon_;
};

TEST_F(SecretCommandsTest, CheckAndDeadlettersRunNoCommand) {
  MH_ASSERT_OK_AND_ASSIGN(CommandResult check, RunMailhook({"check", "-c", daemon_.config_path()}));
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err;
  MH_ASSERT_OK_AND_ASSIGN(CommandResult list, RunMailhook({"deadletters", "list", "-c", daemon_.config_path()}));
  EXPECT_EQ(list.exit_code, 0) << list.out << list.err;
  for (const char* name : {"password", "secret", "header", "env"}) EXPECT_FALSE(Ran(name)) << name;
}

TEST_F(SecretCommandsTest, CheckConnectResolvesEverySecret) {
  MH_ASSERT_OK_AND_ASSIGN(CommandResult r, RunMailhook({"check", "--connect", "-c", daemon_.config_path()}));
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;  // nothing listens on port 1
  for (const char* name : {"password", "secret", "header", "env"}) EXPECT_TRUE(Ran(name)) << name;
  EXPECT_EQ((r.out + r.err).find("whsec_MfKQ"), std::string::npos) << r.out << r.err;
}

TEST_F(SecretCommandsTest, RunResolvesThemAtStartUpAndLogin) {
  MH_ASSERT_OK(daemon_.Start());
  for (const char* name : {"secret", "header", "env", "password"}) {
    EXPECT_TRUE(WaitForMarker(name, seconds(20))) << name << "\n" << daemon_.Log();
  }
  MH_EXPECT_OK(daemon_.Terminate());
  EXPECT_EQ(daemon_.Log().find("whsec_MfKQ"), std::string::npos);
}

}  // namespace
}  // namespace mailhook::testsupport
