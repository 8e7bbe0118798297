// `mailhook check --connect` logs in to every smtp target's submission
// server (issue #12) the way a send does, up to AUTH, and sends nothing:
// against a private, real Postfix (STARTTLS + AUTH by Dovecot), a good
// password gives exit 0 and one "ok" line, a wrong one a non-zero exit and
// a line naming bad credentials; the password is never printed.
// Postfix needs root: skipped with the reason otherwise.

#include <chrono>
#include <string>

#include <gtest/gtest.h>

#include "testsupport.h"

namespace mailhook::testsupport {
namespace {

class CheckConnectSmtpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::string why = PostfixServer::WhyCannotRun(); !why.empty()) GTEST_SKIP() << why;
    MH_ASSERT_OK(dovecot_.Start(PostfixServer::DovecotOptionsFor(dovecot_)));
    MH_ASSERT_OK(postfix_.Start(dovecot_));
  }

  // `check --connect` on a config with alice's account and the smtp target `ack`.
  CommandResult Check(const std::string& password) {
    ConfigSpec cfg;
    cfg.state_dir = daemon_.state_dir();
    AccountSpec account;
    account.name = "alice";
    cfg.accounts.push_back(AccountYaml(dovecot_, account));
    cfg.extra = "smtp:\n  - {name: ack, host: " + Quote(postfix_.tls_name()) +
                ", port: " + std::to_string(postfix_.submission_port()) +
                ", tls: starttls, ca_file: " + Quote(postfix_.ca_file()) +
                ", username: alice, password: " + Quote(password) +
                ", from: \"Support <alice@example.test>\", mode: reply, text: \"Thanks\", timeout: 10s}";
    EXPECT_TRUE(daemon_.WriteConfig(RenderConfig(cfg)).ok());
    auto r = RunMailhook({"check", "-c", daemon_.config_path(), "--connect"}, std::chrono::seconds(60));
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().ToString());
    return r.ok() ? *r : CommandResult{};
  }

  DovecotServer dovecot_;
  PostfixServer postfix_;
  MailhookProcess daemon_;  // only its directory and config file: no daemon runs
};

TEST_F(CheckConnectSmtpTest, GoodPasswordLogsInAndSendsNothing) {
  const std::string password = dovecot_.password("alice");
  const CommandResult r = Check(password);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("ok   smtp:ack: " + postfix_.tls_name() + ":" + std::to_string(postfix_.submission_port()) +
                       " tls=starttls AUTH PLAIN accepted"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("ok   alice/INBOX"), std::string::npos) << r.out;
  // EHLO named the host's FQDN, else the address literal of the local end
  // ([127.0.0.1] here), which strict servers accept; never "localhost", nor
  // the from domain (example.test), which is not this host's name.
  const size_t at = r.out.find(" ehlo=");
  ASSERT_NE(at, std::string::npos) << r.out;
  const std::string ehlo = r.out.substr(at + 6, r.out.find(' ', at + 6) - (at + 6));
  EXPECT_TRUE(ehlo == "[127.0.0.1]" || (ehlo.find('.') != std::string::npos && !ehlo.starts_with("localhost"))) << ehlo;
  EXPECT_NE(ehlo, "example.test");
  EXPECT_EQ((r.out + r.err).find(password), std::string::npos) << "the password is never printed";
  // Postfix saw our AUTH succeed, then QUIT, and no message (the policy server answers at RCPT).
  EXPECT_TRUE(postfix_.WaitForLog("auth=1 quit=1", std::chrono::seconds(5))) << postfix_.ReadLog();
  EXPECT_EQ(postfix_.policy_requests(), 0);
  EXPECT_EQ(postfix_.ReadLog().find("status=sent"), std::string::npos) << postfix_.ReadLog();
}

TEST_F(CheckConnectSmtpTest, WrongPasswordFailsNamingBadCredentials) {
  const CommandResult r = Check("not-the-password");
  EXPECT_NE(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("FAIL smtp:ack: "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("bad credentials"), std::string::npos) << r.out;
  EXPECT_EQ((r.out + r.err).find("not-the-password"), std::string::npos) << "the password is never printed";
  EXPECT_TRUE(postfix_.WaitForLog("authentication failed", std::chrono::seconds(5))) << postfix_.ReadLog();
  EXPECT_EQ(postfix_.policy_requests(), 0);
}

}  // namespace
}  // namespace mailhook::testsupport
