#include "config/secret_source.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>

#include "test_util.h"

namespace mailhook::config {
namespace {

using testing::TempDir;

TEST(ReadSecretFileTest, StripsExactlyOneTrailingNewline) {
  TempDir dir;
  EXPECT_EQ(ReadSecretFile(dir.Write("a", "hunter2\n"))->reveal(), "hunter2");
  EXPECT_EQ(ReadSecretFile(dir.Write("b", "hunter2\r\n"))->reveal(), "hunter2");
  EXPECT_EQ(ReadSecretFile(dir.Write("c", "hunter2\n\n"))->reveal(), "hunter2\n");
  EXPECT_EQ(ReadSecretFile(dir.Write("d", "  hunter2 "))->reveal(), "  hunter2 ");
}

TEST(ReadSecretFileTest, MissingOrEmptyFileIsAnErrorNamingThePath) {
  TempDir dir;
  auto missing = ReadSecretFile(dir.path() / "nope");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message().find("nope"), std::string::npos);
  EXPECT_NE(missing.error().message().find("No such file"), std::string::npos);
  auto empty = ReadSecretFile(dir.Write("empty", "\n"));
  ASSERT_FALSE(empty.ok());
  EXPECT_NE(empty.error().message().find("empty"), std::string::npos);
}

// Issue 10: a secret mounted root-only made the container restart-loop with
// only "Permission denied"; the message now names the owner, the mode, our
// uid/gid and the chown that fixes it (10001:10001 for the image).
TEST(ReadSecretFileTest, UnreadableFileNamesOwnerModeAndTheFix) {
  TempDir dir;
  std::string path = dir.Write("imap_password", "hunter2\n");
  ASSERT_EQ(chmod(dir.path().c_str(), 0755), 0);
  // As root: mode 0400 as the secret is mounted, read as another user below;
  // otherwise mode 0000, which stops its owner too.
  const bool root = geteuid() == 0;
  ASSERT_EQ(chmod(path.c_str(), root ? 0400 : 0), 0);
  auto read_as = [&](bool drop) {
    // Root reads anything: read it as nobody (65534) in a child, as a container's user would.
    int fds[2];
    EXPECT_EQ(pipe(fds), 0);
    pid_t pid = fork();
    if (pid == 0) {
      close(fds[0]);
      if (drop && (setgid(65534) != 0 || setuid(65534) != 0)) _exit(3);
      auto r = ReadSecretFile(path);
      std::string msg = r.ok() ? "OK" : r.error().message();
      if (write(fds[1], msg.data(), msg.size()) < 0) _exit(4);
      _exit(0);
    }
    close(fds[1]);
    std::string out;
    char buf[512];
    for (ssize_t n; (n = read(fds[0], buf, sizeof(buf))) > 0;) out.append(buf, static_cast<size_t>(n));
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
    return out;
  };
  std::string msg = read_as(root);
  EXPECT_NE(msg.find("Permission denied"), std::string::npos) << msg;
  EXPECT_NE(msg.find(path), std::string::npos) << msg;
  EXPECT_NE(msg.find(root ? "mode 0400" : "mode 0000"), std::string::npos) << msg;
  EXPECT_NE(msg.find("owned by uid " + std::to_string(geteuid())), std::string::npos) << msg;
  EXPECT_NE(msg.find("chown 10001:10001"), std::string::npos) << msg;
  EXPECT_EQ(msg.find("hunter2"), std::string::npos) << msg;
}

TEST(RunSecretCommandTest, ReturnsStrippedStdout) {
  auto s = RunSecretCommand({"printf", "  tok3n\n\n"});
  ASSERT_TRUE(s.ok()) << s.error().ToString();
  EXPECT_EQ(s->reveal(), "tok3n");
}

TEST(RunSecretCommandTest, RunsWithoutAShell) {
  auto s = RunSecretCommand({"echo", "$(id)", ";", "|"});
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->reveal(), "$(id) ; |");
}

TEST(RunSecretCommandTest, FailureNamesTheCommandButNeverItsOutput) {
  auto s = RunSecretCommand({"sh", "-c", "echo topsecret; echo alsosecret >&2; exit 3"});
  ASSERT_FALSE(s.ok());
  const std::string& m = s.error().message();
  EXPECT_NE(m.find("\"sh\""), std::string::npos);
  EXPECT_NE(m.find("status 3"), std::string::npos);
  EXPECT_EQ(m.find("topsecret"), std::string::npos);
  EXPECT_EQ(m.find("alsosecret"), std::string::npos);
}

TEST(RunSecretCommandTest, MissingProgramAndEmptyOutputAreErrors) {
  auto missing = RunSecretCommand({"/nonexistent/get-password"});
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message().find("/nonexistent/get-password"), std::string::npos);
  auto empty = RunSecretCommand({"true"});
  ASSERT_FALSE(empty.ok());
  EXPECT_NE(empty.error().message().find("printed nothing"), std::string::npos);
}

}  // namespace
}  // namespace mailhook::config
