#pragma once
/// The versions mailhook was built with, for `mailhook version`.

#include <string>

namespace mailhook::daemon {

/// "mailhook 0.1.0\nlibetpan 1.9\nOpenSSL 3.0.x\n..." (one per line).
std::string VersionReport(const std::string& version);

}  // namespace mailhook::daemon
