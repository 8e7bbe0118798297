// on_delivered: the message is flagged or moved only after every target
// succeeded; while the webhook fails (or the event is a dead letter) it stays.

#include <algorithm>
#include <thread>

#include "pipeline_fixture.h"

namespace mailhook::testsupport {
namespace {

// Polls an IMAP condition until it holds (the server is the only witness of
// a post-action, so there is nothing to block on).
template <typename Fn>
bool Eventually(Fn fn, milliseconds timeout = seconds(20)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (fn()) return true;
    std::this_thread::sleep_for(milliseconds(100));
  }
  return fn();
}

size_t UidCount(const ImapClient& imap, const std::string& folder) {
  auto uids = imap.ListUids("alice", folder);
  return uids.ok() ? uids->size() : 999;
}

TEST_F(PipelineTest, MoveHappensOnlyAfterTheWebhookSucceeded) {
  ImapClient imap(dovecot_);
  MH_ASSERT_OK(imap.CreateFolder("alice", "Processed"));
  receiver_.SetDefaultResponse({500, {}, "", milliseconds(0)});
  AccountSpec account;
  account.extra = "on_delivered: {move_to: Processed}";
  StartDaemon(account, "retry_schedule: [1s, 1s, 1s, 1s, 1s, 1s, 1s, 1s]");
  WaitIdle();
  MH_ASSERT_OK(imap.Append("alice", "INBOX", SampleMessage("plain_utf8.eml")));

  // Two failed attempts: the message must still be in INBOX.
  ASSERT_TRUE(receiver_.WaitFor(2, seconds(20))) << daemon_.Log();
  EXPECT_EQ(UidCount(imap, "INBOX"), 1u);
  EXPECT_EQ(UidCount(imap, "Processed"), 0u);

  receiver_.SetDefaultResponse({200, {}, "", milliseconds(0)});
  ASSERT_TRUE(Eventually([&] { return UidCount(imap, "Processed") == 1; })) << daemon_.Log();
  EXPECT_EQ(UidCount(imap, "INBOX"), 0u);
  auto requests = receiver_.Requests();
  EXPECT_EQ(requests.back().answered_status, 200);
  EXPECT_TRUE(daemon_.WaitForLog("post_action.done", seconds(5))) << daemon_.Log();
}

TEST_F(PipelineTest, DeadLetterKeepsTheMessageUntilReplayed) {
  ImapClient imap(dovecot_);
  MH_ASSERT_OK(imap.CreateFolder("alice", "Processed"));
  receiver_.SetDefaultResponse({400, {}, "", milliseconds(0)});
  AccountSpec account;
  account.extra = "on_delivered: {move_to: Processed, mark_seen: true}";
  StartDaemon(account);
  WaitIdle();
  MH_ASSERT_OK(imap.Append("alice", "INBOX", SampleMessage("plain_utf8.eml")));
  ASSERT_TRUE(receiver_.WaitFor(1, seconds(20))) << daemon_.Log();
  ASSERT_TRUE(daemon_.WaitForLog("delivery.dead", seconds(10))) << daemon_.Log();
  EXPECT_EQ(UidCount(imap, "INBOX"), 1u);
  MH_ASSERT_OK_AND_ASSIGN(auto flags, imap.Flags("alice", "INBOX", 1));
  EXPECT_EQ(std::count(flags.begin(), flags.end(), "\\Seen"), 0) << "not marked seen while undelivered";

  // The receiver is fixed; the operator replays the dead letter while the daemon runs.
  receiver_.SetDefaultResponse({200, {}, "", milliseconds(0)});
  MH_ASSERT_OK_AND_ASSIGN(CommandResult list,
                          RunMailhook({"deadletters", "list", "-c", daemon_.config_path()}, seconds(20)));
  EXPECT_EQ(list.exit_code, 0) << list.err;
  EXPECT_NE(list.out.find("1 dead letter"), std::string::npos) << list.out;
  MH_ASSERT_OK_AND_ASSIGN(CommandResult replay,
                          RunMailhook({"deadletters", "replay", "-c", daemon_.config_path()}, seconds(20)));
  EXPECT_EQ(replay.exit_code, 0) << replay.out << replay.err;
  ASSERT_TRUE(Eventually([&] { return UidCount(imap, "Processed") == 1; }, seconds(30))) << daemon_.Log();
  EXPECT_EQ(UidCount(imap, "INBOX"), 0u);
}

TEST_F(PipelineTest, MarkSeenAndKeywordsAreAddedOnce) {
  AccountSpec account;
  account.extra = "on_delivered: {mark_seen: true, add_flags: [\"$Forwarded\"]}";
  StartDaemon(account);
  WaitIdle();
  ImapClient imap(dovecot_);
  MH_ASSERT_OK_AND_ASSIGN(uint32_t uid, imap.Append("alice", "INBOX", SampleMessage("plain_utf8.eml")));
  ASSERT_TRUE(receiver_.WaitFor(1, seconds(20))) << daemon_.Log();
  ASSERT_TRUE(Eventually([&] {
    auto flags = imap.Flags("alice", "INBOX", uid);
    return flags.ok() && std::count(flags->begin(), flags->end(), "\\Seen") == 1 &&
           std::count(flags->begin(), flags->end(), "$Forwarded") == 1;
  })) << daemon_.Log();

  // A restart neither repeats nor forgets: the action is recorded as done.
  MH_ASSERT_OK(daemon_.Restart());  // the new run has a fresh log
  ASSERT_TRUE(daemon_.WaitForLog("imap.connected", seconds(20))) << daemon_.Log();
  MH_ASSERT_OK(imap.Append("alice", "INBOX", SampleMessage("latin1_qp.eml")));
  ASSERT_TRUE(receiver_.WaitFor(2, seconds(20))) << daemon_.Log();
  ASSERT_TRUE(daemon_.WaitForLog("post_action.done account=test folder=INBOX uid=2 ", seconds(20))) << daemon_.Log();
  std::string after = daemon_.Log();
  EXPECT_EQ(after.find("post_action.done account=test folder=INBOX uid=1 "), std::string::npos) << after;
}

}  // namespace
}  // namespace mailhook::testsupport
