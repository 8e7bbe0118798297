// SendMail against a scripted server (tests/support/fake_smtp_server.h) on
// 127.0.0.1: the commands sent, the DATA bytes, TLS, AUTH, and how every
// kind of refusal and failure is classified.
#include "smtp/smtp_client.h"

#include <unistd.h>

#include <chrono>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "fake_smtp_server.h"
#include "log_capture.h"
#include "util/base64.h"

namespace mailhook::smtp {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using testsupport::FakeSmtpScript;
using testsupport::FakeSmtpServer;
using testsupport::TestCertificates;

constexpr const char* kUser = "alice@example.com";
constexpr const char* kSecret = "s3cr3t-Pa55word";
const std::string kMessage = "Subject: hi\r\n\r\n.leading dot\r\nmiddle\r\n..two\r\n";
const std::string kStuffed = "Subject: hi\r\n\r\n..leading dot\r\nmiddle\r\n...two\r\n.\r\n";

SmtpOptions Options(int port, config::TlsMode tls = config::TlsMode::kStartTls, SmtpAuth auth = SmtpAuth::kPlain) {
  SmtpOptions o;
  o.host = "127.0.0.1";
  o.port = static_cast<uint16_t>(port);
  o.tls = tls;
  o.ca_file = TestCertificates::Get().ca_file();
  o.auth = auth;
  o.username = kUser;
  o.secret = util::Secret(kSecret);
  o.timeout = std::chrono::milliseconds(3000);
  o.account_label = "smtp:ack";
  return o;
}

SendOutcome Send(FakeSmtpServer& server, const SmtpOptions& o,
                 const std::vector<std::string>& to = {"bob@example.org"}) {
  SendOutcome out = SendMail(o, "support@example.com", to, kMessage);
  server.Join();
  return out;
}

bool AnyStartsWith(const std::vector<std::string>& lines, const std::string& prefix) {
  for (const std::string& l : lines) {
    if (l.starts_with(prefix)) return true;
  }
  return false;
}

class SmtpClientTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(TestCertificates::Get().ok()) << "openssl could not make the test CA"; }
};

TEST_F(SmtpClientTest, StartTlsAuthPlainSendsTheDotStuffedMessage) {
  FakeSmtpServer server({});
  SendOutcome out = Send(server, Options(server.port()));
  EXPECT_EQ(out.cls, SendClass::kSent) << out.error;
  EXPECT_EQ(out.reply.code, 250);
  EXPECT_EQ(out.reply.enhanced, "2.0.0");
  EXPECT_EQ(out.error, "");
  const std::string plain = util::Base64Encode(std::string(1, '\0') + kUser + '\0' + kSecret);
  EXPECT_THAT(server.commands(), ElementsAre("EHLO [127.0.0.1]", "STARTTLS", "EHLO [127.0.0.1]", "AUTH PLAIN " + plain,
                                             "MAIL FROM:<support@example.com> SIZE=" + std::to_string(kStuffed.size()),
                                             "RCPT TO:<bob@example.org>", "DATA", "QUIT"));
  EXPECT_THAT(server.clear_commands(), ElementsAre("EHLO [127.0.0.1]", "STARTTLS"));
  EXPECT_EQ(server.data(), kStuffed);
  ASSERT_EQ(out.recipients.size(), 1u);
  EXPECT_EQ(out.recipients[0].address, "bob@example.org");
  EXPECT_EQ(out.recipients[0].cls, SendClass::kSent);
}

TEST_F(SmtpClientTest, ImplicitTlsNeverSendsStartTls) {
  FakeSmtpScript script;
  script.implicit_tls = true;
  FakeSmtpServer server(script);
  SendOutcome out = Send(server, Options(server.port(), config::TlsMode::kImplicit));
  EXPECT_EQ(out.cls, SendClass::kSent) << out.error;
  EXPECT_TRUE(server.clear_commands().empty());
  EXPECT_FALSE(AnyStartsWith(server.commands(), "STARTTLS"));
  EXPECT_EQ(server.data(), kStuffed);
}

TEST_F(SmtpClientTest, AuthLoginAnswersBothChallenges) {
  FakeSmtpServer server({});
  SendOutcome out = Send(server, Options(server.port(), config::TlsMode::kStartTls, SmtpAuth::kLogin));
  EXPECT_EQ(out.cls, SendClass::kSent) << out.error;
  const auto cmds = server.commands();
  ASSERT_GE(cmds.size(), 6u);
  EXPECT_EQ(cmds[3], "AUTH LOGIN");
  EXPECT_EQ(cmds[4], util::Base64Encode(kUser));
  EXPECT_EQ(cmds[5], util::Base64Encode(kSecret));
}

TEST_F(SmtpClientTest, Xoauth2SendsTheBearerToken) {
  FakeSmtpServer server({});
  SendOutcome out = Send(server, Options(server.port(), config::TlsMode::kStartTls, SmtpAuth::kXoauth2));
  EXPECT_EQ(out.cls, SendClass::kSent) << out.error;
  EXPECT_EQ(server.commands()[3],
            "AUTH XOAUTH2 " + util::Base64Encode(std::string("user=") + kUser + "\1auth=Bearer " + kSecret + "\1\1"));
}

TEST_F(SmtpClientTest, Xoauth2ErrorChallengeIsAnsweredEmptyAndNeedsOperator) {
  FakeSmtpScript script;
  script.replies = {{"AUTH XOAUTH2", "334 eyJzdGF0dXMiOiI0MDAifQ==\r\n"},
                    {"", "535 5.7.8 Username and Password not accepted\r\n"}};
  FakeSmtpServer server(script);
  SendOutcome out = Send(server, Options(server.port(), config::TlsMode::kStartTls, SmtpAuth::kXoauth2));
  EXPECT_EQ(out.cls, SendClass::kNeedsOperator);
  EXPECT_EQ(out.reply.code, 535);
  EXPECT_THAT(server.commands(), ::testing::Contains(""));
  EXPECT_FALSE(AnyStartsWith(server.commands(), "MAIL"));
}

TEST_F(SmtpClientTest, StartTlsNotOfferedNeedsOperatorAndSendsNoAuthInClear) {
  FakeSmtpScript script;
  script.ehlo = "250-fake.test\r\n250 AUTH PLAIN LOGIN\r\n";
  FakeSmtpServer server(script);
  SendOutcome out = Send(server, Options(server.port()));
  EXPECT_EQ(out.cls, SendClass::kNeedsOperator);
  EXPECT_THAT(out.error, HasSubstr("does not offer STARTTLS"));
  EXPECT_THAT(out.error, HasSubstr("tls: implicit"));
  EXPECT_THAT(server.commands(), ElementsAre("EHLO [127.0.0.1]", "QUIT"));
}

TEST_F(SmtpClientTest, UntrustedCertificateNeedsOperator) {
  FakeSmtpServer server({});
  SmtpOptions o = Options(server.port());
  o.ca_file.reset();  // the system store does not know the test CA
  SendOutcome out = Send(server, o);
  EXPECT_EQ(out.cls, SendClass::kNeedsOperator) << out.error;
  EXPECT_EQ(out.reply.code, 0);
  EXPECT_THAT(out.error, HasSubstr("STARTTLS with 127.0.0.1 failed"));
  EXPECT_FALSE(AnyStartsWith(server.commands(), "AUTH"));
}

TEST_F(SmtpClientTest, AuthMechanismNotOfferedNeedsOperator) {
  FakeSmtpScript script;
  script.ehlo = "250-fake.test\r\n250-STARTTLS\r\n250 AUTH LOGIN\r\n";
  FakeSmtpServer server(script);
  SendOutcome out = Send(server, Options(server.port(), config::TlsMode::kStartTls, SmtpAuth::kXoauth2));
  EXPECT_EQ(out.cls, SendClass::kNeedsOperator);
  EXPECT_THAT(out.error, HasSubstr("does not offer AUTH XOAUTH2 (offered: LOGIN)"));
  EXPECT_FALSE(AnyStartsWith(server.commands(), "AUTH"));
}

TEST_F(SmtpClientTest, Greeting421Retries) {
  FakeSmtpScript script;
  script.greeting = "421 4.3.2 fake.test too busy, try later\r\n";
  FakeSmtpServer server(script);
  SendOutcome out = Send(server, Options(server.port()));
  EXPECT_EQ(out.cls, SendClass::kRetry);
  EXPECT_EQ(out.reply.code, 421);
  EXPECT_THAT(out.error, HasSubstr("too busy"));
}

TEST_F(SmtpClientTest, Greeting554RefusesThisClientNotTheMessage) {
  FakeSmtpScript script;
  script.greeting = "554 5.7.1 fake.test: your address is on a block list\r\n";
  FakeSmtpServer server(script);
  SendOutcome out = Send(server, Options(server.port()));
  EXPECT_EQ(out.cls, SendClass::kNeedsOperator);
  EXPECT_THAT(out.error, HasSubstr("block list"));
}

TEST_F(SmtpClientTest, DataInjectedAfterStartTlsIsRefused) {
  FakeSmtpScript script;
  // A man in the middle appending a clear-text answer to the 220 (CVE-2011-0411).
  script.replies = {{"STARTTLS", "220 2.0.0 Ready\r\n250 2.7.0 injected\r\n"}};
  FakeSmtpServer server(script);
  SendOutcome out = Send(server, Options(server.port()));
  EXPECT_EQ(out.cls, SendClass::kRetry);
  EXPECT_THAT(out.error, HasSubstr("sent data after its answer to STARTTLS"));
  EXPECT_FALSE(AnyStartsWith(server.commands(), "AUTH"));
}

TEST_F(SmtpClientTest, Data451RetriesEveryRecipient) {
  FakeSmtpScript script;
  script.replies = {{"DATA", "451 4.3.0 Error: queue file write error\r\n"}};
  FakeSmtpServer server(script);
  SendOutcome out = Send(server, Options(server.port()));
  EXPECT_EQ(out.cls, SendClass::kRetry);
  EXPECT_EQ(out.reply.code, 451);
  ASSERT_EQ(out.recipients.size(), 1u);
  EXPECT_EQ(out.recipients[0].cls, SendClass::kRetry);
  EXPECT_EQ(server.data(), "");
}

TEST_F(SmtpClientTest, BadCredentialsNeedOperatorAndNameTheFix) {
  FakeSmtpScript script;
  script.replies = {{"AUTH", "535 5.7.8 Error: authentication failed: UGFzc3dvcmQ6\r\n"}};
  FakeSmtpServer server(script);
  SendOutcome out = Send(server, Options(server.port()));
  EXPECT_EQ(out.cls, SendClass::kNeedsOperator);
  EXPECT_EQ(out.reply.code, 535);
  EXPECT_EQ(out.reply.enhanced, "5.7.8");
  EXPECT_THAT(out.error, HasSubstr("app password"));
  EXPECT_THAT(out.error, HasSubstr("auth: xoauth2"));
  EXPECT_FALSE(AnyStartsWith(server.commands(), "MAIL"));
}

// check --connect: the session SendMail opens, then QUIT; no MAIL FROM.
TEST_F(SmtpClientTest, CheckSubmissionLogsInAndQuitsWithoutSending) {
  FakeSmtpServer server(FakeSmtpScript{});
  CheckOutcome out = CheckSubmission(Options(server.port()));
  server.Join();
  EXPECT_EQ(out.cls, SendClass::kSent) << out.error;
  EXPECT_EQ(out.error, "");
  EXPECT_TRUE(out.encrypted);
  EXPECT_EQ(out.helo_name, "[127.0.0.1]");
  EXPECT_THAT(out.auth, ElementsAre("PLAIN", "LOGIN", "XOAUTH2"));
  const std::string plain = util::Base64Encode(std::string(1, '\0') + kUser + '\0' + kSecret);
  EXPECT_THAT(server.commands(),
              ElementsAre("EHLO [127.0.0.1]", "STARTTLS", "EHLO [127.0.0.1]", "AUTH PLAIN " + plain, "QUIT"));
  EXPECT_EQ(server.data(), "");
}

TEST_F(SmtpClientTest, CheckSubmissionWithBadCredentialsNeedsOperatorAndNamesTheFix) {
  FakeSmtpScript script;
  script.replies = {{"AUTH", "535 5.7.8 Error: authentication failed: bad\r\n"}};
  FakeSmtpServer server(script);
  CheckOutcome out = CheckSubmission(Options(server.port()));
  server.Join();
  EXPECT_EQ(out.cls, SendClass::kNeedsOperator);
  EXPECT_THAT(out.error, HasSubstr("refused AUTH PLAIN: 535 5.7.8"));
  EXPECT_THAT(out.error, HasSubstr("bad credentials"));
  EXPECT_THAT(out.error, Not(HasSubstr(kSecret)));
  EXPECT_FALSE(AnyStartsWith(server.commands(), "MAIL"));
}

TEST_F(SmtpClientTest, OneRefusedRecipientOfTwoIsPermanentAndTheOtherGetsTheMessage) {
  FakeSmtpScript script;
  script.replies = {{"RCPT TO:<bad@", "550 5.1.1 <bad@example.org>: Recipient address rejected: User unknown\r\n"}};
  FakeSmtpServer server(script);
  SendOutcome out = Send(server, Options(server.port()), {"bad@example.org", "bob@example.org"});
  EXPECT_EQ(out.cls, SendClass::kSent) << out.error;
  EXPECT_THAT(out.error, HasSubstr("1 of 2 recipients refused"));
  ASSERT_EQ(out.recipients.size(), 2u);
  EXPECT_EQ(out.recipients[0].cls, SendClass::kPermanent);
  EXPECT_EQ(out.recipients[0].reply.code, 550);
  EXPECT_EQ(out.recipients[0].reply.enhanced, "5.1.1");
  EXPECT_THAT(out.recipients[0].reply.text, HasSubstr("User unknown"));
  EXPECT_EQ(out.recipients[1].cls, SendClass::kSent);
  EXPECT_EQ(out.recipients[1].reply.code, 250);
  EXPECT_EQ(server.data(), kStuffed);
}

// RFC 5321 §4.5.3.1.10: a 552 to RCPT is a 452 (the recipient is retried);
// the same code after DATA refuses the message for good.
TEST_F(SmtpClientTest, Code552AtRcptIsRetriedButAfterDataIsPermanent) {
  FakeSmtpScript script;
  script.replies = {{"RCPT TO:<full@", "552 5.2.2 <full@example.org>: mailbox full\r\n"}};
  FakeSmtpServer server(script);
  SendOutcome out = Send(server, Options(server.port()), {"full@example.org", "bob@example.org"});
  EXPECT_EQ(out.cls, SendClass::kSent) << out.error;
  ASSERT_EQ(out.recipients.size(), 2u);
  EXPECT_EQ(out.recipients[0].cls, SendClass::kRetry);
  EXPECT_EQ(out.recipients[0].reply.code, 552);
  EXPECT_EQ(out.recipients[1].cls, SendClass::kSent);

  FakeSmtpScript after_data;
  after_data.replies = {{".", "552 5.3.4 message too big\r\n"}};
  FakeSmtpServer second(after_data);
  SendOutcome refused = Send(second, Options(second.port()));
  EXPECT_EQ(refused.cls, SendClass::kPermanent);
  EXPECT_THAT(refused.error, HasSubstr("552 5.3.4 message too big"));
}

TEST_F(SmtpClientTest, EveryRecipientRefusedTakesTheWorstClassAndSendsNoData) {
  FakeSmtpScript script;
  script.replies = {{"RCPT TO:<bad@", "550 5.1.1 unknown\r\n"}, {"RCPT TO:<full@", "452 4.2.2 mailbox full\r\n"}};
  FakeSmtpServer server(script);
  SendOutcome out = Send(server, Options(server.port()), {"bad@example.org", "full@example.org"});
  EXPECT_EQ(out.cls, SendClass::kRetry);
  EXPECT_EQ(out.reply.code, 452);
  ASSERT_EQ(out.recipients.size(), 2u);
  EXPECT_EQ(out.recipients[0].cls, SendClass::kPermanent);
  EXPECT_EQ(out.recipients[1].cls, SendClass::kRetry);
  EXPECT_FALSE(AnyStartsWith(server.commands(), "DATA"));
}

TEST_F(SmtpClientTest, Rejection554AfterDataIsPermanentWithTheServerText) {
  FakeSmtpScript script;
  script.replies = {{".", "554 5.7.1 Message rejected as spam\r\n"}};
  FakeSmtpServer server(script);
  SendOutcome out = Send(server, Options(server.port()));
  EXPECT_EQ(out.cls, SendClass::kPermanent);
  EXPECT_EQ(out.reply.code, 554);
  EXPECT_THAT(out.error, HasSubstr("Message rejected as spam"));
  EXPECT_EQ(out.recipients.at(0).cls, SendClass::kPermanent);
  EXPECT_EQ(server.data(), kStuffed);
}

TEST_F(SmtpClientTest, MessageOverTheAnnouncedSizeIsPermanentWithoutMail) {
  FakeSmtpScript script;
  script.ehlo = "250-fake.test\r\n250-STARTTLS\r\n250-SIZE 20\r\n250 AUTH PLAIN\r\n";
  FakeSmtpServer server(script);
  SendOutcome out = Send(server, Options(server.port()));
  EXPECT_EQ(out.cls, SendClass::kPermanent);
  EXPECT_THAT(out.error, HasSubstr("over the 20 bytes"));
  EXPECT_FALSE(AnyStartsWith(server.commands(), "MAIL"));
}

TEST_F(SmtpClientTest, EightBitBodyAndUtf8AddressesUseTheAnnouncedExtensions) {
  FakeSmtpScript script;
  script.ehlo = "250-fake.test\r\n250-STARTTLS\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 AUTH PLAIN\r\n";
  FakeSmtpServer server(script);
  SendOutcome out = SendMail(Options(server.port()), "support@example.com", {"jos\xc3\xa9@example.org"},
                             "Subject: caf\xc3\xa9\r\n\r\nbody\r\n");
  server.Join();
  EXPECT_EQ(out.cls, SendClass::kSent) << out.error;
  EXPECT_THAT(server.commands(), ::testing::Contains("MAIL FROM:<support@example.com> BODY=8BITMIME SMTPUTF8"));
}

TEST_F(SmtpClientTest, Utf8AddressWithoutSmtputf8IsPermanent) {
  FakeSmtpServer server({});
  SendOutcome out = Send(server, Options(server.port()), {"jos\xc3\xa9@example.org"});
  EXPECT_EQ(out.cls, SendClass::kPermanent);
  EXPECT_THAT(out.error, HasSubstr("SMTPUTF8"));
  EXPECT_FALSE(AnyStartsWith(server.commands(), "MAIL"));
}

TEST_F(SmtpClientTest, ServerThatStopsAnsweringRetriesWithinTheTimeout) {
  FakeSmtpScript script;
  script.replies = {{"MAIL FROM", "HANG"}};
  FakeSmtpServer server(script);
  SmtpOptions o = Options(server.port());
  o.timeout = std::chrono::milliseconds(400);
  const auto start = std::chrono::steady_clock::now();
  SendOutcome out = SendMail(o, "support@example.com", {"bob@example.org"}, kMessage);
  const auto took = std::chrono::steady_clock::now() - start;
  server.Join();
  EXPECT_EQ(out.cls, SendClass::kRetry);
  EXPECT_THAT(out.error, HasSubstr("timed out at MAIL FROM: the whole attempt may take timeout 400 ms"));
  // The attempt's deadline (the driver's poll cuts the last wait to whole
  // ms, so it may end a fraction of a ms early); a session that timed out
  // sends no QUIT.
  EXPECT_GE(took, std::chrono::milliseconds(398));
  EXPECT_LT(took, std::chrono::milliseconds(1500));
  EXPECT_FALSE(AnyStartsWith(server.commands(), "QUIT"));
}

// One deadline per attempt: a server that answers every step in 300 ms,
// well within a 1000 ms timeout each, still cannot make the attempt longer
// than the timeout (per-step waits would have let it run to ~2.7 s and send).
TEST_F(SmtpClientTest, SlowAnswerAtEveryStepEndsTheAttemptAtTheTimeout) {
  FakeSmtpScript script;
  script.reply_delay = std::chrono::milliseconds(300);
  FakeSmtpServer server(script);
  SmtpOptions o = Options(server.port());
  o.timeout = std::chrono::milliseconds(1000);
  const auto start = std::chrono::steady_clock::now();
  SendOutcome out = SendMail(o, "support@example.com", {"bob@example.org"}, kMessage);
  const auto took = std::chrono::steady_clock::now() - start;
  server.Join();
  EXPECT_EQ(out.cls, SendClass::kRetry);
  // Greeting, EHLO and STARTTLS came (each under the timeout: the window is
  // hit), the EHLO after TLS is where the 1000 ms ran out.
  EXPECT_THAT(server.commands(), ::testing::Contains("STARTTLS"));
  EXPECT_THAT(out.error, HasSubstr("timed out at EHLO"));
  EXPECT_THAT(out.error, HasSubstr("timeout 1000 ms"));
  EXPECT_FALSE(AnyStartsWith(server.commands(), "MAIL"));
  EXPECT_GE(took, std::chrono::milliseconds(990));
  EXPECT_LT(took, std::chrono::milliseconds(1400));
}

TEST_F(SmtpClientTest, StopFdEndsAWaitAtOnce) {
  FakeSmtpScript script;
  script.replies = {{"MAIL FROM", "HANG"}};
  FakeSmtpServer server(script);
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  SmtpOptions o = Options(server.port());
  o.timeout = std::chrono::milliseconds(20000);
  o.stop_fd = fds[0];
  // Stops once the client waits for its MAIL FROM answer.
  std::thread stopper([&] {
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!AnyStartsWith(server.commands(), "MAIL FROM") && std::chrono::steady_clock::now() < give_up) {
      std::this_thread::yield();
    }
    EXPECT_EQ(write(fds[1], "x", 1), 1);
  });
  const auto start = std::chrono::steady_clock::now();
  SendOutcome out = SendMail(o, "support@example.com", {"bob@example.org"}, kMessage);
  const auto took = std::chrono::steady_clock::now() - start;
  stopper.join();
  server.Join();
  close(fds[0]);
  close(fds[1]);
  EXPECT_EQ(out.cls, SendClass::kRetry);
  EXPECT_THAT(out.error, HasSubstr("stopped while waiting for the server"));
  EXPECT_LT(took, std::chrono::milliseconds(5000));  // the 20 s timeout did not run
}

TEST_F(SmtpClientTest, EndlessMultiLineReplyIsABoundedError) {
  FakeSmtpScript script;
  script.replies = {{"EHLO", "ENDLESS"}};
  FakeSmtpServer server(script);
  SendOutcome out = Send(server, Options(server.port()));
  EXPECT_EQ(out.cls, SendClass::kRetry);
  EXPECT_THAT(out.error, HasSubstr("more than 100 lines"));
}

TEST_F(SmtpClientTest, OverlongReplyLineIsABoundedError) {
  FakeSmtpScript script;
  script.greeting = "220 " + std::string(20000, 'x') + "\r\n";
  FakeSmtpServer server(script);
  SendOutcome out = Send(server, Options(server.port()));
  EXPECT_EQ(out.cls, SendClass::kRetry);
  EXPECT_THAT(out.error, HasSubstr("over 4096 bytes"));
}

TEST_F(SmtpClientTest, AddressesThatCouldInjectCommandsAreRefusedBeforeConnecting) {
  SmtpOptions o = Options(1);
  EXPECT_EQ(SendMail(o, "a@b", {"x@y>\r\nRCPT TO:<evil@z"}, kMessage).cls, SendClass::kPermanent);
  EXPECT_EQ(SendMail(o, "a@b>\r\nDATA", {"x@y"}, kMessage).cls, SendClass::kPermanent);
  EXPECT_EQ(SendMail(o, "a@b", {}, kMessage).cls, SendClass::kPermanent);
}

TEST_F(SmtpClientTest, EightBitDataIsNotSentToAServerWithout8BitMime) {
  const std::string eight_bit =
      "Subject: hi\r\n\r\nGr\xC3\xBC\xC3\x9F"
      "e\r\n";
  FakeSmtpServer plain({});  // its EHLO has no 8BITMIME
  SendOutcome out = SendMail(Options(plain.port()), "support@example.com", {"bob@example.org"}, eight_bit);
  plain.Join();
  EXPECT_EQ(out.cls, SendClass::kPermanent);
  EXPECT_TRUE(out.needs_seven_bit);
  EXPECT_THAT(out.error, HasSubstr("does not offer 8BITMIME"));
  EXPECT_FALSE(AnyStartsWith(plain.commands(), "MAIL FROM"));

  FakeSmtpScript script;
  script.ehlo = "250-fake.test hello\r\n250-8BITMIME\r\n250-STARTTLS\r\n250 AUTH PLAIN\r\n";
  FakeSmtpServer eight(script);
  out = SendMail(Options(eight.port()), "support@example.com", {"bob@example.org"}, eight_bit);
  eight.Join();
  EXPECT_EQ(out.cls, SendClass::kSent) << out.error;
  EXPECT_FALSE(out.needs_seven_bit);
  EXPECT_TRUE(AnyStartsWith(eight.commands(), "MAIL FROM:<support@example.com> BODY=8BITMIME"));
}

TEST_F(SmtpClientTest, ConnectionRefusedNamesTheSubmissionPorts) {
  SendOutcome out = SendMail(Options(1), "support@example.com", {"bob@example.org"}, kMessage);  // nothing on port 1
  EXPECT_EQ(out.cls, SendClass::kRetry);
  EXPECT_THAT(out.error, HasSubstr("cannot connect to 127.0.0.1:1"));
  // The hint names SMTP's ports, not IMAP's.
  EXPECT_THAT(out.error, HasSubstr("465 for tls: implicit, 587 for starttls"));
  EXPECT_THAT(out.error, Not(HasSubstr("993")));
}

TEST_F(SmtpClientTest, TraceShowsTheConversationButNeverTheSecret) {
  FakeSmtpScript script;
  // A server echoing what it got: the secret in clear and in base64.
  script.replies = {{"AUTH", std::string("535 5.7.8 no for ") + kSecret + " " + util::Base64Encode(kSecret) + "\r\n"}};
  FakeSmtpServer server(script);
  testsupport::LogCapture capture({"smtp"});
  SendOutcome out = Send(server, Options(server.port()));
  const std::string log = capture.Text();
  EXPECT_THAT(log, HasSubstr("smtp.sent target=smtp:ack conn="));
  EXPECT_THAT(log, HasSubstr("line=\"EHLO [127.0.0.1]\""));
  EXPECT_THAT(log, HasSubstr("line=\"AUTH PLAIN <withheld>\""));
  EXPECT_THAT(log, HasSubstr("smtp.received target=smtp:ack"));
  EXPECT_THAT(log, HasSubstr("535 5.7.8 no for <redacted> <redacted>"));
  for (const std::string& form : {std::string(kSecret), util::Base64Encode(kSecret),
                                  util::Base64Encode(std::string(1, '\0') + kUser + '\0' + kSecret).substr(0, 16)}) {
    EXPECT_THAT(log, Not(HasSubstr(form)));
    EXPECT_THAT(out.error, Not(HasSubstr(form)));
    EXPECT_THAT(out.reply.text, Not(HasSubstr(form)));
  }
}

TEST_F(SmtpClientTest, TraceWithholdsAuthLoginContinuations) {
  FakeSmtpServer server({});
  testsupport::LogCapture capture({"smtp"});
  SendOutcome out = Send(server, Options(server.port(), config::TlsMode::kStartTls, SmtpAuth::kLogin));
  EXPECT_EQ(out.cls, SendClass::kSent) << out.error;
  const std::string log = capture.Text();
  EXPECT_THAT(log, HasSubstr("line=\"AUTH LOGIN\""));
  EXPECT_THAT(log, HasSubstr("line=\"<withheld>\""));
  EXPECT_THAT(log, HasSubstr("line=\"<message: " + std::to_string(kStuffed.size()) + " bytes>\""));
  EXPECT_THAT(log, Not(HasSubstr(util::Base64Encode(kSecret))));
  EXPECT_THAT(log, Not(HasSubstr(kSecret)));
  EXPECT_THAT(log, Not(HasSubstr("leading dot")));  // the message is never traced
}

}  // namespace
}  // namespace mailhook::smtp
