#include "daemon/version_info.h"

#include <spdlog/version.h>

#include <nlohmann/json.hpp>

#include "imap/library_version.h"
#include "store/db.h"

namespace mailhook::daemon {

std::string VersionReport(const std::string& version) {
  // Each area reports the heavy library it owns: the daemon links none of
  // them (see tests/fence).
  std::string out = "mailhook " + version + "\n";
  out += imap::LibraryVersion() + "\n";
  out += imap::TlsLibraryVersion() + "\n";
  out += store::SqliteVersion() + "\n";
  out += "spdlog " + std::to_string(SPDLOG_VER_MAJOR) + "." + std::to_string(SPDLOG_VER_MINOR) + "." +
         std::to_string(SPDLOG_VER_PATCH) + "\n";
  out += "nlohmann_json " + std::to_string(NLOHMANN_JSON_VERSION_MAJOR) + "." +
         std::to_string(NLOHMANN_JSON_VERSION_MINOR) + "." + std::to_string(NLOHMANN_JSON_VERSION_PATCH) + "\n";
  out += "yaml-cpp 0.7 (Debian; no version macro)\n";
  return out;
}

}  // namespace mailhook::daemon
