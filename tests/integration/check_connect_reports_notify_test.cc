// `mailhook check --connect` says per folder whether the server offers IDLE
// and NOTIFY (RFC 5465), so a user sees which way an account will be watched:
// one connection for all folders (notify=yes) or one per folder plus polling.

#include "pipeline_fixture.h"

namespace mailhook::testsupport {
namespace {

class CheckConnectNotifyTest : public ::testing::TestWithParam<bool> {};

TEST_P(CheckConnectNotifyTest, PrintsWhetherTheServerOffersNotify) {
  const bool notify = GetParam();
  DovecotServer server;
  DovecotOptions options;
  options.notify = notify;
  MH_ASSERT_OK(server.Start(options));
  MailhookProcess daemon;
  ConfigSpec spec;
  spec.state_dir = daemon.state_dir();
  spec.accounts = {AccountYaml(server, AccountSpec{})};
  WebhookSpec hook;
  hook.url = "http://127.0.0.1:1/";  // never called: check delivers nothing
  spec.webhooks = {WebhookYaml(hook)};
  MH_ASSERT_OK(daemon.WriteConfig(RenderConfig(spec)));
  MH_ASSERT_OK_AND_ASSIGN(CommandResult r, RunMailhook({"check", "--connect", "-c", daemon.config_path()}));
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("ok   test/INBOX"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(" idle=yes"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(notify ? " notify=yes" : " notify=no"), std::string::npos) << r.out;
}

INSTANTIATE_TEST_SUITE_P(NotifyOnAndOff, CheckConnectNotifyTest, ::testing::Bool());

}  // namespace
}  // namespace mailhook::testsupport
