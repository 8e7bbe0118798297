// AUTHENTICATE OAUTHBEARER (RFC 7628) as Session sends it by hand: the
// payload on the wire, the session usable afterwards (libetpan told it is
// authenticated), a refusal as imap.auth, and the token in no log line.
#include <gtest/gtest.h>

#include "fake_imap_server.h"
#include "imap/session.h"
#include "log_capture.h"
#include "util/base64.h"

namespace mailhook::imap {
namespace {

using fake::FakeImapServer;

SessionOptions Bearer(int port, const std::string& token) {
  SessionOptions o = fake::FakeSessionOptions(port);
  o.auth = config::AuthMethod::kOauthbearer;
  o.password = util::Secret(token);
  return o;
}

TEST(SessionOauthbearerTest, SendsTheRfc7628PayloadWithSaslIrAndLogsNoToken) {
  const std::string token = "ya29.bearer-Zq7secret";
  FakeImapServer server([](const std::string&) { return std::string(); },
                        "* OK [CAPABILITY IMAP4rev1 IDLE SASL-IR AUTH=OAUTHBEARER] fake\r\n", "IMAP4rev1 IDLE UIDPLUS",
                        {{"AUTHENTICATE", "$TAG OK [CAPABILITY IMAP4rev1 IDLE] authenticated\r\n"}});
  testsupport::LogCapture logs({"imap"});
  auto s = Session::Open(Bearer(server.port(), token));
  ASSERT_TRUE(s.ok()) << s.error().message();
  // libetpan accepts commands of the authenticated state after our AUTHENTICATE.
  auto info = (*s)->Select("INBOX");
  EXPECT_TRUE(info.ok()) << info.error().message();
  s->reset();
  server.Join();
  const std::string payload = util::Base64Encode("n,a=alice,\1auth=Bearer " + token + "\1\1");
  EXPECT_NE(server.transcript().find("AUTHENTICATE OAUTHBEARER " + payload), std::string::npos) << server.transcript();
  const std::string text = logs.Text();
  EXPECT_EQ(text.find(token), std::string::npos) << text;
  EXPECT_EQ(text.find(payload), std::string::npos) << text;
}

TEST(SessionOauthbearerTest, RefusalIsAnAuthErrorWithTheResponseCode) {
  const std::string token = "ya29.bearer-Zq7secret";
  FakeImapServer server([](const std::string&) { return std::string(); },
                        "* OK [CAPABILITY IMAP4rev1 IDLE SASL-IR AUTH=OAUTHBEARER] fake\r\n", "IMAP4rev1 IDLE UIDPLUS",
                        {{"AUTHENTICATE", "$TAG NO [AUTHENTICATIONFAILED] rejected: $LINE\r\n"}});
  auto s = Session::Open(Bearer(server.port(), token));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code(), "imap.auth_failed");  // RFC 5530 classification (response_code.cc)
  EXPECT_TRUE(s.error().NeedsOperator());
  EXPECT_NE(s.error().message().find("[AUTHENTICATIONFAILED]"), std::string::npos) << s.error().message();
  EXPECT_EQ(s.error().message().find(token), std::string::npos) << s.error().message();
  EXPECT_EQ(s.error().message().find(util::Base64Encode("n,a=alice,\1auth=Bearer " + token + "\1\1")),
            std::string::npos)
      << s.error().message();
  server.Join();
}

}  // namespace
}  // namespace mailhook::imap
