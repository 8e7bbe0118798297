#include <gtest/gtest.h>

#include "config/config.h"

namespace mailhook::config {
namespace {

using namespace std::chrono_literals;

TEST(ParseDurationTest, AcceptsUnitsAndCombinations) {
  EXPECT_EQ(ParseDuration("500ms"), Duration(500ms));
  EXPECT_EQ(ParseDuration("30s"), Duration(30s));
  EXPECT_EQ(ParseDuration("5m"), Duration(5min));
  EXPECT_EQ(ParseDuration("1h"), Duration(1h));
  EXPECT_EQ(ParseDuration("1h30m"), Duration(90min));
  EXPECT_EQ(ParseDuration("1m30s500ms"), Duration(90500ms));
  EXPECT_EQ(ParseDuration("0s"), Duration(0ms));
}

TEST(ParseDurationTest, RejectsMalformed) {
  for (const char* bad :
       {"", "30", "30x", "s", "1.5h", "-5s", "5 s", "5S", "1h30", "ms", "10d", "99999999999999999999s"}) {
    EXPECT_FALSE(ParseDuration(bad).has_value()) << bad;
  }
}

TEST(DefaultRetryScheduleTest, IsTheContractSchedule) {
  std::vector<Duration> expected = {5s, 5min, 30min, 2h, 5h, 10h, 14h, 20h, 24h};
  EXPECT_EQ(DefaultRetrySchedule(), expected);
}

TEST(ConfigErrorTest, FormatsLikeACompiler) {
  EXPECT_EQ((ConfigError{"c.yml", 12, 5, "bad"}).ToString(), "c.yml:12:5: bad");
  EXPECT_EQ((ConfigError{"c.yml", 12, 0, "bad"}).ToString(), "c.yml:12: bad");
  EXPECT_EQ((ConfigError{"c.yml", 0, 0, "bad"}).ToString(), "c.yml: bad");
}

}  // namespace
}  // namespace mailhook::config
