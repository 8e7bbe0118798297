#include "store/open_store.h"

#include <filesystem>
#include <string>

#include <gtest/gtest.h>

#include "temp_dir.h"

namespace mailhook::store {
namespace {

using testsupport::TempDir;

TEST(OpenStoreTest, NoUrlIsSqliteInStateDir) {
  TempDir dir;
  auto s = OpenStore({.state_dir = dir.path() + "/state"});
  ASSERT_TRUE(s.ok()) << s.error().ToString();
  EXPECT_EQ((*s)->path(), dir.path() + "/state/mailhook.db");
  EXPECT_TRUE(std::filesystem::exists(dir.path() + "/state/mailhook.db"));
}

TEST(OpenStoreTest, SqliteUrlSelectsAFileElsewhere) {
  TempDir dir;
  const std::string file = dir.path() + "/elsewhere/state.db";
  auto s = OpenStore({.state_dir = dir.path() + "/state", .url = "sqlite:" + file});
  ASSERT_TRUE(s.ok()) << s.error().ToString();
  EXPECT_EQ((*s)->path(), file);
  ASSERT_TRUE((*s)->watermarks().Set("a", "INBOX", {7, 3}).ok());
  EXPECT_TRUE(std::filesystem::exists(file));
  EXPECT_FALSE(std::filesystem::exists(dir.path() + "/state/mailhook.db"));
  // A second connection to the same url sees the first one's writes.
  auto again = OpenStore({.url = "sqlite:" + file});
  ASSERT_TRUE(again.ok()) << again.error().ToString();
  auto mark = (*again)->watermarks().Get("a", "INBOX");
  ASSERT_TRUE(mark.ok() && mark->has_value());
  EXPECT_EQ((*mark)->last_uid, 3u);
}

TEST(OpenStoreTest, AnUnknownSchemeIsRefusedWithoutItsPassword) {
  TempDir dir;
  auto s = OpenStore({.state_dir = dir.path(), .url = "mysql://mailhook:hunter2@db.example/mailhook"});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code(), "store.url");
  EXPECT_TRUE(s.error().NeedsOperator());
  EXPECT_NE(s.error().message().find("\"mysql\""), std::string::npos) << s.error().message();
  EXPECT_EQ(s.error().message().find("hunter2"), std::string::npos) << s.error().message();
}

}  // namespace
}  // namespace mailhook::store
