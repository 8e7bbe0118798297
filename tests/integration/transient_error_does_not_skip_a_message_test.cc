// A transient failure while a message is extracted (a busy store, a hiccup on
// the way) is retried: the message is delivered by a later session and the
// watermark never moves past it. Only a message the server expunged while it
// was being read is skipped. The failure is the daemon's test-only fault point
// (MAILHOOK_TEST_FAULT_ACTION=transient_once: the first extraction of the
// message fails once with a retry-now store error).

#include "pipeline_fixture.h"

namespace mailhook::testsupport {
namespace {

std::string Message(const std::string& subject) {
  return "From: Ann <ann@example.com>\r\nTo: support@example.com\r\nSubject: " + subject +
         "\r\nMessage-ID: <transient@example.com>\r\nDate: Sun, 29 Nov 2026 10:00:00 +0000\r\n"
         "Content-Type: text/plain; charset=utf-8\r\n\r\nhello\r\n";
}

TEST_F(PipelineTest, TransientErrorDuringExtractionIsRetriedNotSkipped) {
  daemon_.SetEnv("MAILHOOK_TEST_FAULT_SUBJECT", "busy store");
  daemon_.SetEnv("MAILHOOK_TEST_FAULT_ACTION", "transient_once");
  StartDaemon();
  WaitIdle();
  ImapClient imap(dovecot_);
  MH_ASSERT_OK_AND_ASSIGN(uint32_t uid, imap.Append("alice", "INBOX", Message("busy store")));

  // The window was hit: the fault fired inside this message's extraction.
  ASSERT_TRUE(daemon_.WaitForLog(
      "test.fault account=test folder=INBOX uid=" + std::to_string(uid) + " action=transient_once", seconds(30)))
      << daemon_.Log();
  // A later session delivers it (a skipped message would never arrive).
  ASSERT_TRUE(receiver_.WaitFor(1, seconds(30))) << daemon_.Log();
  const nlohmann::json event = receiver_.Requests().front().Json();
  EXPECT_EQ(event["type"], "message.received");
  EXPECT_EQ(event["uid"], uid);
  EXPECT_EQ(daemon_.Log().find("imap.message_vanished"), std::string::npos) << daemon_.Log();
}

}  // namespace
}  // namespace mailhook::testsupport
