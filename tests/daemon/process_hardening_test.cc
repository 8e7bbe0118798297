#include "daemon/process_hardening.h"

#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

namespace mailhook::daemon {
namespace {

TEST(ProcessHardeningTest, NoCoreDumpAndNoDumpableFlag) {
  // In a child, so the test process keeps its own settings.
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    bool all_done = KeepSecretsOutOfCoreDumps().empty();
    rlimit core{};
    bool no_core = ::getrlimit(RLIMIT_CORE, &core) == 0 && core.rlim_cur == 0 && core.rlim_max == 0;
    bool not_dumpable = ::prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) == 0;
    ::_exit((all_done ? 0 : 1) | (no_core ? 0 : 2) | (not_dumpable ? 0 : 4));
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "1: a call failed, 2: core limit not 0, 4: still dumpable";
}

}  // namespace
}  // namespace mailhook::daemon
