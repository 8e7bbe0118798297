#include "util/target_id.h"

#include <gtest/gtest.h>

namespace mailhook::util {
namespace {

TEST(TargetIdTest, ToStringIsTheStoredForm) {
  EXPECT_EQ(TargetId::Webhook("tickets").ToString(), "webhook:tickets");
  EXPECT_EQ(TargetId::Hook("archive").ToString(), "hook:archive");
  EXPECT_EQ(TargetId::Smtp("ack").ToString(), "smtp:ack");
}

TEST(TargetIdTest, ParseIsTheInverseOfToString) {
  for (const TargetId& id : {TargetId::Webhook("tickets"), TargetId::Hook("save-all_2"), TargetId::Smtp("ack")}) {
    auto parsed = TargetId::Parse(id.ToString());
    ASSERT_TRUE(parsed.has_value()) << id.ToString();
    EXPECT_EQ(*parsed, id);
  }
  EXPECT_EQ(TargetId::Parse("hook:a:b")->name, "a:b");  // the first colon separates
}

TEST(TargetIdTest, ParseRejectsUnknownKindsAndEmptyNames) {
  EXPECT_FALSE(TargetId::Parse("ftp:ack").has_value());
  EXPECT_FALSE(TargetId::Parse("Smtp:ack").has_value());
  EXPECT_FALSE(TargetId::Parse("Webhook:tickets").has_value());
  EXPECT_FALSE(TargetId::Parse("webhook:").has_value());
  EXPECT_FALSE(TargetId::Parse("tickets").has_value());
  EXPECT_FALSE(TargetId::Parse("").has_value());
}

TEST(TargetIdTest, KindAndNameBothDistinguish) {
  EXPECT_NE(TargetId::Webhook("a"), TargetId::Hook("a"));
  EXPECT_NE(TargetId::Smtp("a"), TargetId::Hook("a"));
  EXPECT_NE(TargetId::Webhook("a"), TargetId::Webhook("b"));
  EXPECT_LT(TargetId::Webhook("a"), TargetId::Hook("a"));  // usable as a map key
}

}  // namespace
}  // namespace mailhook::util
