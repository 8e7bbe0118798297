// ParseReply, ClassifyReply and DotStuff: pure functions, no server.
#include "smtp/smtp_reply.h"

#include <gtest/gtest.h>

#include "smtp/smtp_client.h"

namespace mailhook::smtp {
namespace {

TEST(SmtpReplyTest, ParsesASingleLineWithEnhancedCode) {
  SmtpReply r = ParseReply("250 2.0.0 Ok: queued as 4Z\r\n");
  EXPECT_EQ(r.code, 250);
  EXPECT_EQ(r.enhanced, "2.0.0");
  EXPECT_EQ(r.text, "Ok: queued as 4Z");
}

TEST(SmtpReplyTest, JoinsMultiLineTextAndDropsRepeatedEnhancedCodes) {
  SmtpReply r = ParseReply(
      "550-5.1.1 The email account that you tried to reach does not exist. Please try\r\n"
      "550-5.1.1 double-checking the recipient's email address for typos or\r\n"
      "550 5.1.1 unnecessary spaces. x1si gsmtp\r\n");
  EXPECT_EQ(r.code, 550);
  EXPECT_EQ(r.enhanced, "5.1.1");
  EXPECT_EQ(r.text,
            "The email account that you tried to reach does not exist. Please try double-checking the recipient's "
            "email address for typos or unnecessary spaces. x1si gsmtp");
}

TEST(SmtpReplyTest, NoEnhancedCodeUnlessTheTextStartsWithOne) {
  EXPECT_EQ(ParseReply("220 mail.example.com ESMTP Postfix\r\n").enhanced, "");
  EXPECT_EQ(ParseReply("250 1.2.3 not a class\r\n").enhanced, "");
  EXPECT_EQ(ParseReply("250 2.0.0123 too long\r\n").enhanced, "");
  EXPECT_EQ(ParseReply("250 2.0.0x glued\r\n").enhanced, "");
  EXPECT_EQ(ParseReply("451 4.7.651 The mail server is busy\r\n").enhanced, "4.7.651");
  SmtpReply bare = ParseReply("250\r\n");
  EXPECT_EQ(bare.code, 250);
  EXPECT_EQ(bare.text, "");
  EXPECT_EQ(ParseReply("354 go").code, 354);  // last line without CRLF
}

TEST(SmtpReplyTest, MalformedRepliesHaveCodeZeroAndSayWhy) {
  for (const char* bad : {"", "hello\r\n", "25 short\r\n", "250-a\r\n251 b\r\n", "250-a\r\n", "250 a\r\n250 b\r\n",
                          "250_x\r\n", "099 low\r\n", "600 high\r\n"}) {
    SmtpReply r = ParseReply(bad);
    EXPECT_EQ(r.code, 0) << bad;
    EXPECT_TRUE(r.text.starts_with("malformed SMTP reply")) << bad << ": " << r.text;
  }
}

TEST(SmtpReplyTest, ClassifiesByCodeEnhancedCodeAndStage) {
  auto cls = [](const char* text, SmtpStage stage = SmtpStage::kMessage) {
    return ClassifyReply(ParseReply(text), stage);
  };
  EXPECT_EQ(cls("250 2.0.0 ok"), SendClass::kSent);
  EXPECT_EQ(cls("354 go on", SmtpStage::kData), SendClass::kSent);
  for (const char* retry : {"421 4.3.2 shutting down", "450 4.2.1 busy", "451 4.3.0 local error", "452 4.3.1 full",
                            "454 4.7.0 TLS not available", "447 whatever"}) {
    EXPECT_EQ(cls(retry), SendClass::kRetry) << retry;
  }
  EXPECT_EQ(ClassifyReply(SmtpReply{0, "", "connection reset"}), SendClass::kRetry);
  for (const char* op :
       {"530 5.7.0 Must issue a STARTTLS command first", "534 5.7.9 Application-specific password required",
        "535 5.7.8 Username and Password not accepted", "538 5.7.11 Encryption required",
        "554 5.7.8 credentials invalid"}) {
    EXPECT_EQ(cls(op, SmtpStage::kMail), SendClass::kNeedsOperator) << op;
  }
  EXPECT_EQ(cls("504 5.5.4 Unrecognized authentication type", SmtpStage::kAuth), SendClass::kNeedsOperator);
  EXPECT_EQ(cls("554 5.7.1 your address is blocked", SmtpStage::kConnect), SendClass::kNeedsOperator);
  for (const char* perm : {"550 5.1.1 no such user", "551 5.1.6 moved", "553 5.1.3 bad address", "554 5.6.0 rejected",
                           "550 5.7.1 relaying denied", "503 5.5.1 bad sequence"}) {
    EXPECT_EQ(cls(perm, SmtpStage::kRcpt), SendClass::kPermanent) << perm;
  }
  // The basic code wins where a server's enhanced class disagrees (RFC 3463 §2).
  EXPECT_EQ(cls("451 5.1.1 odd server", SmtpStage::kRcpt), SendClass::kRetry);
  EXPECT_EQ(cls("550 4.2.2 odd server", SmtpStage::kRcpt), SendClass::kPermanent);
}

// RFC 5321 §4.5.3.1.10: a 552 to RCPT ("too many recipients", "mailbox
// full" on many servers) is to be treated as a 452; after DATA it refuses
// the message for good.
TEST(SmtpReplyTest, Code552IsTransientAtRcptAndPermanentAfterData) {
  auto cls = [](const char* line, SmtpStage stage) { return ClassifyReply(ParseReply(line), stage); };
  EXPECT_EQ(cls("552 5.2.2 mailbox full", SmtpStage::kRcpt), SendClass::kRetry);
  EXPECT_EQ(cls("552 5.5.3 too many recipients", SmtpStage::kRcpt), SendClass::kRetry);
  EXPECT_EQ(cls("552 5.3.4 message too big", SmtpStage::kMessage), SendClass::kPermanent);
  EXPECT_EQ(cls("552 5.3.4 message too big", SmtpStage::kMail), SendClass::kPermanent);
  EXPECT_EQ(cls("552 5.2.2 mailbox full", SmtpStage::kData), SendClass::kPermanent);
}

TEST(SmtpReplyTest, WorseOrdersRetryThenOperatorThenPermanent) {
  EXPECT_EQ(Worse(SendClass::kPermanent, SendClass::kRetry), SendClass::kRetry);
  EXPECT_EQ(Worse(SendClass::kNeedsOperator, SendClass::kPermanent), SendClass::kNeedsOperator);
  EXPECT_EQ(Worse(SendClass::kSent, SendClass::kPermanent), SendClass::kPermanent);
  EXPECT_EQ(SendClassName(SendClass::kNeedsOperator), "needs_operator");
}

TEST(DotStuffTest, DoublesLeadingDotsAndEndsWithTheTerminator) {
  EXPECT_EQ(DotStuff("A: b\r\n\r\n.hidden\r\nx.y\r\n..two\r\n.\r\n"),
            "A: b\r\n\r\n..hidden\r\nx.y\r\n...two\r\n..\r\n.\r\n");
  EXPECT_EQ(DotStuff(".first"), "..first\r\n.\r\n");
  EXPECT_EQ(DotStuff("bare\nlf\n.dot"), "bare\r\nlf\r\n..dot\r\n.\r\n");
  EXPECT_EQ(DotStuff("cr\ralone\r\n"), "cr\ralone\r\n.\r\n");
  EXPECT_EQ(DotStuff(""), ".\r\n");
}

}  // namespace
}  // namespace mailhook::smtp
