#include "daemon/deadletters_command.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "daemon_test_support.h"
#include "store/open_store.h"
#include "store/store.h"

namespace mailhook::daemon {
namespace {

using testing::TempDir;

class DeadLettersCommandTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config_.state_dir = dir_.path();
    auto s = store::OpenStore({.state_dir = dir_.path()});
    ASSERT_TRUE(s.ok()) << s.error().message();
    store_ = std::move(*s);
    // Three events, all failed for good.
    std::vector<store::OutboxItem> items;
    for (uint32_t uid : {11u, 12u, 13u}) {
      items.push_back({"evt_" + std::to_string(uid), "webhook:tickets", "acct", "INBOX", 7, uid, "{}", {}});
    }
    ASSERT_TRUE(store_->CommitMessages("acct", "INBOX", store::Watermark{7, 13}, items).ok());
    auto due = store_->outbox().ClaimDue(store::Clock::now() + std::chrono::hours(1), 10);
    ASSERT_TRUE(due.ok());
    ASSERT_EQ(due->size(), 3u);
    for (const auto& d : *due) {
      ASSERT_TRUE(store_->outbox().MoveToDeadLetters(d.id, 5, "HTTP 410 from the receiver").ok());
      ids_.push_back(d.id);
    }
  }
  int Run(const std::string& action, const std::vector<std::string>& ids = {}) {
    out_.str("");
    return RunDeadLettersCommand(config_, action, ids, out_);
  }
  int64_t Dead() { return *store_->dead_letters().Count(); }
  int64_t Pending() { return *store_->outbox().PendingCount(); }

  TempDir dir_;
  config::Config config_;
  std::unique_ptr<store::Store> store_;
  std::vector<int64_t> ids_;
  std::ostringstream out_;
};

TEST_F(DeadLettersCommandTest, ListPrintsEveryDeadLetterWithWhyItFailed) {
  ASSERT_EQ(Run("list"), 0);
  const std::string out = out_.str();
  for (int64_t id : ids_) EXPECT_NE(out.find(std::to_string(id) + "\tevt_"), std::string::npos) << out;
  EXPECT_NE(out.find("evt_12\twebhook:tickets\tacct/INBOX\tuid=12\tattempts=5\tfailed_at="), std::string::npos) << out;
  EXPECT_NE(out.find("HTTP 410 from the receiver"), std::string::npos);
  EXPECT_NE(out.find("3 dead letter(s)"), std::string::npos);
}

TEST_F(DeadLettersCommandTest, ListWithIdsPrintsOnlyThose) {
  ASSERT_EQ(Run("list", {std::to_string(ids_[1])}), 0);
  EXPECT_EQ(out_.str().find("evt_11"), std::string::npos) << out_.str();
  EXPECT_NE(out_.str().find("evt_12"), std::string::npos) << out_.str();
}

TEST_F(DeadLettersCommandTest, ReplayPutsTheChosenRowsBackInTheOutbox) {
  ASSERT_EQ(Run("replay", {std::to_string(ids_[0])}), 0);
  EXPECT_EQ(out_.str(), "replayed 1 dead letter(s)\n");
  EXPECT_EQ(Dead(), 2);
  EXPECT_EQ(Pending(), 1);
  ASSERT_EQ(Run("replay"), 0);  // no ids: all of them
  EXPECT_EQ(out_.str(), "replayed 2 dead letter(s)\n");
  EXPECT_EQ(Dead(), 0);
  EXPECT_EQ(Pending(), 3);
}

TEST_F(DeadLettersCommandTest, DropDeletesTheChosenRowsOrAll) {
  ASSERT_EQ(Run("drop", {std::to_string(ids_[2])}), 0);
  EXPECT_EQ(out_.str(), "dropped 1 dead letter(s)\n");
  EXPECT_EQ(Dead(), 2);
  ASSERT_EQ(Run("drop"), 0);
  EXPECT_EQ(out_.str(), "dropped 2 dead letter(s)\n");
  EXPECT_EQ(Dead(), 0);
  EXPECT_EQ(Pending(), 0) << "dropped rows are not delivered";
}

TEST_F(DeadLettersCommandTest, AnUnknownIdChangesNothing) {
  ASSERT_EQ(Run("replay", {"999999"}), 0);
  EXPECT_EQ(out_.str(), "replayed 0 dead letter(s)\n");
  EXPECT_EQ(Dead(), 3);
}

TEST_F(DeadLettersCommandTest, AnIdThatIsNotANumberIsRefusedBeforeAnythingChanges) {
  for (const std::string bad : {"abc", "12x", ""}) {
    EXPECT_EQ(Run("drop", {std::to_string(ids_[0]), bad}), 2) << bad;
    EXPECT_NE(out_.str().find("not a dead letter id"), std::string::npos);
  }
  EXPECT_EQ(Dead(), 3);
}

TEST_F(DeadLettersCommandTest, AStoreThatCannotBeOpenedIsExitCodeOne) {
  const std::string file = dir_.path() + "/not_a_dir";
  std::ofstream(file) << "x";
  config_.state_dir = file + "/state";
  EXPECT_EQ(Run("list"), 1);
  EXPECT_NE(out_.str().find("cannot open the store"), std::string::npos) << out_.str();
}

}  // namespace
}  // namespace mailhook::daemon
