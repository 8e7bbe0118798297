#pragma once
/// Logging: one spdlog logger per area ("imap", "mime", "store", "delivery",
/// "config", "http", "daemon"), all writing to stderr in text or JSON format.
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
std::shared_ptr<spdlog::logger> Logger(const std::string& area);

}  // namespace mailhook::util
