// The transport's nesting guard follows IMAP's lexical rules.

#include "imap/nesting_scanner.h"

#include <string>

#include <gtest/gtest.h>

namespace mailhook::imap {
namespace {

bool ScanAll(const std::string& s, size_t piece = 7) {
  NestingScanner scanner;
  for (size_t at = 0; at < s.size(); at += piece) {
    if (!scanner.Scan(s.data() + at, std::min(piece, s.size() - at))) return false;
  }
  return true;
}

TEST(NestingScannerTest, DeepListsAreRefused) {
  EXPECT_TRUE(ScanAll(std::string(kMaxResponseNesting, '(')));
  EXPECT_FALSE(ScanAll(std::string(kMaxResponseNesting + 1, '(')));
  // Closed lists do not add up.
  std::string flat;
  for (int i = 0; i < 5000; ++i) flat += "(a)";
  EXPECT_TRUE(ScanAll(flat));
}

TEST(NestingScannerTest, ParenthesesInQuotedStringsAndLiteralsDoNotCount) {
  const std::string parens(kMaxResponseNesting + 5, '(');
  EXPECT_TRUE(ScanAll("* 1 FETCH (BODY[1] {" + std::to_string(parens.size()) + "}\r\n" + parens + ")\r\n"));
  EXPECT_TRUE(ScanAll("* 1 FETCH (BINARY[1] ~{" + std::to_string(parens.size()) + "}\r\n" + parens + ")\r\n", 1));
  EXPECT_TRUE(ScanAll("* 1 FETCH (ENVELOPE (\"" + parens + "\\\"" + parens + "\"))\r\n"));
}

TEST(NestingScannerTest, NothingNestsAcrossLines) {
  std::string lines;
  for (int i = 0; i < 50; ++i) lines += "* OK " + std::string(100, '(') + "\r\n";
  EXPECT_TRUE(ScanAll(lines));
  // A literal's CRLF does not end the response's line.
  EXPECT_FALSE(ScanAll(std::string(600, '(') + "{2}\r\nab" + std::string(600, '(')));
}

}  // namespace
}  // namespace mailhook::imap
