// `mailhook check` reports every config error with its line and column and
// exits 2; a valid config exits 0.

#include "pipeline_fixture.h"

namespace mailhook::testsupport {
namespace {

class CheckTest : public ::testing::Test {
 protected:
  util::Result<CommandResult> Check(const std::string& yaml) {
    MH_EXPECT_OK(daemon_.WriteConfig(yaml));
    return RunMailhook({"check", "-c", daemon_.config_path()}, seconds(20));
  }
  MailhookProcess daemon_;
};

const char* kBad = R"(state_dir: /tmp/x
accounts:
  - name: support
    host: imap.example.com
    username: u
    pasword: x
    idle_refresh: 30x
    password: ${MAILHOOK_TEST_SURELY_UNSET_VAR}
webhooks:
  - name: w
    url: http://127.0.0.1:1/
)";

TEST_F(CheckTest, EveryErrorHasLineAndColumn) {
  MH_ASSERT_OK_AND_ASSIGN(CommandResult r, Check(kBad));
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  std::string all = r.out + r.err;
  EXPECT_NE(all.find(":6:5:"), std::string::npos) << "unknown key `pasword` at line 6 col 5:\n" << all;
  EXPECT_NE(all.find("pasword"), std::string::npos) << all;
  EXPECT_NE(all.find(":7:"), std::string::npos) << "bad duration at line 7:\n" << all;
  EXPECT_NE(all.find(":8:"), std::string::npos) << "missing env var at line 8:\n" << all;
  EXPECT_NE(all.find("MAILHOOK_TEST_SURELY_UNSET_VAR"), std::string::npos) << all;
}

TEST_F(CheckTest, ValidConfigPasses) {
  MH_ASSERT_OK_AND_ASSIGN(CommandResult r, Check(R"(state_dir: /tmp/x
accounts:
  - name: support
    host: imap.example.com
    username: u
    password: ${MAILHOOK_TEST_SURELY_UNSET_VAR:-fallback}
webhooks:
  - name: w
    url: http://127.0.0.1:1/
)"));
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
}

TEST_F(CheckTest, RunRefusesABadConfigWithExitTwo) {
  MH_ASSERT_OK(daemon_.WriteConfig(kBad));
  MH_ASSERT_OK_AND_ASSIGN(CommandResult r, RunMailhook({"run", "-c", daemon_.config_path()}, seconds(20)));
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
}

}  // namespace
}  // namespace mailhook::testsupport
