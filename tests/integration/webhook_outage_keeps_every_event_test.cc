// A webhook that is down while 500 messages arrive: the events wait in the
// store, and every one is delivered exactly once when it comes back.

#include <map>

#include "pipeline_fixture.h"

namespace mailhook::testsupport {
namespace {

TEST_F(PipelineTest, FiveHundredMessagesSurviveAnOutage) {
  constexpr int kMessages = 500;
  receiver_.SetDefaultResponse({503, {}, "", milliseconds(0)});
  // Long enough that nothing becomes a dead letter during the outage.
  std::string schedule = "retry_schedule: [5s";
  for (int i = 0; i < 59; ++i) schedule += ", 5s";
  StartDaemon({}, schedule + "]");
  WaitIdle();
  ImapClient imap(dovecot_);
  std::string base = SampleMessage("plain_utf8.eml");
  for (int i = 0; i < kMessages; ++i) {
    std::string msg = "X-Seq: " + std::to_string(i) + "\n" + base;
    MH_ASSERT_OK(imap.Append("alice", "INBOX", msg));
  }
  // Every message is durable in the outbox before the receiver comes back.
  ASSERT_TRUE(daemon_.WaitForLog("uid=" + std::to_string(kMessages) + " event=", seconds(120))) << daemon_.Log();

  receiver_.SetDefaultResponse({200, {}, "", milliseconds(0)});
  std::map<uint32_t, int> ok_per_uid;
  auto deadline = std::chrono::steady_clock::now() + seconds(120);
  size_t seen = receiver_.count();
  while (ok_per_uid.size() < kMessages && std::chrono::steady_clock::now() < deadline) {
    receiver_.WaitFor(seen + 1, seconds(10));
    auto requests = receiver_.Requests();
    seen = requests.size();
    ok_per_uid.clear();
    for (const auto& r : requests)
      if (r.answered_status == 200) ++ok_per_uid[r.Json()["uid"].get<uint32_t>()];
  }
  ASSERT_EQ(ok_per_uid.size(), static_cast<size_t>(kMessages)) << daemon_.Log().substr(0, 4000);
  for (const auto& [uid, n] : ok_per_uid) EXPECT_EQ(n, 1) << "uid " << uid << " delivered " << n << " times";
}

}  // namespace
}  // namespace mailhook::testsupport
