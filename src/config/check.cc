#include "config/check.h"

#include <string>

namespace mailhook::config {
namespace {

std::string Count(size_t n, const std::string& noun) { return std::to_string(n) + " " + noun + (n == 1 ? "" : "s"); }

}  // namespace

int PrintCheck(const LoadResult& result, std::ostream& out) {
  if (!result.errors.empty() || !result.config) {
    for (const auto& e : result.errors) out << e.ToString() << "\n";
    if (result.errors.empty()) out << result.file << ": not loaded\n";
    return kCheckInvalid;
  }
  const Config& cfg = *result.config;
  size_t folders = 0;
  for (const auto& a : cfg.accounts) folders += a.folders.size();
  out << result.file << ": OK: " << Count(cfg.accounts.size(), "account") << " (" << Count(folders, "folder") << "), "
      << Count(cfg.webhooks.size(), "webhook") << ", " << Count(cfg.hooks.size(), "hook");
  if (!cfg.smtp.empty()) out << ", " << Count(cfg.smtp.size(), "smtp target");
  out << "\n";
  return kCheckOk;
}

}  // namespace mailhook::config
