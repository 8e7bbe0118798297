// A part bomb — a small multipart with hundreds of thousands of empty parts —
// APPENDed between two ordinary messages: the ordinary ones are delivered,
// the bomb gets its event marked truncated, and the daemon's memory stays
// bounded (issue 7: before, the folder stopped for good).

#include <map>

#include "pipeline_fixture.h"

namespace mailhook::testsupport {
namespace {

std::string Plain(const std::string& subject) {
  return "From: ann@example.com\r\nTo: support@example.com\r\nSubject: " + subject +
         "\r\nContent-Type: text/plain\r\n\r\nbody of " + subject + "\r\n";
}

// `parts` empty parts, ~7 bytes each (300,000 parts: ~2 MB; Dovecot's
// BODYSTRUCTURE of it is ~20 MB).
std::string PartBomb(size_t parts) {
  std::string m =
      "From: mallory@example.com\r\nTo: support@example.com\r\nSubject: part bomb\r\n"
      "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n";
  m.reserve(m.size() + parts * 7 + 16);
  for (size_t i = 0; i < parts; ++i) m += "--b\r\n\r\n";
  m += "--b--\r\n";
  return m;
}

TEST_F(PipelineTest, PartBombBetweenTwoMessagesIsTruncatedAndTheOthersAreDelivered) {
  StartDaemon();
  WaitIdle();
  ImapClient imap(dovecot_);
  MH_ASSERT_OK_AND_ASSIGN(uint32_t before, imap.Append("alice", "INBOX", Plain("before the bomb")));
  MH_ASSERT_OK_AND_ASSIGN(uint32_t bomb, imap.Append("alice", "INBOX", PartBomb(300000)));
  MH_ASSERT_OK_AND_ASSIGN(uint32_t after, imap.Append("alice", "INBOX", Plain("after the bomb")));

  std::map<uint32_t, nlohmann::json> got;
  for (size_t n = 1; got.size() < 3; ++n) {
    ASSERT_TRUE(receiver_.WaitFor(n, seconds(120))) << daemon_.Log();
    for (const auto& r : receiver_.Requests()) got[r.Json()["uid"].get<uint32_t>()] = r.Json();
  }
  EXPECT_EQ(got[before]["message"]["subject"], "before the bomb");
  EXPECT_EQ(got[after]["message"]["subject"], "after the bomb");
  const nlohmann::json& b = got[bomb];
  ASSERT_EQ(b["type"], "message.received") << b.dump().substr(0, 2000);
  EXPECT_EQ(b["message"]["subject"], "part bomb");
  ASSERT_TRUE(b["message"]["truncated"].is_object()) << b["message"].dump().substr(0, 2000);
  // 1,000 parts listed (limits.max_parts), the rest counted.
  // (the first empty part is the text body, the others attachments)
  const size_t listed = b["message"]["attachments"].size();
  EXPECT_GE(listed + b["message"]["truncated"]["attachments_omitted"].get<size_t>(), 299999u);
  EXPECT_LE(listed, 1000u);

  const long peak_kib = daemon_.StatusKiB("VmHWM");
  ASSERT_GT(peak_kib, 0);
#ifdef __SANITIZE_ADDRESS__
  const long bound_kib = 600 * 1024;  // ASan's shadow memory and quarantine
#else
  const long bound_kib = 200 * 1024;
#endif
  EXPECT_LT(peak_kib, bound_kib) << "peak RSS " << peak_kib / 1024 << " MiB";
  RecordProperty("peak_rss_kib", static_cast<int>(peak_kib));
}

}  // namespace
}  // namespace mailhook::testsupport
