// start_from: unseen sends the folder's unread messages on the first start,
// never the read ones, and then every new message; a crash during that first
// pass does not make the restart send the read messages between the unread ones.

#include <csignal>
#include <set>

#include "pipeline_fixture.h"

namespace mailhook::testsupport {
namespace {

AccountSpec Unseen() {
  AccountSpec account;
  account.start_from = "unseen";
  return account;
}

// Appends `n` messages, marking every other one (the even positions) \Seen.
// Returns the unread UIDs.
std::set<uint32_t> AppendHalfRead(ImapClient& imap, int n) {
  std::set<uint32_t> unread;
  for (int i = 0; i < n; ++i) {
    auto uid = imap.Append("alice", "INBOX", SampleMessage("plain_utf8.eml"));
    EXPECT_TRUE(uid.ok());
    if (!uid.ok()) return unread;
    if (i % 2 == 0) {
      EXPECT_TRUE(imap.AddFlags("alice", "INBOX", *uid, {"\\Seen"}).ok());
    } else {
      unread.insert(*uid);
    }
  }
  return unread;
}

std::set<uint32_t> UidsAnswered(const WebhookReceiver& receiver, int status) {
  std::set<uint32_t> out;
  for (const auto& r : receiver.Requests()) {
    if (status == 0 || r.answered_status == status) out.insert(r.Json()["uid"].get<uint32_t>());
  }
  return out;
}

TEST_F(PipelineTest, UnreadMessagesAreSentAndReadOnesAreNot) {
  ImapClient imap(dovecot_);
  std::set<uint32_t> unread = AppendHalfRead(imap, 4);
  ASSERT_EQ(unread.size(), 2u);
  StartDaemon(Unseen());
  WaitIdle();
  ASSERT_TRUE(receiver_.WaitFor(2, seconds(20))) << daemon_.Log();
  MH_ASSERT_OK_AND_ASSIGN(uint32_t fresh, imap.Append("alice", "INBOX", SampleMessage("plain_utf8.eml")));
  ASSERT_TRUE(receiver_.WaitFor(3, seconds(20))) << daemon_.Log();
  // The new one came after the first pass: had a read one been sent, it would be here too.
  std::set<uint32_t> want = unread;
  want.insert(fresh);
  EXPECT_EQ(UidsAnswered(receiver_, 0), want);
  EXPECT_EQ(receiver_.count(), 3u);
}

TEST_F(PipelineTest, CrashDuringTheFirstPassSendsNoReadMessage) {
  // 70 messages, 35 unread: the first pass takes two batches of 25. The
  // test-only crash point aborts the daemon right after the first batch is
  // committed, its events stored and the watermark not yet written: the
  // window this test is about, hit every run (not a kill racing the pass).
  ImapClient imap(dovecot_);
  std::set<uint32_t> unread = AppendHalfRead(imap, 70);
  ASSERT_EQ(unread.size(), 35u);
  receiver_.SetDefaultResponse({503, {}, "", milliseconds(0)});
  daemon_.SetEnv("MAILHOOK_TEST_FAULT_FIRST_PASS_COMMITS", "1");
  daemon_.SetEnv("MAILHOOK_TEST_FAULT_ACTION", "abort");
  StartDaemon(Unseen(), "retry_schedule: [1s, 1s, 1s, 1s, 1s, 1s, 1s, 1s, 1s, 1s]");
  std::optional<int> code = daemon_.WaitForExit(seconds(30));
  ASSERT_TRUE(code.has_value()) << "the crash point was not reached\n" << daemon_.Log();
  EXPECT_EQ(*code, 128 + SIGABRT) << daemon_.Log();
  // The window was hit: the crash point fires only after a first-pass commit
  // that stored events and left the watermark unwritten.
  ASSERT_NE(daemon_.Log().find("test.fault account=test folder=INBOX"), std::string::npos) << daemon_.Log();
  daemon_.SetEnv("MAILHOOK_TEST_FAULT_FIRST_PASS_COMMITS", "");

  receiver_.SetDefaultResponse({200, {}, "", milliseconds(0)});
  MH_ASSERT_OK(daemon_.Restart());
  for (size_t n = receiver_.count() + 1; UidsAnswered(receiver_, 200).size() < unread.size(); ++n) {
    ASSERT_TRUE(receiver_.WaitFor(n, seconds(30))) << daemon_.Log();
  }
  MH_ASSERT_OK_AND_ASSIGN(uint32_t fresh, imap.Append("alice", "INBOX", SampleMessage("plain_utf8.eml")));
  std::set<uint32_t> want = unread;
  want.insert(fresh);
  for (size_t n = receiver_.count() + 1; UidsAnswered(receiver_, 200).size() < want.size(); ++n) {
    ASSERT_TRUE(receiver_.WaitFor(n, seconds(30))) << daemon_.Log();
  }
  // Before or after the crash, no read message was ever sent.
  EXPECT_EQ(UidsAnswered(receiver_, 0), want);
  EXPECT_EQ(UidsAnswered(receiver_, 200), want);
}

}  // namespace
}  // namespace mailhook::testsupport
