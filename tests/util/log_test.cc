#include "util/log.h"

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace mailhook::util {
namespace {

// Captures what the loggers write to stderr while `fn` runs.
template <typename Fn>
std::string CaptureStderr(Fn fn) {
  fflush(stderr);
  char path[] = "/tmp/mh-log-XXXXXX";
  int fd = mkstemp(path);
  int saved = dup(2);
  dup2(fd, 2);
  fn();
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  close(fd);
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  unlink(path);
  return ss.str();
}

TEST(LogTest, JsonFormatIsValidJsonEvenWithQuotesInTheMessage) {
  std::string out = CaptureStderr([] {
    SetupLogging("info", "json");
    Logger("test")->error("imap.auth cause=\"server said \\\"NO\\\"\"\tnext\nline");
  });
  SetupLogging("info", "text");
  ASSERT_FALSE(out.empty());
  std::string first_line = out.substr(0, out.find('\n'));
  nlohmann::json j = nlohmann::json::parse(first_line, nullptr, /*allow_exceptions=*/false);
  ASSERT_FALSE(j.is_discarded()) << out;
  EXPECT_EQ(j["level"], "error");
  EXPECT_EQ(j["area"], "test");
  EXPECT_EQ(j["msg"], "imap.auth cause=\"server said \\\"NO\\\"\"\tnext\nline");
  EXPECT_EQ(j["ts"].get<std::string>().back(), 'Z');
}

TEST(LogTest, TextFormatHasUtcTimestampLevelAndArea) {
  std::string out = CaptureStderr([] {
    SetupLogging("debug", "text");
    Logger("area1")->debug("x.y k=v");
  });
  EXPECT_NE(out.find("Z D area1 x.y k=v"), std::string::npos) << out;
}

// The area loggers are made once and handed out without a lookup; they must
// still follow SetupLogging, which may run after they were made.
TEST(LogTest, AreaLoggerIsCachedAndFollowsSetupLogging) {
  spdlog::logger& first = Log(Area::kDelivery);
  EXPECT_EQ(&first, &Log(Area::kDelivery));
  EXPECT_EQ(first.name(), "delivery");
  EXPECT_EQ(&first, Logger("delivery").get());  // the same logger as by name
  EXPECT_NE(&first, &Log(Area::kImap));
  std::string out = CaptureStderr([] {
    SetupLogging("info", "json");
    Log(Area::kDelivery).info("delivery.ok webhook=t");
  });
  SetupLogging("info", "text");
  nlohmann::json j = nlohmann::json::parse(out.substr(0, out.find('\n')), nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << out;
  EXPECT_EQ(j["area"], "delivery");
  EXPECT_EQ(j["msg"], "delivery.ok webhook=t");
}

}  // namespace
}  // namespace mailhook::util
