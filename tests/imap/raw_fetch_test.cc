// The text pieces of hand-read FETCH responses (BINARY, BINARY.SIZE).

#include "imap/raw_fetch.h"

#include <gtest/gtest.h>

namespace mailhook::imap::rawfetch {
namespace {

TEST(RawFetchTest, FetchNumber) {
  EXPECT_EQ(FetchNumber("* 12 FETCH (UID 7)"), 12u);
  EXPECT_EQ(FetchNumber("* 12 fetch (UID 7)"), 12u);
  EXPECT_FALSE(FetchNumber("* 12 EXISTS"));
  EXPECT_FALSE(FetchNumber("* 99999999999 FETCH (UID 7)"));
  EXPECT_FALSE(FetchNumber(" UID 7)"));
}

TEST(RawFetchTest, UidItemIsMatchedWhole) {
  EXPECT_EQ(UidItem("* 3 FETCH (UID 7 BINARY.SIZE[2] 142)"), 7u);
  EXPECT_EQ(UidItem("* 3 FETCH (UID 71 BINARY.SIZE[2] 142)"), 71u);
  EXPECT_EQ(UidItem(" UID 7)"), 7u);
  EXPECT_EQ(UidItem("* 3 FETCH (BINARY.SIZE[2] 1 UID 4294967295)"), 4294967295u);
  EXPECT_FALSE(UidItem("* 3 FETCH (XUID 7)"));
  EXPECT_FALSE(UidItem("* 3 FETCH (UID 7x)"));
  EXPECT_FALSE(UidItem("* 3 FETCH (UID 4294967296)"));
  EXPECT_EQ(UidItem("* 3 FETCH (UID x UID 8)"), 8u);
}

TEST(RawFetchTest, ItemValueAndLiterals) {
  const std::string line = "* 3 FETCH (UID 7 BINARY[1] ~{8}";
  size_t at = ItemValue(line, "BINARY[1]");
  ASSERT_NE(at, std::string_view::npos);
  EXPECT_EQ(line.substr(at), "~{8}");
  EXPECT_EQ(ItemValue(line, "BINARY[1.1]"), std::string_view::npos);
  EXPECT_EQ(ItemValue("* 3 FETCH (XBINARY[1] 5)", "BINARY[1]"), std::string_view::npos);
  EXPECT_EQ(TrailingLiteral(line), 8u);
  EXPECT_EQ(TrailingLiteral("* 3 FETCH (BINARY[1] {0}"), 0u);
  EXPECT_FALSE(TrailingLiteral("* 3 FETCH (BINARY[1] {x}"));
  EXPECT_FALSE(TrailingLiteral("* 3 FETCH (BINARY[1] 5)"));
  // A hostile size stays a literal (refused by the budget), however long.
  EXPECT_GT(*TrailingLiteral("x {99999999999999999999999999}"), uint64_t{1} << 40);
}

TEST(RawFetchTest, LeadingQuoted) {
  EXPECT_EQ(LeadingQuoted("\"\")"), "");
  EXPECT_EQ(LeadingQuoted("\"a\\\"b\" x"), "a\"b");
  EXPECT_FALSE(LeadingQuoted("NIL)"));
  EXPECT_FALSE(LeadingQuoted("\"open"));
}

}  // namespace
}  // namespace mailhook::imap::rawfetch
