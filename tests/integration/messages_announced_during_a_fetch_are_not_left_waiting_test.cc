// Messages that arrive while the watcher is busy with another one are
// announced (* N EXISTS) in the responses to its FETCH commands, and IDLE
// does not repeat them: the watcher must look again before it idles, or they
// wait for an unrelated push (Dovecot: imap_idle_notify_interval, 2 minutes)
// or idle_refresh (25 minutes by default).

#include "pipeline_fixture.h"

namespace mailhook::testsupport {
namespace {

std::string Message(const std::string& subject) {
  return "From: ann@example.com\r\nTo: support@example.com\r\nSubject: " + subject +
         "\r\nContent-Type: text/plain\r\n\r\nbody of " + subject + "\r\n";
}

TEST_F(PipelineTest, QuickMessagesAfterASlowOneAreDeliveredWithoutWaitingInIdle) {
  // The slow message holds the watcher for 5 s after its metadata FETCH;
  // its text body is fetched after that, and that response carries the
  // EXISTS of the quick ones.
  daemon_.SetEnv("MAILHOOK_TEST_FAULT_SUBJECT", "slow one");
  daemon_.SetEnv("MAILHOOK_TEST_FAULT_ACTION", "sleep:5000");
  StartDaemon({.extra = "idle_refresh: 25m"});
  WaitIdle();
  ImapClient imap(dovecot_);
  size_t mark = daemon_.LogMark();
  MH_ASSERT_OK_AND_ASSIGN(uint32_t slow, imap.Append("alice", "INBOX", Message("slow one")));
  (void)slow;
  ASSERT_TRUE(daemon_.WaitForLog("test.fault", seconds(20), mark)) << daemon_.Log();
  // Inside the window: the watcher is asleep in the fault point now.
  for (int i = 0; i < 10; ++i) {
    MH_ASSERT_OK_AND_ASSIGN(uint32_t quick, imap.Append("alice", "INBOX", Message("quick " + std::to_string(i))));
    (void)quick;
  }
  const bool in_window = daemon_.Log().find("imap.message account=test folder=INBOX", mark) == std::string::npos;
  ASSERT_TRUE(in_window) << "the slow message finished before the quick ones were appended\n" << daemon_.Log();
  // Well below Dovecot's 2-minute keepalive push and the 25-minute refresh.
  EXPECT_TRUE(receiver_.WaitFor(11, seconds(30))) << receiver_.count() << " events\n" << daemon_.Log();
}

}  // namespace
}  // namespace mailhook::testsupport
