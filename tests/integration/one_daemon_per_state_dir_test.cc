// One `mailhook run` per state_dir: a second daemon on the same state_dir
// exits 1 naming the first one's pid and the fix, while `mailhook
// deadletters` keeps working beside the daemon; the claim dies with the
// process (also on SIGKILL). The state is private (state_dir 0700, database
// files 0600) and `run` writes no core dumps.

#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include "pipeline_fixture.h"

namespace mailhook::testsupport {
namespace {

int Mode(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? static_cast<int>(st.st_mode & 07777) : -1;
}

std::string LockHolderPid(const std::string& state_dir) {
  std::istringstream in(ReadFile(state_dir + "/mailhook.lock"));
  std::string pid;
  in >> pid;
  return pid;
}

class StateDirTest : public PipelineTest {};

TEST_F(StateDirTest, SecondDaemonOnTheSameStateDirExitsNamingTheFirst) {
  StartDaemon();
  WaitIdle();
  const std::string pid = LockHolderPid(daemon_.state_dir());
  ASSERT_FALSE(pid.empty());

  MailhookProcess second;
  MH_ASSERT_OK(second.WriteConfig(ReadFile(daemon_.config_path())));  // same state_dir
  MH_ASSERT_OK(second.Start());
  std::optional<int> code = second.WaitForExit(seconds(20));
  ASSERT_TRUE(code.has_value()) << second.Log();
  EXPECT_EQ(*code, 1) << second.Log();
  EXPECT_NE(second.Log().find("daemon.state_dir_locked"), std::string::npos) << second.Log();
  EXPECT_NE(second.Log().find("in use by another `mailhook run` (pid " + pid), std::string::npos) << second.Log();
  EXPECT_NE(second.Log().find("Stop the other daemon first, or give this one its own state_dir"), std::string::npos)
      << second.Log();
  EXPECT_EQ(second.Log().find("daemon.started"), std::string::npos) << second.Log();
  // Nothing killed it: a start-up failure is not followed by a signal line.
  EXPECT_EQ(second.Log().find("daemon.signal"), std::string::npos) << second.Log();

  // The first one is unharmed and keeps delivering; deadletters works beside it.
  ASSERT_TRUE(daemon_.Running());
  ImapClient imap(dovecot_);
  MH_ASSERT_OK(imap.Append("alice", "INBOX", SampleMessage("plain_utf8.eml")));
  ASSERT_TRUE(receiver_.WaitFor(1, seconds(30))) << daemon_.Log();
  MH_ASSERT_OK_AND_ASSIGN(CommandResult list, RunMailhook({"deadletters", "list", "-c", daemon_.config_path()}));
  EXPECT_EQ(list.exit_code, 0) << list.out << list.err;

  // The lock dies with its process, even on SIGKILL: no stale lock.
  daemon_.Kill9();
  MH_ASSERT_OK(second.Start());
  ASSERT_TRUE(second.WaitForLog("daemon.started", seconds(20))) << second.Log();
  EXPECT_NE(LockHolderPid(daemon_.state_dir()), pid);
  MH_ASSERT_OK_AND_ASSIGN(int stopped, second.Terminate());
  EXPECT_EQ(stopped, 0);
}

TEST_F(StateDirTest, StateIsPrivateAndRunWritesNoCoreDumps) {
  StartDaemon();
  WaitIdle();
  const std::string state = daemon_.state_dir();
  EXPECT_EQ(Mode(state), 0700);
  for (const char* file : {"mailhook.db", "mailhook.db-wal", "mailhook.db-shm", "mailhook.lock"}) {
    int mode = Mode(state + "/" + file);
    if (std::string(file) == "mailhook.db") {
      ASSERT_NE(mode, -1);
    }
    if (mode != -1) {
      EXPECT_EQ(mode, 0600) << file;
    }
  }
  // RLIMIT_CORE 0, soft and hard ("Max core file size  0  0  bytes").
  std::istringstream limits(ReadFile("/proc/" + LockHolderPid(state) + "/limits"));
  std::string line;
  bool found = false;
  while (std::getline(limits, line)) {
    if (!line.starts_with("Max core file size")) continue;
    found = true;
    std::istringstream fields(line.substr(std::string("Max core file size").size()));
    std::string soft, hard;
    fields >> soft >> hard;
    EXPECT_EQ(soft, "0") << line;
    EXPECT_EQ(hard, "0") << line;
  }
  EXPECT_TRUE(found);
}

TEST_F(StateDirTest, AnExistingOpenStateDirIsReportedAndAnOldDatabaseTightened) {
  const std::string state = daemon_.state_dir();
  ASSERT_EQ(::mkdir(state.c_str(), 0755), 0);
  ASSERT_EQ(::chmod(state.c_str(), 0755), 0);     // whatever the umask
  std::ofstream(state + "/mailhook.db").close();  // as an older version left it
  ASSERT_EQ(::chmod((state + "/mailhook.db").c_str(), 0644), 0);
  StartDaemon();
  WaitIdle();
  EXPECT_NE(daemon_.Log().find("daemon.state_dir_shared dir=" + state + " mode=0755"), std::string::npos)
      << daemon_.Log();
  EXPECT_NE(daemon_.Log().find("chmod 700 " + state), std::string::npos) << daemon_.Log();
  EXPECT_EQ(Mode(state), 0755);  // the operator's directory is left as it is
  EXPECT_EQ(Mode(state + "/mailhook.db"), 0600);
}

}  // namespace
}  // namespace mailhook::testsupport
