#include "util/subprocess.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <thread>

#include <gtest/gtest.h>

namespace mailhook::util {
namespace {

using std::chrono::milliseconds;

ProcessSpec Spec(std::vector<std::string> argv) {
  ProcessSpec spec;
  spec.argv = std::move(argv);
  spec.timeout = milliseconds(10000);
  return spec;
}

TEST(SubprocessTest, FindProgramLooksUpBareNamesInTheGivenPath) {
  auto cat = FindProgram("cat", "/nonexistent-dir::/usr/bin:/bin");
  ASSERT_TRUE(cat.ok()) << cat.error().ToString();
  EXPECT_EQ(*cat, "/usr/bin/cat");
  auto none = FindProgram("cat", "/nonexistent-dir");
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.error().message().find("no executable file of that name in PATH (/nonexistent-dir)"),
            std::string::npos)
      << none.error().message();
  EXPECT_TRUE(none.error().NeedsOperator());
  EXPECT_TRUE(FindProgram("/bin/sh", nullptr).ok());
  auto dir = FindProgram("/tmp", nullptr);
  ASSERT_FALSE(dir.ok());
  EXPECT_NE(dir.error().message().find("it is a directory"), std::string::npos) << dir.error().message();
  EXPECT_FALSE(FindProgram("", nullptr).ok());
}

TEST(SubprocessTest, ReportsExitCodes) {
  auto ok = RunProcess(Spec({"true"}));
  ASSERT_TRUE(ok.ok()) << ok.error().ToString();
  EXPECT_EQ(ok->exit_code, 0);
  EXPECT_FALSE(ok->timed_out);

  auto seven = RunProcess(Spec({"sh", "-c", "exit 7"}));
  ASSERT_TRUE(seven.ok());
  EXPECT_EQ(seven->exit_code, 7);

  auto tempfail = RunProcess(Spec({"sh", "-c", "exit 75"}));
  ASSERT_TRUE(tempfail.ok());
  EXPECT_EQ(tempfail->exit_code, 75);
}

TEST(SubprocessTest, KilledBySignalIsNegative) {
  auto r = RunProcess(Spec({"sh", "-c", "kill -TERM $$"}));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->exit_code, -SIGTERM);
}

TEST(SubprocessTest, CapturesStdoutAndStderrSeparately) {
  auto r = RunProcess(Spec({"sh", "-c", "echo out; echo err >&2"}));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->stdout_data, "out\n");
  EXPECT_EQ(r->stderr_data, "err\n");
}

TEST(SubprocessTest, ArgumentsAreNotInterpretedByAShell) {
  auto r = RunProcess(Spec({"echo", "$HOME", "a;b", "*"}));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->stdout_data, "$HOME a;b *\n");
}

TEST(SubprocessTest, EchoesStdinThroughCat) {
  ProcessSpec spec = Spec({"cat"});
  spec.stdin_data = "hello\nworld\n";
  auto r = RunProcess(spec);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->exit_code, 0);
  EXPECT_EQ(r->stdout_data, "hello\nworld\n");
}

TEST(SubprocessTest, LargeStdinAndStdoutDoNotDeadlock) {
  // cat writes back while we are still writing: both pipes exceed their
  // kernel buffers, which deadlocks any write-then-read implementation.
  ProcessSpec spec = Spec({"cat"});
  const std::string input(4 * 1024 * 1024, 'x');
  spec.stdin_data = input;
  spec.max_output = 8 * 1024 * 1024;
  auto r = RunProcess(spec);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->exit_code, 0);
  EXPECT_EQ(r->stdout_data.size(), spec.stdin_data.size());
  EXPECT_FALSE(r->stdout_truncated);
}

TEST(SubprocessTest, LargeStdinToAChildThatIgnoresItIsNotAnError) {
  ProcessSpec spec = Spec({"sh", "-c", "exec 0<&-; echo done"});
  const std::string input(4 * 1024 * 1024, 'x');
  spec.stdin_data = input;
  auto r = RunProcess(spec);  // a SIGPIPE here would kill the test binary
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->exit_code, 0);
  EXPECT_EQ(r->stdout_data, "done\n");

  ProcessSpec quick = Spec({"true"});
  const std::string quick_input(4 * 1024 * 1024, 'y');
  quick.stdin_data = quick_input;
  auto q = RunProcess(quick);
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->exit_code, 0);
}

TEST(SubprocessTest, TruncatesOutputAtTheLimitButDrainsTheRest) {
  ProcessSpec spec = Spec({"sh", "-c", "head -c 200000 /dev/zero; echo tail >&2"});
  spec.max_output = 1000;
  auto r = RunProcess(spec);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->exit_code, 0);
  EXPECT_EQ(r->stdout_data.size(), 1000u);
  EXPECT_TRUE(r->stdout_truncated);
  EXPECT_EQ(r->stderr_data, "tail\n");
  EXPECT_FALSE(r->stderr_truncated);
}

TEST(SubprocessTest, PassesExtraEnvironment) {
  ProcessSpec spec = Spec({"sh", "-c", "printf '%s|%s' \"$MAILHOOK_EVENT_ID\" \"$HOME\""});
  spec.env = {{"MAILHOOK_EVENT_ID", "evt_1"}, {"HOME", "/nowhere"}};
  auto r = RunProcess(spec);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->stdout_data, "evt_1|/nowhere");
}

/// Sets environment variables for one test, and removes them after.
class ScopedEnv {
 public:
  explicit ScopedEnv(std::vector<std::pair<std::string, std::string>> vars) : vars_(std::move(vars)) {
    for (const auto& [name, value] : vars_) ::setenv(name.c_str(), value.c_str(), 1);
  }
  ~ScopedEnv() {
    for (const auto& kv : vars_) ::unsetenv(kv.first.c_str());
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  std::vector<std::pair<std::string, std::string>> vars_;
};

/// The child's environment as printed by env(1), one NAME=value per entry.
std::set<std::string> EnvOf(const ProcessSpec& spec) {
  auto r = RunProcess(spec);
  EXPECT_TRUE(r.ok());
  std::set<std::string> lines;
  std::istringstream in(r.ok() ? r->stdout_data : "");
  for (std::string line; std::getline(in, line);) lines.insert(line);
  return lines;
}

TEST(SubprocessTest, ChildGetsOnlyTheBaseEnvironmentNotTheDaemonsSecrets) {
  // What a daemon started with `IMAP_PASSWORD=... mailhook run` holds.
  ScopedEnv daemon_env({{"IMAP_PASSWORD", "imap-secret"},
                        {"WEBHOOK_SECRET", "whsec_secret"},
                        {"LC_TIME", "C"},
                        {"TZ", "Europe/Vienna"},
                        {"TMPDIR", "/var/tmp"},
                        {"MAILHOOK_TEST_SETTING", "kept"}});
  std::set<std::string> env = EnvOf(Spec({"env"}));
  for (const auto& line : env) {
    EXPECT_EQ(line.find("secret"), std::string::npos) << line;
    std::string name = line.substr(0, line.find('='));
    EXPECT_TRUE(IsBaseEnvironmentName(name)) << line;
  }
  for (const char* kept : {"LC_TIME=C", "TZ=Europe/Vienna", "TMPDIR=/var/tmp", "MAILHOOK_TEST_SETTING=kept"}) {
    EXPECT_TRUE(env.contains(kept)) << kept;
  }
  EXPECT_TRUE(env.contains(std::string("PATH=") + ::getenv("PATH")));
}

TEST(SubprocessTest, PassEnvAddsNamedVariablesAndEnvOverrides) {
  ScopedEnv daemon_env({{"HTTPS_PROXY", "http://proxy:3128"}, {"IMAP_PASSWORD", "imap-secret"}});
  ProcessSpec spec = Spec({"env"});
  spec.pass_env = {"HTTPS_PROXY", "NOT_SET_ANYWHERE"};
  spec.env = {{"TOKEN", "first"}, {"TZ", "UTC"}, {"TOKEN", "second"}};
  std::set<std::string> env = EnvOf(spec);
  EXPECT_TRUE(env.contains("HTTPS_PROXY=http://proxy:3128"));
  EXPECT_TRUE(env.contains("TOKEN=second"));
  EXPECT_FALSE(env.contains("TOKEN=first"));
  EXPECT_TRUE(env.contains("TZ=UTC"));
  for (const auto& line : env) {
    EXPECT_FALSE(line.starts_with("NOT_SET_ANYWHERE")) << line;
    EXPECT_FALSE(line.starts_with("IMAP_PASSWORD")) << line;
  }
}

TEST(SubprocessTest, ChildInheritsNoDescriptorAboveStderr) {
  // Descriptors a library opened without O_CLOEXEC (libetpan's cancel pipes)
  // and one with it: the child must see neither.
  int leaky[2];
  ASSERT_EQ(::pipe(leaky), 0);
  int cloexec[2];
  ASSERT_EQ(::pipe2(cloexec, O_CLOEXEC), 0);
  // ls lists the shell's descriptors (its own would include the directory it
  // reads); `; true` keeps the shell from exec'ing ls in its place.
  auto r = RunProcess(Spec({"sh", "-c", "ls /proc/$$/fd; true"}));
  for (int fd : {leaky[0], leaky[1], cloexec[0], cloexec[1]}) ::close(fd);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->stdout_data, "0\n1\n2\n") << "leaky pipe: " << leaky[0] << "," << leaky[1];
}

TEST(SubprocessTest, MissingExecutableIsAnErrorNamingThePath) {
  auto r = RunProcess(Spec({"/nonexistent/mailhook-no-such-binary", "x"}));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), "subprocess.exec");
  EXPECT_NE(r.error().message().find("/nonexistent/mailhook-no-such-binary"), std::string::npos);
  EXPECT_TRUE(r.error().NeedsOperator());

  auto in_path = RunProcess(Spec({"mailhook-no-such-binary-in-path"}));
  ASSERT_FALSE(in_path.ok());
  EXPECT_NE(in_path.error().message().find("mailhook-no-such-binary-in-path"), std::string::npos);
}

TEST(SubprocessTest, EmptyArgvIsAnError) {
  auto r = RunProcess(Spec({}));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), "subprocess.argv");
}

// Whether a process is gone (or a zombie waiting for init to reap it).
bool ProcessGone(const std::string& pid) {
  std::ifstream stat("/proc/" + pid + "/stat");
  if (!stat) return true;
  std::string line;
  std::getline(stat, line);
  auto paren = line.rfind(')');
  return paren != std::string::npos && paren + 2 < line.size() && line[paren + 2] == 'Z';
}

TEST(SubprocessTest, TimeoutKillsTheWholeProcessGroup) {
  // The background sleep is a grandchild; killing only `sh` would leave it
  // running (and holding the stdout pipe open).
  ProcessSpec spec = Spec({"sh", "-c", "sleep 100 & echo $!; sleep 100"});
  spec.timeout = milliseconds(1000);  // room for sh to start on a loaded machine
  auto start = std::chrono::steady_clock::now();
  auto r = RunProcess(spec);
  auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->timed_out);
  EXPECT_EQ(r->exit_code, -SIGKILL);
  EXPECT_LT(elapsed, std::chrono::seconds(10));
  std::string grandchild = r->stdout_data.substr(0, r->stdout_data.find('\n'));
  ASSERT_FALSE(grandchild.empty());
  // SIGKILL delivery is asynchronous: wait for the condition, bounded.
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!ProcessGone(grandchild) && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(milliseconds(10));
  }
  EXPECT_TRUE(ProcessGone(grandchild)) << "grandchild " << grandchild << " survived";
}

TEST(SubprocessTest, ChildThatClosesItsPipesStillObeysTheTimeout) {
  ProcessSpec spec = Spec({"sh", "-c", "exec >&- 2>&-; sleep 100"});
  spec.timeout = milliseconds(300);
  auto r = RunProcess(spec);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->timed_out);
  EXPECT_EQ(r->exit_code, -SIGKILL);
}

TEST(SubprocessTest, ChildSeesDefaultSigpipeEvenIfParentIgnoresIt) {
  struct sigaction ign {
  }, old{};
  ign.sa_handler = SIG_IGN;
  sigaction(SIGPIPE, &ign, &old);
  // `yes` dies of SIGPIPE when head exits; if SIGPIPE stayed ignored it would
  // spin on EPIPE errors and the pipeline would never end.
  auto r = RunProcess(Spec({"sh", "-c", "yes | head -n 1"}));
  sigaction(SIGPIPE, &old, nullptr);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->timed_out);
  EXPECT_EQ(r->stdout_data, "y\n");
}

}  // namespace
}  // namespace mailhook::util
