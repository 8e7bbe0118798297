// Message fingerprints (issue 9 item 5): the same key from the whole header
// and from the Message-ID field alone; a header hash where there is none.

#include "daemon/message_fingerprint.h"

#include <gtest/gtest.h>

#include <string>

namespace mailhook::daemon {
namespace {

TEST(MessageFingerprintTest, TheMessageIdFieldAloneGivesTheKeyOfTheWholeHeader) {
  const std::string whole = "From: a@x\r\nMessage-Id:\r\n  <id@example.com>  \r\nSubject: s\r\n\r\n";
  const std::string field = "Message-ID:\r\n  <id@example.com>  \r\n\r\n";
  EXPECT_EQ(MessageIdKey(whole), "<id@example.com>");
  EXPECT_EQ(MessageIdKey(field), "<id@example.com>");
  EXPECT_EQ(FingerprintOf(7, 3, 120, whole), (store::Fingerprint{7, 3, "<id@example.com>", 120}));
}

TEST(MessageFingerprintTest, WithoutAMessageIdTheHeaderBlockIsHashed) {
  const std::string a = "From: a@x\r\nSubject: one\r\n\r\n";
  const std::string b = "From: a@x\r\nSubject: two\r\n\r\n";
  EXPECT_EQ(MessageIdKey(a), std::nullopt);
  EXPECT_EQ(MessageIdKey("Message-ID:   \r\n\r\n"), std::nullopt);  // blank is none
  const store::Fingerprint fa = FingerprintOf(7, 1, 10, a);
  EXPECT_TRUE(fa.key.starts_with("sha256:")) << fa.key;
  EXPECT_EQ(fa.key.size(), 7u + 64u);
  EXPECT_EQ(FingerprintOf(8, 5, 10, a).key, fa.key);  // a copy in a recreated folder
  EXPECT_NE(FingerprintOf(7, 2, 10, b).key, fa.key);
}

TEST(MessageFingerprintTest, AHugeMessageIdIsStoredAsItsHash) {
  const std::string huge = "Message-ID: <" + std::string(5000, 'x') + "@x>\r\n\r\n";
  auto key = MessageIdKey(huge);
  ASSERT_TRUE(key);
  EXPECT_LE(key->size(), kMaxMessageIdKey);
  EXPECT_TRUE(key->starts_with("mid-sha256:"));
}

}  // namespace
}  // namespace mailhook::daemon
