#include "log_capture.h"

#include <algorithm>
#include <mutex>

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/base_sink.h>

#include "util/log.h"

namespace mailhook::testsupport {

/// Appends each formatted line to a string, under the sink's own mutex.
class CaptureSink : public spdlog::sinks::base_sink<std::mutex> {
 public:
  std::string Text() {
    std::lock_guard<std::mutex> lock(mutex_);
    return text_;
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t formatted;
    formatter_->format(msg, formatted);
    text_.append(formatted.data(), formatted.size());
  }
  void flush_() override {}

 private:
  std::string text_;
};

LogCapture::LogCapture(const std::vector<std::string>& areas) : sink_(std::make_shared<CaptureSink>()) {
  sink_->set_formatter(std::make_unique<spdlog::pattern_formatter>("%n %l %v"));
  for (const std::string& area : areas) {
    std::shared_ptr<spdlog::logger> logger = util::Logger(area);
    saved_.push_back({logger, logger->level()});
    logger->sinks().push_back(sink_);
    logger->set_level(spdlog::level::trace);
  }
}

LogCapture::~LogCapture() {
  for (Saved& s : saved_) {
    auto& sinks = s.logger->sinks();
    sinks.erase(std::remove(sinks.begin(), sinks.end(), sink_), sinks.end());
    s.logger->set_level(s.level);
  }
}

std::string LogCapture::Text() const { return sink_->Text(); }

}  // namespace mailhook::testsupport
