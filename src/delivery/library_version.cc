#include "delivery/library_version.h"

#include <httplib.h>

namespace mailhook::delivery {

std::string HttpLibraryVersion() { return "cpp-httplib " CPPHTTPLIB_VERSION; }

}  // namespace mailhook::delivery
