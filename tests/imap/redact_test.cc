// Credentials never come back out of server text.

#include "imap/redact.h"

#include <gtest/gtest.h>

#include "util/base64.h"

namespace mailhook::imap {
namespace {

TEST(RedactTest, PasswordInAnyFormIsRemoved) {
  CredentialRedactor r("alice", util::Secret("p\"w 1"));
  EXPECT_EQ(r.Clean("bad password p\"w 1 here"), "bad password <redacted> here");
  EXPECT_EQ(r.Clean("bad password p\\\"w 1 here"), "bad password <redacted> here");
  // SASL PLAIN of "\0alice\0p\"w 1", as AUTHENTICATE sends it.
  EXPECT_EQ(r.Clean("bad AGFsaWNlAHAidyAx"), "bad <redacted>");
}

TEST(RedactTest, EchoedLoginIsWithheld) {
  CredentialRedactor r("alice", util::Secret("x"));
  EXPECT_EQ(r.Clean("rejected: A1 LOGIN alice {5}"), "rejected: A1 <withheld: the server echoed our login command>");
  EXPECT_EQ(r.Clean("rejected: a1 authenticate plain AGFs"),
            "rejected: a1 <withheld: the server echoed our login command>");
  // A LOGIN that is not ours stays.
  EXPECT_EQ(r.Clean("LOGIN failed."), "LOGIN failed.");
}

// A user name with "," or "=" travels as a saslname (=2C, =3D): the payload as
// sent is what gets cut.
TEST(RedactTest, OauthbearerPayloadAsSentIsRemoved) {
  const std::string user = "a,b=c@example.org";
  EXPECT_EQ(OauthbearerPayload(user, "tok"), "n,a=a=2Cb=3Dc@example.org,\1auth=Bearer tok\1\1");
  CredentialRedactor r(user, util::Secret("ya29.token"));
  const std::string sent = util::Base64Encode(OauthbearerPayload(user, "ya29.token"));
  EXPECT_EQ(r.Clean("bad " + sent, 1000), "bad <redacted>");
}

TEST(RedactTest, BoundedAndNoControlCharacters) {
  CredentialRedactor r("alice", util::Secret("secret"));
  EXPECT_EQ(r.Clean("a\r\nb\x1b"), "a??b?");
  EXPECT_EQ(r.Clean(std::string(500, 'z')).size(), 200u);
  // Redacted before it is cut: no half secret at the end.
  EXPECT_EQ(r.Clean(std::string(197, 'z') + "secret"), std::string(197, 'z') + "<re");
}

}  // namespace
}  // namespace mailhook::imap
