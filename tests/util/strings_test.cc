#include "util/strings.h"

#include <gtest/gtest.h>

namespace mailhook::util {
namespace {

TEST(Strings, LowerFoldsAsciiOnly) {
  EXPECT_EQ(Lower("Content-TYPE"), "content-type");
  EXPECT_EQ(Lower("\xC3\x89T\xC3\x89"), "\xC3\x89t\xC3\x89");  // UTF-8 bytes untouched
}

TEST(Strings, UpperFoldsAsciiOnly) {
  EXPECT_EQ(Upper("auth plain"), "AUTH PLAIN");
  EXPECT_EQ(Upper("\xC3\xA9t\xC3\xA9"), "\xC3\xA9T\xC3\xA9");  // UTF-8 bytes untouched
}

TEST(Strings, TrimTakesFoldingWhiteSpaceTrimOwsOnlySpaceAndTab) {
  EXPECT_EQ(Trim(" \t\r\n x y \r\n"), "x y");
  EXPECT_EQ(TrimOws(" \tx y\t "), "x y");
  EXPECT_EQ(TrimOws("\r\nx\r\n"), "\r\nx\r\n");
  EXPECT_EQ(Trim(""), "");
}

TEST(Strings, CaseInsensitiveComparisons) {
  EXPECT_TRUE(EqualsIgnoreCase("INBOX", "inbox"));
  EXPECT_FALSE(EqualsIgnoreCase("INBOX", "inbox2"));
  EXPECT_TRUE(StartsWithIgnoreCase("HTTPS://x", "https://"));
  EXPECT_FALSE(StartsWithIgnoreCase("http", "https://"));
}

TEST(Strings, ListHasTokenMatchesAWholeMemberIgnoringCaseAndSpace) {
  EXPECT_TRUE(ListHasToken("keep-alive, Close", "close"));
  EXPECT_TRUE(ListHasToken(" close ", "close"));
  EXPECT_TRUE(ListHasToken("gzip,\tchunked", "chunked"));
  EXPECT_FALSE(ListHasToken("closed, x-close", "close"));
  EXPECT_FALSE(ListHasToken("", "close"));
  EXPECT_FALSE(ListHasToken(",,", "close"));
}

}  // namespace
}  // namespace mailhook::util
