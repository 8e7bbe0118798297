#include "util/log.h"

#include <mutex>

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>

namespace mailhook::util {
namespace {

std::mutex g_mu;
spdlog::sink_ptr g_sink;
spdlog::level::level_enum g_level = spdlog::level::info;

spdlog::sink_ptr MakeSink(const std::string& format) {
  auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  if (format == "json") {
    // The message is already "event key=value ..."; JSON wraps it for log shippers.
    sink->set_formatter(std::make_unique<spdlog::pattern_formatter>(
        R"({"ts":"%Y-%m-%dT%H:%M:%S.%eZ","level":"%l","area":"%n","msg":"%v"})",
        spdlog::pattern_time_type::utc));
  } else {
    sink->set_formatter(std::make_unique<spdlog::pattern_formatter>(
        "%Y-%m-%dT%H:%M:%S.%eZ %L %n %v", spdlog::pattern_time_type::utc));
  }
  return sink;
}

}  // namespace

void SetupLogging(const std::string& level, const std::string& format) {
  std::lock_guard lock(g_mu);
  g_sink = MakeSink(format);
  g_level = spdlog::level::from_str(level);
  spdlog::set_pattern("%v");  // unused by our sinks; keeps defaults sane
  spdlog::apply_all([](const std::shared_ptr<spdlog::logger>& l) {
    l->sinks().clear();
    l->sinks().push_back(g_sink);
    l->set_level(g_level);
  });
}

std::shared_ptr<spdlog::logger> Logger(const std::string& area) {
  std::lock_guard lock(g_mu);
  if (auto existing = spdlog::get(area)) return existing;
  if (!g_sink) g_sink = MakeSink("text");
  auto logger = std::make_shared<spdlog::logger>(area, g_sink);
  logger->set_level(g_level);
  logger->flush_on(spdlog::level::trace);
  spdlog::register_logger(logger);
  return logger;
}

}  // namespace mailhook::util
