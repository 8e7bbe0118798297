#include "util/log.h"

#include <array>
#include <mutex>

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>

namespace mailhook::util {
namespace {

std::mutex g_mu;
spdlog::sink_ptr g_sink;
spdlog::level::level_enum g_level = spdlog::level::info;

// %* in a pattern: the message as the inside of a JSON string (RFC 8259 §7),
// so that quotes and control characters in causes cannot break the line.
class JsonEscapedMessage : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
    static constexpr char kHex[] = "0123456789abcdef";
    for (char c : std::string_view(msg.payload.data(), msg.payload.size())) {
      switch (c) {
        case '"': dest.append(std::string_view("\\\"")); break;
        case '\\': dest.append(std::string_view("\\\\")); break;
        case '\n': dest.append(std::string_view("\\n")); break;
        case '\r': dest.append(std::string_view("\\r")); break;
        case '\t': dest.append(std::string_view("\\t")); break;
        default:
          if (static_cast<unsigned char>(c) < 0x20) {
            const char esc[] = {'\\', 'u', '0', '0', kHex[(c >> 4) & 0xf], kHex[c & 0xf]};
            dest.append(esc, esc + 6);
          } else {
            dest.push_back(c);
          }
      }
    }
  }
  std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<JsonEscapedMessage>(); }
};

spdlog::sink_ptr MakeSink(const std::string& format) {
  auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  if (format == "json") {
    // The message is already "event key=value ..."; JSON wraps it for log shippers.
    auto formatter = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc);
    formatter->add_flag<JsonEscapedMessage>('*').set_pattern(
        R"({"ts":"%Y-%m-%dT%H:%M:%S.%eZ","level":"%l","area":"%n","msg":"%*"})");
    sink->set_formatter(std::move(formatter));
  } else {
    sink->set_formatter(
        std::make_unique<spdlog::pattern_formatter>("%Y-%m-%dT%H:%M:%S.%eZ %L %n %v", spdlog::pattern_time_type::utc));
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

spdlog::logger& Log(Area area) {
  static constexpr std::array<const char*, 8> kNames = {"imap",   "mime", "store",  "delivery",
                                                        "config", "http", "daemon", "smtp"};
  // Created together on first use (a thread-safe static) and kept for the
  // process: messages never wait on g_mu or spdlog's registry lock.
  static const std::array<std::shared_ptr<spdlog::logger>, kNames.size()> loggers = [] {
    std::array<std::shared_ptr<spdlog::logger>, kNames.size()> out;
    for (size_t i = 0; i < kNames.size(); ++i) out[i] = Logger(kNames[i]);
    return out;
  }();
  return *loggers[static_cast<size_t>(area)];
}

}  // namespace mailhook::util
