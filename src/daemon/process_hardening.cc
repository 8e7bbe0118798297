#include "daemon/process_hardening.h"

#include <sys/prctl.h>
#include <sys/resource.h>

#include <cerrno>
#include <cstring>

namespace mailhook::daemon {

std::vector<std::string> KeepSecretsOutOfCoreDumps() {
  std::vector<std::string> failed;
  if (::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
    failed.push_back(std::string("prctl(PR_SET_DUMPABLE, 0): ") + std::strerror(errno));
  }
  // Both limits: a soft limit alone could be raised again by the process.
  rlimit none{0, 0};
  if (::setrlimit(RLIMIT_CORE, &none) != 0) {
    failed.push_back(std::string("setrlimit(RLIMIT_CORE, 0): ") + std::strerror(errno));
  }
  return failed;
}

}  // namespace mailhook::daemon
