// The server's certificate must be trusted and name the host: a wrong name or
// an untrusted certificate is refused with an error that says so; ca_file
// makes the test CA trusted.

#include "pipeline_fixture.h"

namespace mailhook::testsupport {
namespace {

class TlsTest : public PipelineTest {
 protected:
  void SetUp() override { MH_ASSERT_OK(receiver_.Start()); }
};

TEST_F(TlsTest, WrongHostNameIsRefused) {
  MH_ASSERT_OK(dovecot_.Start(ServerCert::kWrongName));
  StartDaemon();
  ASSERT_TRUE(daemon_.WaitForLog("TLS certificate verification failed", seconds(20))) << daemon_.Log();
  EXPECT_TRUE(daemon_.WaitForLog("not valid for host", seconds(1))) << daemon_.Log();
  EXPECT_TRUE(daemon_.Running()) << "a TLS failure must not end the daemon";
  EXPECT_EQ(daemon_.Log().find("imap.connected"), std::string::npos);
}

TEST_F(TlsTest, UntrustedCertificateIsRefused) {
  MH_ASSERT_OK(dovecot_.Start(ServerCert::kUntrusted));
  StartDaemon();
  ASSERT_TRUE(daemon_.WaitForLog("TLS certificate verification failed", seconds(20))) << daemon_.Log();
  EXPECT_TRUE(daemon_.WaitForLog("self-signed", seconds(1))) << daemon_.Log();
  EXPECT_EQ(daemon_.Log().find("imap.connected"), std::string::npos);
}

TEST_F(TlsTest, WithoutCaFileTheTestCaIsNotTrusted) {
  MH_ASSERT_OK(dovecot_.Start(ServerCert::kGood));
  AccountSpec account;
  account.extra = "ca_file: null";
  ConfigSpec cfg;
  cfg.state_dir = daemon_.state_dir();
  std::string yaml = AccountYaml(dovecot_, account);
  // Drop the ca_file the builder adds: the system store does not know our CA.
  size_t pos = yaml.find("ca_file:");
  ASSERT_NE(pos, std::string::npos) << yaml;
  size_t end = yaml.find_first_of(",}", pos);
  yaml.erase(pos, end - pos + (yaml[end] == ',' ? 1 : 0));
  pos = yaml.find("ca_file: null");
  if (pos != std::string::npos) yaml.erase(pos, std::string("ca_file: null").size());
  cfg.accounts.push_back(yaml);
  cfg.webhooks.push_back(WebhookYaml({"hook", receiver_.url(), kTestWebhookSecret, ""}));
  std::string rendered = RenderConfig(cfg);
  MH_ASSERT_OK(daemon_.WriteConfig(rendered));
  MH_ASSERT_OK(daemon_.Start());
  ASSERT_TRUE(daemon_.WaitForLog("TLS certificate verification failed", seconds(20))) << rendered << "\n"
                                                                                      << daemon_.Log();
  EXPECT_TRUE(daemon_.WaitForLog("set ca_file", seconds(1))) << daemon_.Log();
}

TEST_F(TlsTest, CaFileMakesTheTestCaTrustedWithStartTlsToo) {
  MH_ASSERT_OK(dovecot_.Start(ServerCert::kGood));
  AccountSpec account;
  account.tls = "starttls";
  StartDaemon(account);
  WaitIdle();
  ImapClient imap(dovecot_);
  MH_ASSERT_OK(imap.Append("alice", "INBOX", SampleMessage("plain_utf8.eml")));
  ASSERT_TRUE(receiver_.WaitFor(1, seconds(20))) << daemon_.Log();
}

}  // namespace
}  // namespace mailhook::testsupport
