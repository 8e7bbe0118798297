// Header and MIME parsing stay linear on hostile input. Each input here is sized so
// that a quadratic parser needs minutes (ctest's TIMEOUT for this binary is
// 60 s) while a linear one needs milliseconds: the assertion that matters is
// that the test finishes at all; the results are checked too.
#include <gtest/gtest.h>

#include <string>

#include "mime/header.h"
#include "mime/mime_parser.h"

namespace mailhook::mime {
namespace {

std::string Repeat(std::string_view piece, size_t times) {
  std::string out;
  out.reserve(piece.size() * times);
  for (size_t i = 0; i < times; ++i) out.append(piece);
  return out;
}

TEST(HeaderLinear, ManyUnclosedEncodedWordStarts) {
  // 1 MB of "=?a?B?x" with no "?=" anywhere: every start used to search the
  // rest of the value for the end of its word.
  const std::string raw = Repeat("=?a?B?x", 150'000);
  EXPECT_EQ(DecodeHeaderText(raw), raw);  // broken words are kept as written
}

TEST(HeaderLinear, ManyEncodedWords) {
  const std::string raw = Repeat("=?utf-8?Q?a?= =?iso-8859-1?Q?=E9?= ", 50'000);
  const std::string decoded = DecodeHeaderText(raw);
  // "a" + "é" per pair: the spaces between words are dropped, the last one is text.
  EXPECT_EQ(decoded.size(), 50'000u * 3 + 1);
  EXPECT_EQ(decoded.substr(0, 6),
            "a\xC3\xA9"
            "a\xC3\xA9");
}

TEST(HeaderLinear, FoldedHeaderOfAMegabyte) {
  const std::string block = "Subject: start\r\n" + Repeat(" =?utf-8?B?w6k=?=\r\n", 60'000) + "From: a@b\r\n";
  std::vector<HeaderField> fields = ParseHeaderBlock(block);
  ASSERT_EQ(fields.size(), 2u);
  EXPECT_EQ(DecodeHeaderText(fields[0].value).size(), std::string("start ").size() + 60'000u * 2);
}

TEST(HeaderLinear, ManyOpenAngleBrackets) {
  // "<a<a<a...>": every '<' used to search for the '>' again.
  const std::string raw = Repeat("<a", 2'000'000) + ">";
  std::vector<std::string> ids = ParseMessageIds(raw);
  ASSERT_EQ(ids.size(), 1u);
  EXPECT_EQ(ids[0], "<a>");
}

TEST(HeaderLinear, DateWithMegabytesOfSpaceAroundTheColon) {
  // Each space next to a ':' used to be erased in place (a memmove each).
  const std::string raw =
      "Thu, 26 Nov 2026 07" + std::string(2'000'000, ' ') + ":" + std::string(2'000'000, ' ') + "59:58 +0100";
  EXPECT_EQ(ParseDate(raw).value_or(""), "2026-11-26T06:59:58Z");
}

TEST(HeaderLinear, AddressListOfManyMailboxes) {
  const std::string raw = Repeat("=?utf-8?Q?A?= <a@example.com>, ", 40'000);
  std::vector<Address> list = ParseAddressList(raw);
  ASSERT_EQ(list.size(), 40'000u);
  EXPECT_EQ(list.back().name, "A");
}

std::string EmptyParts(size_t n) {
  std::string m = "Content-Type: multipart/mixed; boundary=b\r\n\r\n";
  m.reserve(m.size() + n * 7 + 16);
  for (size_t i = 0; i < n; ++i) m += "--b\r\n\r\n";
  return m + "--b--\r\n";
}

TEST(MimeLinear, DefaultCapHoldsForAMillionParts) {
  // 7 MB of empty parts: one linear scan and 1,000 parts in memory.
  ParsedMessage m = ParseMessage(EmptyParts(1'000'000));
  EXPECT_EQ(m.root.children.size(), size_t{kDefaultMaxParts});
  EXPECT_EQ(m.root.children_omitted, 1'000'000u - kDefaultMaxParts);
}

TEST(MimeLinear, DecodedSizeOfEveryPartIsLinear) {
  // Sizing every part used to search the tree once per part.
  ParsedMessage m = ParseMessage(EmptyParts(100'000), 100'000);
  FileSectionSource src(m);
  uint64_t total = 0;
  for (const Part& p : m.root.children) total += src.DecodedSize(p.section).value().value_or(1);
  EXPECT_EQ(total, 0u);
}

}  // namespace
}  // namespace mailhook::mime
