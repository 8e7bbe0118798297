#include "util/secret.h"

#include <sstream>

#include <fmt/format.h>
#include <gtest/gtest.h>

namespace mailhook::util {
namespace {

TEST(SecretTest, NeverPrintsItsValue) {
  Secret s("hunter2");
  EXPECT_EQ(fmt::format("pw={}", s), "pw=<redacted>");
  std::ostringstream os;
  os << s;
  EXPECT_EQ(os.str(), "<redacted>");
  EXPECT_EQ(s.reveal(), "hunter2");
}

}  // namespace
}  // namespace mailhook::util
