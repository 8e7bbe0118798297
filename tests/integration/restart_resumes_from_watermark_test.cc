// kill -9 with events not yet delivered, then start again: every message is
// delivered, and any repeat carries the same webhook-id.

#include <map>
#include <set>

#include "pipeline_fixture.h"

namespace mailhook::testsupport {
namespace {

TEST_F(PipelineTest, Kill9WithUndeliveredEventsLosesNothing) {
  // The receiver fails everything at first: events pile up in the outbox.
  receiver_.SetDefaultResponse({503, {}, "", milliseconds(0)});
  StartDaemon({}, "retry_schedule: [1s, 1s, 1s, 1s, 1s, 1s, 1s, 1s, 1s, 1s]");
  WaitIdle();
  ImapClient imap(dovecot_);
  std::set<uint32_t> appended;
  for (const char* sample : {"plain_utf8.eml", "latin1_qp.eml", "alternative.eml"}) {
    MH_ASSERT_OK_AND_ASSIGN(uint32_t uid, imap.Append("alice", "INBOX", SampleMessage(sample)));
    appended.insert(uid);
  }
  // All three were attempted (so they are durable in the outbox), none succeeded.
  ASSERT_TRUE(receiver_.WaitFor(3, seconds(20))) << daemon_.Log();
  daemon_.Kill9();

  // One more arrives while mailhook is dead.
  MH_ASSERT_OK_AND_ASSIGN(uint32_t late, imap.Append("alice", "INBOX", SampleMessage("mixed_attachment.eml")));
  appended.insert(late);

  receiver_.SetDefaultResponse({200, {}, "", milliseconds(0)});
  size_t before = receiver_.count();
  MH_ASSERT_OK(daemon_.Restart());

  // Wait until every appended UID got a 200.
  std::map<uint32_t, std::string> ok_ids;
  for (size_t n = before + appended.size(); ok_ids.size() < appended.size(); ++n) {
    ASSERT_TRUE(receiver_.WaitFor(n, seconds(30))) << daemon_.Log();
    ok_ids.clear();
    for (const auto& r : receiver_.Requests())
      if (r.answered_status == 200) ok_ids[r.Json()["uid"].get<uint32_t>()] = r.Header("webhook-id");
  }
  std::set<uint32_t> delivered;
  for (const auto& [uid, id] : ok_ids) delivered.insert(uid);
  EXPECT_EQ(delivered, appended);

  // Every request for one UID, before or after the crash, carried one id.
  std::map<uint32_t, std::set<std::string>> ids_per_uid;
  for (const auto& r : receiver_.Requests()) {
    ids_per_uid[r.Json()["uid"].get<uint32_t>()].insert(r.Header("webhook-id"));
    EXPECT_TRUE(VerifyStandardWebhookSignature(kTestWebhookSecret, r));
  }
  for (const auto& [uid, ids] : ids_per_uid) EXPECT_EQ(ids.size(), 1u) << "uid " << uid;
}

}  // namespace
}  // namespace mailhook::testsupport
