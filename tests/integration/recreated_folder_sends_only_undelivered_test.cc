// Issue 9 item 5: a folder deleted and created again (a new UIDVALIDITY)
// with a mix of delivered and never-delivered messages: exactly the
// undelivered ones arrive at the webhook, once each, and no delivered one
// arrives again — with the daemon stopped during the change, and running.

#include <map>
#include <set>
#include <string>

#include "pipeline_fixture.h"

namespace mailhook::testsupport {
namespace {

constexpr const char* kFolder = "Orders";

// A message with this subject; a Message-ID unless `message_id` is empty.
std::string Message(const std::string& subject, const std::string& message_id, const std::string& body) {
  std::string m = "From: Ann <ann@example.com>\r\nTo: alice@example.com\r\nSubject: " + subject +
                  "\r\nDate: Sun, 29 Nov 2026 10:00:00 +0000\r\n";
  if (!message_id.empty()) m += "Message-ID: " + message_id + "\r\n";
  return m + "Content-Type: text/plain; charset=utf-8\r\n\r\n" + body + "\r\n";
}

class RecreatedFolderTest : public PipelineTest {
 protected:
  /// Subject → how many different events (webhook-ids) the webhook got
  /// with it. A repeat of one event (a 2xx not yet recorded when the daemon
  /// stopped) is the contract's at-least-once and carries the same id; a
  /// message sent again as a new event has another id.
  std::map<std::string, int> Subjects() const {
    std::map<std::string, std::set<std::string>> ids;
    for (const auto& r : receiver_.Requests()) {
      ids[r.Json()["message"]["subject"].get<std::string>()].insert(r.Header("webhook-id"));
    }
    std::map<std::string, int> out;
    for (const auto& [subject, set] : ids) out[subject] = static_cast<int>(set.size());
    return out;
  }

  /// Waits until `subject` has reached the webhook.
  void WaitForSubject(const std::string& subject) {
    for (size_t n = receiver_.count() + 1; Subjects().count(subject) == 0; ++n) {
      ASSERT_TRUE(receiver_.WaitFor(n, seconds(30))) << "never got " << subject << "\n" << daemon_.Log();
    }
  }

  /// Starts on an empty folder and delivers three messages: one with a
  /// Message-ID, one without, one whose Message-ID a different message
  /// will share. Returns the folder's UIDVALIDITY.
  uint32_t DeliverThree(const std::string& start_from = "all") {
    ImapClient imap(dovecot_);
    EXPECT_TRUE(imap.CreateFolder("alice", kFolder).ok());
    AccountSpec account;
    account.folders = {kFolder};
    account.start_from = start_from;
    StartDaemon(account);
    WaitIdle();
    for (const std::string& m : delivered_) EXPECT_TRUE(imap.Append("alice", kFolder, m).ok());
    WaitForSubject("delivered 1");
    WaitForSubject("delivered 2 (no id)");
    WaitForSubject("delivered 3 (shared id)");
    auto status = imap.Status("alice", kFolder);
    EXPECT_TRUE(status.ok());
    return status.ok() ? status->uidvalidity : 0;
  }

  /// Deletes and creates the folder again; the new UIDVALIDITY.
  uint32_t Recreate() {
    ImapClient imap(dovecot_);
    EXPECT_TRUE(imap.DeleteFolder("alice", kFolder).ok());
    EXPECT_TRUE(imap.CreateFolder("alice", kFolder).ok());
    auto status = imap.Status("alice", kFolder);
    EXPECT_TRUE(status.ok());
    return status.ok() ? status->uidvalidity : 0;
  }

  /// The recreated folder's contents: the delivered three (byte for byte,
  /// in another order) mixed with three never delivered — one with a
  /// Message-ID, one without, one sharing delivered 3's Message-ID with
  /// another size.
  void FillRecreated() {
    ImapClient imap(dovecot_);
    for (const std::string& m : {delivered_[1], Message("new 1", "<new1@test>", "never delivered"), delivered_[2],
                                 Message("new 2 (shared id)", "<shared@test>", "another message, another size"),
                                 delivered_[0], Message("new 3 (no id)", "", "no Message-ID either")}) {
      EXPECT_TRUE(imap.Append("alice", kFolder, m).ok());
    }
  }

  /// After the change: the three new ones arrive; a sentinel appended after
  /// them arrives too (processed after every message of the recreated
  /// folder), and by then nothing delivered before came again.
  void ExpectOnlyTheNewOnes() {
    WaitForSubject("new 1");
    WaitForSubject("new 2 (shared id)");
    WaitForSubject("new 3 (no id)");
    ImapClient imap(dovecot_);
    EXPECT_TRUE(imap.Append("alice", kFolder, Message("sentinel", "<sentinel@test>", "last")).ok());
    WaitForSubject("sentinel");
    const std::map<std::string, int> want = {
        {"delivered 1", 1}, {"delivered 2 (no id)", 1}, {"delivered 3 (shared id)", 1},
        {"new 1", 1},       {"new 2 (shared id)", 1},   {"new 3 (no id)", 1},
        {"sentinel", 1}};
    EXPECT_EQ(Subjects(), want) << daemon_.Log();
    for (const auto& r : receiver_.Requests()) EXPECT_TRUE(VerifyStandardWebhookSignature(kTestWebhookSecret, r));
  }

  const std::vector<std::string> delivered_ = {
      Message("delivered 1", "<d1@test>", "first"),
      Message("delivered 2 (no id)", "", "second, without a Message-ID"),
      Message("delivered 3 (shared id)", "<shared@test>", "third"),
  };
};

TEST_F(RecreatedFolderTest, WhileStoppedOnlyTheUndeliveredAreSent) {
  const uint32_t before = DeliverThree();
  MH_ASSERT_OK_AND_ASSIGN(int status, daemon_.Terminate());
  EXPECT_EQ(status, 0);
  const uint32_t after = Recreate();
  ASSERT_NE(after, before) << "the server kept the UIDVALIDITY: nothing is tested";
  FillRecreated();
  MH_ASSERT_OK(daemon_.Start());
  ExpectOnlyTheNewOnes();
  // One line for the change, with its counts: the whole new folder matched
  // at start-up (3 delivered, 3 not).
  EXPECT_TRUE(daemon_.WaitForLog("imap.uidvalidity_changed", seconds(1)));
  EXPECT_NE(daemon_.Log().find("old=" + std::to_string(before) + " new=" + std::to_string(after) +
                               " matched=3 new_messages=3"),
            std::string::npos)
      << daemon_.Log();
}

// start_from only decides a folder seen for the first time; a change is
// matched the same way (before, `new` lost the three undelivered and `all`
// sent the delivered three again).
TEST_F(RecreatedFolderTest, WithStartFromNewTheUndeliveredAreNotSkipped) {
  const uint32_t before = DeliverThree("new");
  MH_ASSERT_OK_AND_ASSIGN(int status, daemon_.Terminate());
  EXPECT_EQ(status, 0);
  ASSERT_NE(Recreate(), before) << "the server kept the UIDVALIDITY: nothing is tested";
  FillRecreated();
  MH_ASSERT_OK(daemon_.Start());
  ExpectOnlyTheNewOnes();
}

TEST_F(RecreatedFolderTest, WhileRunningOnlyTheUndeliveredAreSent) {
  const uint32_t before = DeliverThree();
  const size_t from = daemon_.LogMark();
  const uint32_t after = Recreate();
  ASSERT_NE(after, before) << "the server kept the UIDVALIDITY: nothing is tested";
  // Filled after the daemon saw the new UIDVALIDITY (its folder empty, or
  // partly filled): the messages are matched as they arrive.
  ASSERT_TRUE(daemon_.WaitForLog("new=" + std::to_string(after), seconds(60), from)) << daemon_.Log();
  FillRecreated();
  ExpectOnlyTheNewOnes();
  EXPECT_NE(daemon_.Log().find("imap.message_matched"), std::string::npos) << daemon_.Log();
}

}  // namespace
}  // namespace mailhook::testsupport
