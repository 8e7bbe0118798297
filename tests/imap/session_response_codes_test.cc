// RFC 5530 response codes and BYE against the fake server: which refusals
// are waited out (kBackoff) and which need a person (kNeedsOperator, with
// the fix named), and [ALERT] texts logged once per session.

#include <gtest/gtest.h>

#include "fake_imap_server.h"
#include "imap/response_code.h"
#include "imap/session.h"
#include "log_capture.h"

namespace mailhook::imap {
namespace {

using fake::FakeImapServer;
using util::RetryClass;

const std::string kGreeting = "* OK [CAPABILITY IMAP4rev1 IDLE] fake\r\n";
const std::string kCaps = "IMAP4rev1 IDLE UIDPLUS";

FakeImapServer Server(std::map<std::string, std::string> replies, std::string greeting = kGreeting) {
  return FakeImapServer([](const std::string&) { return std::string(); }, std::move(greeting), kCaps,
                        std::move(replies));
}

util::Error LoginError(const std::string& reply) {
  FakeImapServer server = Server({{"LOGIN", reply}});
  auto s = Session::Open(fake::FakeSessionOptions(server.port()));
  server.Join();
  EXPECT_FALSE(s.ok()) << reply;
  return s.ok() ? util::Error("none", RetryClass::kRetryNow, "") : s.error();
}

TEST(SessionResponseCodesTest, TemporaryRefusalsAreWaitedOut) {
  for (const std::string code : {"UNAVAILABLE", "LIMIT", "INUSE"}) {
    util::Error e = LoginError("$TAG NO [" + code + "] try later\r\n");
    EXPECT_EQ(e.retry(), RetryClass::kBackoff) << code << ": " << e.message();
    EXPECT_EQ(e.code(), "imap.login_unavailable") << code;
    EXPECT_NE(e.message().find("[" + code + "]"), std::string::npos) << e.message();
    EXPECT_NE(e.message().find("retries with backoff"), std::string::npos) << e.message();
  }
}

TEST(SessionResponseCodesTest, CredentialProblemsNeedAnOperatorAndNameTheFix) {
  const std::map<std::string, std::pair<std::string, std::string>> expected = {
      {"AUTHENTICATIONFAILED", {"imap.auth_failed", "check username and password"}},
      {"AUTHORIZATIONFAILED", {"imap.authorization_failed", "may not be used for this mailbox"}},
      {"EXPIRED", {"imap.credentials_expired", "expired: renew them"}},
      {"PRIVACYREQUIRED", {"imap.privacy_required", "use tls: implicit (port 993) or tls: starttls"}},
  };
  for (const auto& [code, want] : expected) {
    util::Error e = LoginError("$TAG NO [" + code + "] refused\r\n");
    EXPECT_EQ(e.retry(), RetryClass::kNeedsOperator) << code << ": " << e.message();
    EXPECT_EQ(e.code(), want.first) << code;
    EXPECT_NE(e.message().find("[" + code + "]"), std::string::npos) << e.message();
    EXPECT_NE(e.message().find(want.second), std::string::npos) << e.message();
  }
}

TEST(SessionResponseCodesTest, ByeMidSessionIsABackoffNamingTheCode) {
  FakeImapServer server = Server({{"NOOP", "* BYE [UNAVAILABLE] shutting down for maintenance\r\n$CLOSE"}});
  auto s = Session::Open(fake::FakeSessionOptions(server.port()));
  ASSERT_TRUE(s.ok()) << s.error().message();
  util::Status st = (*s)->Noop();
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().retry(), RetryClass::kBackoff) << st.error().message();
  EXPECT_EQ(st.error().code(), "imap.bye") << st.error().message();
  EXPECT_NE(st.error().message().find("BYE during noop [UNAVAILABLE]"), std::string::npos) << st.error().message();
  EXPECT_NE(st.error().message().find("shutting down for maintenance"), std::string::npos) << st.error().message();
}

// A connection that just ends: the last reply libetpan holds is the
// previous command's, which says nothing about this failure (bench/soak saw
// "server said \"Search completed\": connection lost").
TEST(SessionResponseCodesTest, LostConnectionDoesNotQuoteAnEarlierReply) {
  FakeImapServer server =
      Server({{"SELECT", "* 0 EXISTS\r\n* OK [UIDVALIDITY 7] ok\r\n$TAG OK Select completed\r\n"}, {"NOOP", "CLOSE"}});
  auto s = Session::Open(fake::FakeSessionOptions(server.port()));
  ASSERT_TRUE(s.ok()) << s.error().message();
  ASSERT_TRUE((*s)->Select("INBOX").ok());
  util::Status st = (*s)->Noop();
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().retry(), RetryClass::kBackoff) << st.error().message();
  EXPECT_NE(st.error().message().find("connection lost or timed out"), std::string::npos) << st.error().message();
  EXPECT_EQ(st.error().message().find("Select completed"), std::string::npos) << st.error().message();
}

// A mail's body is literal data: a sender who writes "* BYE [EXPIRED]" or
// "* OK [ALERT]" lines into it must not be taken for the server (an operator
// error would stop the account for up to 30 minutes).
TEST(SessionResponseCodesTest, ByeAndAlertInsideALiteralAreNotTheServers) {
  const std::string body = "* BYE [AUTHENTICATIONFAILED] x\r\n* OK [ALERT] pay now\r\n";
  const std::string fetch = "* 1 FETCH (UID 9 BODY[] {" + std::to_string(body.size()) + "}\r\n" + body;
  EXPECT_EQ(FindBye(fetch), std::nullopt);
  EXPECT_EQ(FindAlert(fetch), std::nullopt);
  // Cut inside the literal (the connection died mid-body): still data.
  EXPECT_EQ(FindBye(fetch.substr(0, fetch.size() - 3)), std::nullopt);
  // Lines after the literal are the server's again.
  EXPECT_EQ(FindBye(fetch + ")\r\n* BYE [UNAVAILABLE] going down\r\n"), "[UNAVAILABLE] going down");
  EXPECT_EQ(FindAlert("* OK [ALERT] maintenance at 5\r\n"), "maintenance at 5");
  // Literal+ and binary literals announce their size too.
  EXPECT_EQ(FindBye("* 1 FETCH (BINARY[1] ~{" + std::to_string(body.size()) + "}\r\n" + body), std::nullopt);
}

TEST(SessionResponseCodesTest, ByeWithAnOperatorCodeNeedsAnOperator) {
  FakeImapServer server = Server({{"NOOP", "* BYE [EXPIRED] password expired\r\n$CLOSE"}});
  auto s = Session::Open(fake::FakeSessionOptions(server.port()));
  ASSERT_TRUE(s.ok()) << s.error().message();
  util::Status st = (*s)->Noop();
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().retry(), RetryClass::kNeedsOperator) << st.error().message();
  EXPECT_EQ(st.error().code(), "imap.credentials_expired") << st.error().message();
}

TEST(SessionResponseCodesTest, ByeGreetingIsABackoff) {
  FakeImapServer server = Server({}, "* BYE [UNAVAILABLE] too busy, come back later\r\n");
  auto s = Session::Open(fake::FakeSessionOptions(server.port()));
  server.Join();
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().retry(), RetryClass::kBackoff) << s.error().message();
  EXPECT_EQ(s.error().code(), "imap.bye") << s.error().message();
  EXPECT_NE(s.error().message().find("too busy"), std::string::npos) << s.error().message();
  EXPECT_NE(s.error().message().find("[UNAVAILABLE]"), std::string::npos) << s.error().message();
}

TEST(SessionResponseCodesTest, ByeGreetingWithAnOperatorCodeGetsNoTlsHint) {
  FakeImapServer server = Server({}, "* BYE [EXPIRED] account expired\r\n");
  auto s = Session::Open(fake::FakeSessionOptions(server.port()));
  server.Join();
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code(), "imap.credentials_expired") << s.error().message();
  EXPECT_EQ(s.error().message().find("tls: implicit"), std::string::npos) << s.error().message();
}

TEST(SessionResponseCodesTest, SelectRefusedWithLimitIsABackoffNotAMissingFolder) {
  FakeImapServer server = Server({{"SELECT", "$TAG NO [LIMIT] too many sessions\r\n"}});
  auto s = Session::Open(fake::FakeSessionOptions(server.port()));
  ASSERT_TRUE(s.ok()) << s.error().message();
  auto info = (*s)->Select("INBOX");
  ASSERT_FALSE(info.ok());
  EXPECT_EQ(info.error().retry(), RetryClass::kBackoff) << info.error().message();
  EXPECT_EQ(info.error().code(), "imap.limit") << info.error().message();
  EXPECT_EQ(info.error().message().find("Check the folder name"), std::string::npos) << info.error().message();
}

TEST(SessionResponseCodesTest, AlertIsLoggedOncePerSession) {
  const std::string alert = "Your mailbox is over quota";
  FakeImapServer server = Server({{"LOGIN", "* OK [ALERT] " + alert + "\r\n$TAG OK logged in\r\n"},
                                  {"NOOP", "$TAG OK [ALERT] " + alert + "\r\n"}});
  testsupport::LogCapture logs({"imap"});
  auto s = Session::Open(fake::FakeSessionOptions(server.port()));
  ASSERT_TRUE(s.ok()) << s.error().message();
  for (int i = 0; i < 3; ++i) ASSERT_TRUE((*s)->Noop().ok());
  (*s)->Logout();
  const std::string text = logs.Text();
  const std::string line =
      "imap warning imap.alert account=- server=127.0.0.1:" + std::to_string(server.port()) + " text=\"" + alert + "\"";
  const size_t first = text.find(line);
  ASSERT_NE(first, std::string::npos) << text;
  EXPECT_EQ(text.find(line, first + 1), std::string::npos) << "logged twice:\n" << text;
}

TEST(SessionResponseCodesTest, AlertInTheGreetingIsLogged) {
  FakeImapServer server = Server({}, "* OK [ALERT] System going down at 17:00 UTC\r\n");
  testsupport::LogCapture logs({"imap"});
  auto s = Session::Open(fake::FakeSessionOptions(server.port()));
  ASSERT_TRUE(s.ok()) << s.error().message();
  (*s)->Logout();
  EXPECT_NE(logs.Text().find("imap.alert account=- server=127.0.0.1:" + std::to_string(server.port()) +
                             " text=\"System going down at 17:00 UTC\""),
            std::string::npos)
      << logs.Text();
}

}  // namespace
}  // namespace mailhook::imap
