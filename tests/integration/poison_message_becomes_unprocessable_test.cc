// A message that fails extraction every time — by an error or by crashing the
// process — becomes a message.unprocessable event after limits.max_attempts,
// and the folder moves on: the messages around it are delivered.
// The poison is the daemon's test-only fault point (MAILHOOK_TEST_FAULT_*).

#include <map>

#include "pipeline_fixture.h"

namespace mailhook::testsupport {
namespace {

std::string Message(const std::string& subject) {
  return "From: Ann <ann@example.com>\r\nTo: support@example.com\r\nSubject: " + subject + "\r\nMessage-ID: <" +
         subject.substr(0, 6) +
         "@example.com>\r\nDate: Sun, 29 Nov 2026 10:00:00 +0000\r\n"
         "Content-Type: text/plain; charset=utf-8\r\n\r\nhello\r\n";
}

// uid -> the 2xx-answered event for it.
std::map<uint32_t, nlohmann::json> DeliveredByUid(const WebhookReceiver& receiver) {
  std::map<uint32_t, nlohmann::json> out;
  for (const auto& r : receiver.Requests()) {
    if (r.answered_status == 200) out[r.Json()["uid"].get<uint32_t>()] = r.Json();
  }
  return out;
}

size_t Count(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

TEST_F(PipelineTest, MessageThatAlwaysFailsBecomesUnprocessableAndTheFolderMovesOn) {
  daemon_.SetEnv("MAILHOOK_TEST_FAULT_SUBJECT", "poison pill");
  StartDaemon();
  WaitIdle();
  ImapClient imap(dovecot_);
  MH_ASSERT_OK_AND_ASSIGN(uint32_t before, imap.Append("alice", "INBOX", Message("before the pill")));
  MH_ASSERT_OK_AND_ASSIGN(uint32_t poison, imap.Append("alice", "INBOX", Message("poison pill")));
  MH_ASSERT_OK_AND_ASSIGN(uint32_t after, imap.Append("alice", "INBOX", Message("after the pill")));

  std::map<uint32_t, nlohmann::json> got;
  for (size_t n = 1; got.size() < 3; ++n) {
    ASSERT_TRUE(receiver_.WaitFor(n, seconds(60))) << daemon_.Log();
    got = DeliveredByUid(receiver_);
  }
  EXPECT_EQ(got[before]["type"], "message.received");
  EXPECT_EQ(got[after]["type"], "message.received");
  const nlohmann::json& u = got[poison];
  EXPECT_EQ(u["type"], "message.unprocessable") << u.dump();
  EXPECT_EQ(u["attempts"], 3);
  EXPECT_NE(u["reason"].get<std::string>().find("injected fault"), std::string::npos) << u.dump();
  EXPECT_EQ(u["message"]["subject"], "poison pill");
  EXPECT_EQ(u["message"]["message_id"], "<poison@example.com>");
  EXPECT_EQ(u["account"], "test");
  EXPECT_EQ(u["uid"], poison);
  EXPECT_TRUE(u["id"].get<std::string>().starts_with("evt_"));
  // Exactly three attempts failed, each counted, the last one named.
  EXPECT_EQ(Count(daemon_.Log(), "test.fault account=test folder=INBOX uid=" + std::to_string(poison)), 3u)
      << daemon_.Log();
  EXPECT_TRUE(daemon_.WaitForLog("imap.message_unprocessable", seconds(1))) << daemon_.Log();
}

TEST_F(PipelineTest, MessageThatCrashesTheProcessIsCountedAcrossRestarts) {
  daemon_.SetEnv("MAILHOOK_TEST_FAULT_SUBJECT", "poison pill");
  daemon_.SetEnv("MAILHOOK_TEST_FAULT_ACTION", "abort");
  StartDaemon();
  WaitIdle();
  ImapClient imap(dovecot_);
  MH_ASSERT_OK_AND_ASSIGN(uint32_t poison, imap.Append("alice", "INBOX", Message("poison pill")));
  MH_ASSERT_OK_AND_ASSIGN(uint32_t after, imap.Append("alice", "INBOX", Message("after the pill")));

  // Play the supervisor (a container runtime restarts a dead process): each
  // death must be the fault point's abort (SIGABRT: 128 + 6), which proves
  // the crash happened inside the message's extraction.
  int crashes = 0;
  const auto deadline = std::chrono::steady_clock::now() + seconds(180);
  while (DeliveredByUid(receiver_).size() < 2) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << daemon_.Log();
    std::optional<int> status = daemon_.WaitForExit(milliseconds(200));
    if (!status) {  // running: wait for an event instead
      (void)receiver_.WaitFor(receiver_.count() + 1, milliseconds(200));
      continue;
    }
    ASSERT_EQ(*status, 134) << daemon_.Log();
    ASSERT_NE(daemon_.Log().find("test.fault account=test folder=INBOX uid=" + std::to_string(poison)),
              std::string::npos)
        << daemon_.Log();
    ++crashes;
    ASSERT_LE(crashes, 5) << "the poison message was not given up on\n" << daemon_.Log();
    MH_ASSERT_OK(daemon_.Start());
  }
  // Three attempts of the message alone; a fourth crash happens when the two
  // messages were first fetched in one batch (a crash there blames neither).
  EXPECT_GE(crashes, 3);
  EXPECT_LE(crashes, 4);
  std::map<uint32_t, nlohmann::json> got = DeliveredByUid(receiver_);
  EXPECT_EQ(got[poison]["type"], "message.unprocessable");
  EXPECT_EQ(got[poison]["attempts"], 3);
  EXPECT_NE(got[poison]["reason"].get<std::string>().find("crash"), std::string::npos) << got[poison].dump();
  EXPECT_EQ(got[after]["type"], "message.received");
}

}  // namespace
}  // namespace mailhook::testsupport
