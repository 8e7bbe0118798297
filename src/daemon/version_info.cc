#include "daemon/version_info.h"

#include <httplib.h>
#include <libetpan/libetpan.h>
#include <openssl/crypto.h>
#include <spdlog/version.h>
#include <sqlite3.h>

#include <nlohmann/json.hpp>

namespace mailhook::daemon {

std::string VersionReport(const std::string& version) {
  std::string out = "mailhook " + version + "\n";
  out += "libetpan " + std::to_string(libetpan_get_version_major()) + "." +
         std::to_string(libetpan_get_version_minor()) + "\n";
  out += std::string(OpenSSL_version(OPENSSL_VERSION)) + "\n";
  out += std::string("SQLite ") + sqlite3_libversion() + "\n";
  out += "cpp-httplib " CPPHTTPLIB_VERSION "\n";
  out += "spdlog " + std::to_string(SPDLOG_VER_MAJOR) + "." + std::to_string(SPDLOG_VER_MINOR) + "." +
         std::to_string(SPDLOG_VER_PATCH) + "\n";
  out += "nlohmann_json " + std::to_string(NLOHMANN_JSON_VERSION_MAJOR) + "." +
         std::to_string(NLOHMANN_JSON_VERSION_MINOR) + "." + std::to_string(NLOHMANN_JSON_VERSION_PATCH) + "\n";
  out += "yaml-cpp 0.7 (Debian; no version macro)\n";
  return out;
}

}  // namespace mailhook::daemon
