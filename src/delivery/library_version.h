#pragma once
/// The HTTP library webhooks are sent with, for `mailhook version`, so
/// callers need not include (or link) cpp-httplib themselves.

#include <string>

namespace mailhook::delivery {

/// "cpp-httplib 0.11.4".
std::string HttpLibraryVersion();

}  // namespace mailhook::delivery
