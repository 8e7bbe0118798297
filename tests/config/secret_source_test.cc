#include "config/secret_source.h"

#include <gtest/gtest.h>

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
