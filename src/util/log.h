#pragma once
/// Logging: one spdlog logger per area ("imap", "mime", "store", "delivery",
/// "config", "http", "daemon", "smtp"), all writing to stderr in text or JSON format.
/// Messages are a stable event name plus key=value fields:
///   imap.reconnect account=support folder=INBOX attempt=3 delay_ms=8000
/// Never pass secrets, bodies or Authorization headers.

#include <memory>
#include <string>

#include <spdlog/spdlog.h>

namespace mailhook::util {

/// Installs the loggers. level: trace|debug|info|warn|error; format: text|json.
/// Safe to call again (replaces the sinks). Thread-safe after the first call.
void SetupLogging(const std::string& level, const std::string& format);

/// The logger for an area; created on first use with the current settings.
/// Looks the name up under a lock: for a logger per message use Log(Area).
std::shared_ptr<spdlog::logger> Logger(const std::string& area);

/// The areas of mailhook, one logger each (the logger's name is the area's
/// directory under src/).
enum class Area { kImap, kMime, kStore, kDelivery, kConfig, kHttp, kDaemon, kSmtp };

/// The logger of an area, created once (on the first call, with the current
/// settings; SetupLogging later replaces its sinks) and then returned without
/// a lookup or a lock, so it can be called per message from any thread.
spdlog::logger& Log(Area area);

}  // namespace mailhook::util
