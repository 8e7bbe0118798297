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

TEST(ResultTest, KindIsItsOwnAnswerNotTheRetryClassOrTheCode) {
  // A transient store failure and a vanished message are told apart by kind:
  // neither the retry class nor the code string decides what a caller does.
  Error busy(ErrorKind::kStore, "store.busy", RetryClass::kRetryNow, "database is locked");
  EXPECT_TRUE(busy.IsStore());
  EXPECT_FALSE(busy.IsVanished());
  Error gone(ErrorKind::kVanished, "imap.expunged", RetryClass::kBackoff, "UID 7 vanished");
  EXPECT_TRUE(gone.IsVanished());
  EXPECT_FALSE(gone.IsStore());
  // Without a kind nothing is decided on it, whatever its code says.
  Error plain("store.busy", RetryClass::kRetryNow, "looks like a store error");
  EXPECT_EQ(plain.kind(), ErrorKind::kOther);
  EXPECT_FALSE(plain.IsStore());
}

TEST(ResultTest, WithMessageKeepsKindCodeAndRetryClass) {
  Error e(ErrorKind::kResponseTooLarge, "imap.response_too_large", RetryClass::kBackoff, "over");
  Error wrapped = e.WithMessage("webhooks.x: over");
  EXPECT_TRUE(wrapped.IsResponseTooLarge());
  EXPECT_EQ(wrapped.code(), "imap.response_too_large");
  EXPECT_EQ(wrapped.retry(), RetryClass::kBackoff);
  EXPECT_EQ(wrapped.message(), "webhooks.x: over");
}

}  // namespace
}  // namespace mailhook::util
