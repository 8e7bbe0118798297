#include "util/result.h"

#include <gtest/gtest.h>

namespace mailhook::util {
namespace {

Result<int> Half(int n) {
  if (n % 2) return Error("odd", RetryClass::kNeedsOperator, "n must be even");
  return n / 2;
}

TEST(ResultTest, CarriesValueOrError) {
  auto ok = Half(4);
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(*ok, 2);
  auto bad = Half(3);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code(), "odd");
  EXPECT_TRUE(bad.error().NeedsOperator());
  EXPECT_EQ(bad.error().ToString(), "odd: n must be even");
}

TEST(ResultTest, VoidResult) {
  Status s = Ok();
  EXPECT_TRUE(s.ok());
  Status f = Error("x", RetryClass::kBackoff, "y");
  EXPECT_FALSE(f.ok());
  EXPECT_EQ(f.error().retry(), RetryClass::kBackoff);
}

}  // namespace
}  // namespace mailhook::util
