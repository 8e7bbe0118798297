// src/pgstore/pg_statement's pure helpers, without a server: array literals
// (quoted texts stay texts), a UTF-8-safe prefix, and invalid UTF-8 made
// valid for PostgreSQL text (each bad byte and NUL becomes U+FFFD).

#include "pgstore/pg_statement.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace mailhook::pgstore {
namespace {

using namespace std::string_literals;

TEST(PgStatementTest, ArrayLiteralsQuoteEveryText) {
  EXPECT_EQ(PgTextArray(std::vector<std::string>{}), "{}");
  EXPECT_EQ(PgTextArray(std::vector<std::string>{"webhook:a", "a, b", "NULL", R"(q"\)"}),
            R"({"webhook:a","a, b","NULL","q\"\\"})");
  EXPECT_EQ(PgIntArray(std::vector<int64_t>{}), "{}");
  EXPECT_EQ(PgIntArray(std::vector<int64_t>{1, -2, 9007199254740993}), "{1,-2,9007199254740993}");
}

TEST(PgStatementTest, APrefixNeverEndsInsideAUtf8Sequence) {
  EXPECT_EQ(Utf8Prefix("abc", 5), "abc");
  EXPECT_EQ(Utf8Prefix("abc", 2), "ab");
  EXPECT_EQ(Utf8Prefix("a\u00fc", 2), "a");   // ü is 2 bytes
  EXPECT_EQ(Utf8Prefix("a\u2713b", 3), "a");  // ✓ is 3 bytes
  EXPECT_EQ(Utf8Prefix("a\u2713b", 4), "a\u2713");
  EXPECT_EQ(Utf8Prefix("\U0001F600x", 3), "");  // 4 bytes
}

// Not UTF-8 (a run of continuation bytes, from a Latin-1 text cut before):
// the cut backs off at most 3 bytes, as far as a sequence can reach, not to 0.
TEST(PgStatementTest, APrefixOfContinuationBytesBacksOffAtMostThree) {
  const std::string junk = "ab" + std::string(10, '\x80');
  EXPECT_EQ(Utf8Prefix(junk, 8).size(), 5u);
}

TEST(PgStatementTest, InvalidUtf8BecomesReplacementCharacters) {
  const std::string fffd = "\xEF\xBF\xBD";
  EXPECT_EQ(ValidUtf8("plain ascii"), "plain ascii");
  EXPECT_EQ(ValidUtf8("Gr\u00fc\u00dfe \u2713 \U0001F600"), "Gr\u00fc\u00dfe \u2713 \U0001F600");
  EXPECT_EQ(ValidUtf8("caf\xe9!"), "caf" + fffd + "!");                 // Latin-1
  EXPECT_EQ(ValidUtf8("a\0b"s), "a" + fffd + "b");                      // NUL
  EXPECT_EQ(ValidUtf8("\xc3"), fffd);                                   // cut sequence
  EXPECT_EQ(ValidUtf8("\xc0\xaf"), fffd + fffd);                        // overlong '/'
  EXPECT_EQ(ValidUtf8("\xed\xa0\x80"), fffd + fffd + fffd);             // a surrogate
  EXPECT_EQ(ValidUtf8("\xf4\x90\x80\x80"), fffd + fffd + fffd + fffd);  // past U+10FFFF
}

}  // namespace
}  // namespace mailhook::pgstore
