#pragma once
/// LogCapture: every line the named spdlog loggers write while it lives, at
/// trace level, for tests that assert what is (and is not) logged.

#include <memory>
#include <string>
#include <vector>

#include <spdlog/spdlog.h>

namespace mailhook::testsupport {

class CaptureSink;

/// Adds a capturing sink to each logger of `areas` (got through
/// util::Logger, so also before their first use) and sets them to trace;
/// restores their sinks and levels on destruction. One LogCapture per area
/// at a time; the loggers may log from any thread meanwhile.
class LogCapture {
 public:
  explicit LogCapture(const std::vector<std::string>& areas);
  ~LogCapture();
  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;

  /// Everything captured so far, one line per message: "<area> <level> <message>".
  std::string Text() const;

 private:
  struct Saved {
    std::shared_ptr<spdlog::logger> logger;
    spdlog::level::level_enum level;
  };
  std::shared_ptr<CaptureSink> sink_;
  std::vector<Saved> saved_;
};

}  // namespace mailhook::testsupport
