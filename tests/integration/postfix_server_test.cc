// The test Postfix (support/postfix_server.h, scripts/postfix) proved with an
// independent client, Python's smtplib (support/smtp_submit.py), before the
// SMTP target's end-to-end tests rely on it: STARTTLS + AUTH as a Dovecot
// user delivers by LMTP into the recipient's Dovecot INBOX; a wrong password
// is 535 5.7.8; AUTH before STARTTLS is 530 5.7.0 (never offered in the
// clear); the access map and the policy server give 550; the policy server's
// greylisting gives 451 on the first attempt and 250 on the second, and the
// message arrives once. Postfix needs root: skipped with the reason otherwise.

#include <chrono>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "testsupport.h"

namespace mailhook::testsupport {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// What smtp_submit.py printed: where the conversation ended and the reply.
struct Outcome {
  std::string stage;
  int code = 0;
  std::string text;
};

class PostfixServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::string why = PostfixServer::WhyCannotRun(); !why.empty()) GTEST_SKIP() << why;
    MH_ASSERT_OK(dovecot_.Start(PostfixServer::DovecotOptionsFor(dovecot_)));
    PostfixOptions options;
    options.rejected_recipients = {"rejected@example.test"};
    auto started = std::chrono::steady_clock::now();
    MH_ASSERT_OK(postfix_.Start(dovecot_, options));
    std::cerr << "postfix started in "
              << std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - started).count()
              << " ms\n";
  }

  // Submits one message from bob to `to` with smtp_submit.py.
  Outcome Submit(const std::string& to, const std::string& subject, const std::string& password = "secret2",
                 bool starttls = true) {
    std::vector<std::string> argv{
        "python3",    std::string(MAILHOOK_SOURCE_DIR) + "/tests/integration/support/smtp_submit.py",
        "--port",     std::to_string(postfix_.submission_port()),
        "--ca",       postfix_.ca_file(),
        "--user",     "bob",
        "--password", password,
        "--from",     "bob@example.test",
        "--to",       to,
        "--subject",  subject};
    if (!starttls) argv.push_back("--no-starttls");
    auto run = RunCommand(argv, seconds(30));
    Outcome outcome;
    if (!run.ok() || run->exit_code != 0) {
      ADD_FAILURE() << "smtp_submit.py failed: " << (run.ok() ? run->err : run.error().ToString());
      return outcome;
    }
    auto json = nlohmann::json::parse(run->out, nullptr, false);
    if (json.is_discarded()) {
      ADD_FAILURE() << "smtp_submit.py printed no JSON: " << run->out;
      return outcome;
    }
    outcome.stage = json.value("stage", "");
    outcome.code = json.value("code", 0);
    outcome.text = json.value("text", "");
    return outcome;
  }

  static std::function<bool(const std::string&)> WithSubject(const std::string& subject) {
    return [subject](const std::string& m) { return m.find("\r\nSubject: " + subject + "\r\n") != std::string::npos; };
  }

  DovecotServer dovecot_;
  PostfixServer postfix_;
};

TEST_F(PostfixServerTest, StartTlsAndAuthDeliverIntoTheRecipientsInbox) {
  auto sent = std::chrono::steady_clock::now();
  Outcome o = Submit("alice@example.test", "harness delivery");
  ASSERT_EQ(o.stage, "sent") << o.code << " " << o.text;
  ImapClient imap(dovecot_);
  MH_ASSERT_OK_AND_ASSIGN(std::string message,
                          imap.WaitForMessage("alice", "INBOX", WithSubject("harness delivery"), seconds(10)));
  std::cerr << "submission to INBOX: "
            << std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - sent).count() << " ms\n";
  EXPECT_NE(message.find("\r\nFrom: bob@example.test\r\n"), std::string::npos) << message;
  // Postfix's own trace: received by the submission service, delivered by LMTP.
  EXPECT_NE(message.find("by mailhook.test (Postfix) with ESMTPSA"), std::string::npos) << message;
  // Nothing added that the client did not send (smtp_submit.py sends no
  // Message-ID or Date): a message builder's omissions show.
  EXPECT_EQ(message.find("\r\nMessage-ID:"), std::string::npos) << message;
  EXPECT_EQ(message.find("\r\nDate:"), std::string::npos) << message;
  EXPECT_TRUE(postfix_.WaitForLog("status=sent (250 2.0.0 <alice@example.test>", seconds(5)));
  EXPECT_EQ(postfix_.policy_requests(), 1);
}

TEST_F(PostfixServerTest, WrongPasswordIs535) {
  Outcome o = Submit("alice@example.test", "never sent", "not-the-password");
  EXPECT_EQ(o.stage, "auth");
  EXPECT_EQ(o.code, 535);
  EXPECT_EQ(o.text.rfind("5.7.8 ", 0), 0u) << o.text;
}

TEST_F(PostfixServerTest, AuthBeforeStartTlsIsRefused) {
  // smtp_submit.py sends AUTH PLAIN anyway when the extension is not offered.
  Outcome o = Submit("alice@example.test", "never sent", "secret2", /*starttls=*/false);
  EXPECT_EQ(o.stage, "auth");
  EXPECT_EQ(o.code, 530);
  EXPECT_EQ(o.text, "5.7.0 Must issue a STARTTLS command first");
}

TEST_F(PostfixServerTest, RejectedRecipientsGet550) {
  // Postfix's own access map (fixed at start): the policy server is not asked.
  Outcome o = Submit("rejected@example.test", "never sent");
  EXPECT_EQ(o.stage, "rcpt");
  EXPECT_EQ(o.code, 550);
  EXPECT_NE(o.text.find("5.1.1 <rejected@example.test>"), std::string::npos) << o.text;
  EXPECT_EQ(postfix_.policy_requests(), 0);

  // The policy server, set at run time.
  postfix_.RejectRecipient("alice@example.test");
  o = Submit("alice@example.test", "never sent");
  EXPECT_EQ(o.stage, "rcpt");
  EXPECT_EQ(o.code, 550);
  EXPECT_NE(o.text.find("5.1.1"), std::string::npos) << o.text;
  EXPECT_EQ(postfix_.policy_requests(), 1);

  // An address of the test domain with no mailbox.
  o = Submit("carol@example.test", "never sent");
  EXPECT_EQ(o.code, 550);
  EXPECT_NE(o.text.find("5.1.1"), std::string::npos) << o.text;
}

TEST_F(PostfixServerTest, FirstAttemptIs451AndTheSecondIsDeliveredOnce) {
  postfix_.DeferFirstAttemptFor("alice@example.test");
  Outcome first = Submit("alice@example.test", "greylisted");
  EXPECT_EQ(first.stage, "rcpt");
  EXPECT_EQ(first.code, 451);
  EXPECT_EQ(first.text.rfind("4.7.1 ", 0), 0u) << first.text;
  EXPECT_EQ(postfix_.policy().deferred(), 1);
  EXPECT_EQ(postfix_.policy().requests_for("alice@example.test"), 1);

  Outcome second = Submit("alice@example.test", "greylisted");
  ASSERT_EQ(second.stage, "sent") << second.code << " " << second.text;
  EXPECT_EQ(postfix_.policy().requests_for("alice@example.test"), 2);
  ImapClient imap(dovecot_);
  MH_ASSERT_OK(imap.WaitForMessage("alice", "INBOX", WithSubject("greylisted"), seconds(10)));
  // The queue is empty once the one delivery is logged: nothing else can arrive.
  ASSERT_TRUE(postfix_.WaitForLog(": removed", seconds(5)));
  MH_ASSERT_OK_AND_ASSIGN(auto found, imap.FindMessages("alice", "INBOX", WithSubject("greylisted")));
  EXPECT_EQ(found.size(), 1u);
}

TEST_F(PostfixServerTest, A451AfterTheWholeMessageIsNotDelivered) {
  postfix_.DeferFirstAttemptFor("alice@example.test", "451 4.7.1 try again later", PolicyStage::kEndOfData);
  Outcome first = Submit("alice@example.test", "deferred after data");
  EXPECT_EQ(first.stage, "data");
  EXPECT_EQ(first.code, 451);
  EXPECT_EQ(postfix_.policy().requests_for("alice@example.test", PolicyStage::kEndOfData), 1);
  EXPECT_EQ(postfix_.policy().deferred(), 1);

  Outcome second = Submit("alice@example.test", "deferred after data");
  ASSERT_EQ(second.stage, "sent") << second.code << " " << second.text;
  ImapClient imap(dovecot_);
  MH_ASSERT_OK(imap.WaitForMessage("alice", "INBOX", WithSubject("deferred after data"), seconds(10)));
  ASSERT_TRUE(postfix_.WaitForLog(": removed", seconds(5)));
  MH_ASSERT_OK_AND_ASSIGN(auto found, imap.FindMessages("alice", "INBOX", WithSubject("deferred after data")));
  EXPECT_EQ(found.size(), 1u);
}

}  // namespace
}  // namespace mailhook::testsupport
