// ProtocolTrace: lines out of chunks of any size, literals shown by their
// size, credentials in every form they are sent cut out, long lines cut, and
// the connection's folder named from its SELECT on.

#include "imap/protocol_trace.h"

#include <gtest/gtest.h>

#include "fake_imap_server.h"
#include "imap/session.h"
#include "log_capture.h"
#include "util/base64.h"
#include "util/known_secrets.h"
#include "util/log.h"

namespace mailhook::imap {
namespace {

const std::string kUser = "alice";
const std::string kPassword = "pw-Trace!9";

ProtocolTrace MakeTrace() {
  return ProtocolTrace("support", "127.0.0.1", CredentialRedactor(kUser, util::Secret(kPassword)));
}

// Feeds `bytes` one byte at a time: no line or literal may depend on how
// the transport cut the stream.
void Drip(ProtocolTrace& trace, std::string_view bytes, bool sent) {
  for (char c : bytes) {
    if (sent) {
      trace.Sent(std::string_view(&c, 1), false);
    } else {
      trace.Received(std::string_view(&c, 1));
    }
  }
}

TEST(ProtocolTraceTest, LiteralsAreShownByTheirSizeOnly) {
  testsupport::LogCapture logs({"imap"});
  ProtocolTrace trace = MakeTrace();
  Drip(trace, "* 1 FETCH (UID 5 BODY[] {23}\r\nSubject: private text\r\n FLAGS (\\Seen))\r\n", false);
  Drip(trace, "* 2 FETCH (UID 6 BINARY[1] ~{3}\r\nabc)\r\n", false);
  const std::string text = logs.Text();
  EXPECT_NE(text.find("line=\"* 1 FETCH (UID 5 BODY[] {23 bytes} FLAGS (\\\\Seen))\""), std::string::npos) << text;
  EXPECT_NE(text.find("line=\"* 2 FETCH (UID 6 BINARY[1] {3 bytes})\""), std::string::npos) << text;
  EXPECT_EQ(text.find("private text"), std::string::npos) << text;
  EXPECT_EQ(text.find("abc"), std::string::npos) << text;
}

TEST(ProtocolTraceTest, LoginAndAuthenticateShowNoCredential) {
  testsupport::LogCapture logs({"imap"});
  ProtocolTrace trace = MakeTrace();
  const std::string plain = util::Base64Encode(std::string(1, '\0') + kUser + '\0' + kPassword);
  const std::string xoauth2 = util::Base64Encode("user=" + kUser + "\1auth=Bearer " + kPassword + "\1\1");
  // LOGIN with its arguments as literals (no LITERAL+): the password is a literal.
  Drip(trace, "1 LOGIN {5}\r\n", true);
  Drip(trace, "+ go on\r\n", false);
  Drip(trace, "alice {10}\r\n", true);
  Drip(trace, "+ go on\r\n", false);
  Drip(trace, kPassword + "\r\n", true);
  Drip(trace, "1 NO [AUTHENTICATIONFAILED] nope\r\n", false);
  // LOGIN in one private chunk, as libetpan sends it.
  trace.Sent("2 LOGIN alice \"" + kPassword + "\"\r\n", true);
  Drip(trace, "2 NO nope\r\n", false);
  // AUTHENTICATE without an initial response: the continuation is the secret.
  Drip(trace, "3 AUTHENTICATE PLAIN\r\n", true);
  Drip(trace, "+ \r\n", false);
  Drip(trace, "* CAPABILITY IMAP4rev1\r\n", false);
  Drip(trace, plain + "\r\n", true);
  Drip(trace, "3 NO nope\r\n", false);
  // SASL-IR, then an error challenge answered with an empty line.
  Drip(trace, "4 AUTHENTICATE XOAUTH2 " + xoauth2 + "\r\n", true);
  Drip(trace, "+ eyJzdGF0dXMiOiI0MDAifQ==\r\n", false);
  Drip(trace, "\r\n", true);
  Drip(trace, "4 NO [AUTHENTICATIONFAILED] nope\r\n", false);
  Drip(trace, "5 NOOP\r\n", true);
  const std::string text = logs.Text();
  for (const std::string& secret : {kPassword, plain, xoauth2, plain.substr(0, 16), xoauth2.substr(0, 16)}) {
    EXPECT_EQ(text.find(secret), std::string::npos) << secret << "\n" << text;
  }
  EXPECT_NE(text.find("line=\"1 LOGIN <redacted>\""), std::string::npos) << text;
  EXPECT_NE(text.find("line=\"2 LOGIN <redacted>\""), std::string::npos) << text;
  EXPECT_NE(text.find("line=\"3 AUTHENTICATE PLAIN\""), std::string::npos) << text;
  EXPECT_NE(text.find("line=\"<redacted: 24 bytes of SASL response>\""), std::string::npos) << text;
  EXPECT_NE(text.find("line=\"4 AUTHENTICATE XOAUTH2 <redacted>\""), std::string::npos) << text;
  EXPECT_NE(text.find("line=\"4 NO [AUTHENTICATIONFAILED] nope\""), std::string::npos) << text;
  // The exchange ended with the tagged answer: the next command shows.
  EXPECT_NE(text.find("line=\"5 NOOP\""), std::string::npos) << text;
}

TEST(ProtocolTraceTest, ConnectionIsNamedByAccountAndFolder) {
  testsupport::LogCapture logs({"imap"});
  ProtocolTrace trace = MakeTrace();
  trace.Sent("7 SELECT \"Support/Urgent\"\r\n", false);
  trace.Received("* 3 EXISTS\r\n7 OK [READ-WRITE] done\r\n");
  const std::string text = logs.Text();
  EXPECT_NE(text.find("imap.sent account=support conn="), std::string::npos) << text;
  EXPECT_NE(text.find("folder=Support/Urgent line=\"* 3 EXISTS\""), std::string::npos) << text;
}

TEST(ProtocolTraceTest, LongLinesAreCutAfterRedaction) {
  testsupport::LogCapture logs({"imap"});
  ProtocolTrace trace = MakeTrace();
  // The password straddles the cut: it must be redacted, not half shown.
  const std::string before(ProtocolTrace::kMaxShownLine - 4, 'x');
  trace.Received("* OK " + before + kPassword + std::string(20000, 'y') + "\r\n");
  const std::string text = logs.Text();
  EXPECT_EQ(text.find(kPassword.substr(0, 4)), std::string::npos) << text;
  EXPECT_NE(text.find("bytes)\""), std::string::npos) << text;
  EXPECT_LT(text.size(), 1000u) << text;
}

TEST(ProtocolTraceTest, SecretsFromAnySourceAreCut) {
  testsupport::LogCapture logs({"imap"});
  const std::string webhook_secret = "whsec-known-9f8e7d";
  util::RememberSecret(webhook_secret);
  ProtocolTrace trace = MakeTrace();
  trace.Received("* OK [ALERT] " + webhook_secret + " and " + util::Base64Encode(webhook_secret) + "\r\n");
  const std::string text = logs.Text();
  EXPECT_EQ(text.find(webhook_secret), std::string::npos) << text;
  EXPECT_EQ(text.find(util::Base64Encode(webhook_secret)), std::string::npos) << text;
  EXPECT_NE(text.find("[ALERT] <redacted> and <redacted>"), std::string::npos) << text;
}

// A token command gives a new value at every login: hundreds of them must
// not push the lasting secrets (a webhook secret) out of the list.
TEST(ProtocolTraceTest, RenewedTokensDoNotPushOutLastingSecrets) {
  testsupport::LogCapture logs({"imap"});
  const std::string webhook_secret = "whsec-lasting-4c3b2a";
  util::RememberSecret(webhook_secret);
  for (size_t i = 0; i < 3 * util::kMaxKnownSecrets; ++i) {
    util::RememberSecret("token-" + std::to_string(i), util::SecretLifetime::kRenewed);
  }
  ProtocolTrace trace = MakeTrace();
  trace.Received("* OK [ALERT] " + webhook_secret + " token-" + std::to_string(3 * util::kMaxKnownSecrets - 1) +
                 "\r\n");
  const std::string text = logs.Text();
  EXPECT_EQ(text.find(webhook_secret), std::string::npos) << text;
  EXPECT_EQ(text.find("token-" + std::to_string(3 * util::kMaxKnownSecrets - 1)), std::string::npos) << text;
}

TEST(ProtocolTraceTest, SessionTracesOnlyAtTraceLevel) {
  for (auto level : {spdlog::level::debug, spdlog::level::trace}) {
    fake::FakeImapServer server([](const std::string&) { return std::string("* SEARCH 4\r\n"); });
    testsupport::LogCapture logs({"imap"});
    util::Logger("imap")->set_level(level);  // LogCapture restores it
    SessionOptions o = fake::FakeSessionOptions(server.port());
    o.account = "support";
    auto s = Session::Open(o);
    ASSERT_TRUE(s.ok()) << s.error().message();
    ASSERT_TRUE((*s)->Select("INBOX").ok());
    ASSERT_TRUE((*s)->SearchUidsFrom(1).ok());
    (*s)->Logout();
    const std::string text = logs.Text();
    if (level == spdlog::level::trace) {
      EXPECT_NE(text.find("imap.sent account=support conn="), std::string::npos) << text;
      EXPECT_NE(text.find("folder=INBOX line=\"4 UID SEARCH UID 1:*\""), std::string::npos) << text;
      EXPECT_NE(text.find("folder=INBOX line=\"* SEARCH 4\""), std::string::npos) << text;
    } else {
      EXPECT_EQ(text.find("imap.sent"), std::string::npos) << text;
      EXPECT_EQ(text.find("imap.received"), std::string::npos) << text;
    }
  }
}

}  // namespace
}  // namespace mailhook::imap
