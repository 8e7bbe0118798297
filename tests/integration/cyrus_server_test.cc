// mailhook against a second real server, Cyrus IMAP 3.6 (DESIGN.md, "Other
// servers"): a message APPENDed to a Cyrus INBOX while mailhook IDLEs over
// implicit TLS (ca_file) arrives as a signed, contract-shaped event; Cyrus's
// bare `NO Login failed` (no [AUTHENTICATIONFAILED], RFC 5530) is still one
// clear login error and no exit.

#include <gtest/gtest.h>

#include <map>

#include "testsupport.h"

namespace mailhook::testsupport {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

size_t Count(const std::string& haystack, const std::string& needle) {
  size_t n = 0;
  for (size_t p = haystack.find(needle); p != std::string::npos; p = haystack.find(needle, p + 1)) ++n;
  return n;
}

class CyrusTest : public ::testing::Test {
 protected:
  void SetUp() override {
    MH_ASSERT_OK(cyrus_.Start());
    MH_ASSERT_OK(receiver_.Start());
  }

  /// Starts mailhook with `account_yaml` and one signed webhook.
  void StartDaemon(const std::string& account_yaml) {
    ConfigSpec cfg;
    cfg.state_dir = daemon_.state_dir();
    cfg.accounts.push_back(account_yaml);
    cfg.webhooks.push_back(WebhookYaml({"hook", receiver_.url(), kTestWebhookSecret, ""}));
    MH_ASSERT_OK(daemon_.WriteConfig(RenderConfig(cfg)));
    MH_ASSERT_OK(daemon_.Start());
  }

  ImapClient Imap() const { return ImapClient(cyrus_.host(), cyrus_.imap_port(), cyrus_.user_pairs()); }

  CyrusServer cyrus_;
  WebhookReceiver receiver_;
  MailhookProcess daemon_;
};

TEST_F(CyrusTest, AttachmentMessageBecomesSignedEvent) {
  AccountSpec account;  // alice, INBOX, tls: implicit with the test CA's ca_file
  // A refresh far above the wait below: only an IDLE push can deliver in time.
  account.extra = "idle_refresh: 25m";
  StartDaemon(AccountYaml(cyrus_, account));
  ASSERT_TRUE(daemon_.WaitForLog("imap.connected", seconds(20))) << daemon_.Log();
  // Cyrus's own view (proc/<pid> says "Idle"): mailhook's session is in IDLE
  // before the APPEND, so the event cannot come from the start-up catch-up.
  ASSERT_TRUE(cyrus_.WaitForIdleSessions("alice", 1, seconds(20))) << daemon_.Log();

  ImapClient imap = Imap();
  MH_ASSERT_OK_AND_ASSIGN(uint32_t uid, imap.Append("alice", "INBOX", SampleMessage("mixed_attachment.eml")));
  auto appended = std::chrono::steady_clock::now();
  MH_ASSERT_OK_AND_ASSIGN(FolderStatus status, imap.Status("alice", "INBOX"));

  // Cyrus without a working idled polls every 60 s: 15 s proves the push.
  ASSERT_TRUE(receiver_.WaitFor(1, seconds(15))) << daemon_.Log();
  auto latency = std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - appended);
  RecordProperty("append_to_webhook_ms", static_cast<int>(latency.count()));

  RecordedRequest req = receiver_.Requests()[0];
  EXPECT_EQ(req.method, "POST");
  EXPECT_TRUE(VerifyStandardWebhookSignature(kTestWebhookSecret, req));
  nlohmann::json e = req.Json();
  ASSERT_FALSE(e.is_discarded()) << req.body;
  EXPECT_EQ(e["type"], "message.received");
  EXPECT_EQ(e["id"], req.Header("webhook-id"));
  EXPECT_EQ(e["account"], "test");
  EXPECT_EQ(e["mailbox"], "INBOX");
  EXPECT_EQ(e["uid"], uid);
  EXPECT_EQ(e["uidvalidity"], status.uidvalidity);

  const nlohmann::json& m = e["message"];
  EXPECT_EQ(m["subject"], "Invoice November");
  ASSERT_EQ(m["from"].size(), 1u) << m.dump(2);
  EXPECT_EQ(m["from"][0]["name"], "Billing");
  EXPECT_EQ(m["from"][0]["address"], "billing@example.com");
  EXPECT_EQ(m["message_id"], "<mixed-1@example.com>");
  EXPECT_NE(m["text"].get<std::string>().find("Please find the invoice attached."), std::string::npos) << m.dump(2);
  // Cyrus uppercases BODYSTRUCTURE types and dispositions (DESIGN.md); the
  // event must still carry the contract's lowercase forms.
  ASSERT_EQ(m["attachments"].size(), 1u) << m.dump(2);
  const nlohmann::json& a = m["attachments"][0];
  EXPECT_EQ(a["part"], "2");
  EXPECT_EQ(a["filename"], "invoice.pdf");
  EXPECT_EQ(a["content_type"], "application/pdf");
  EXPECT_EQ(a["disposition"], "attachment");
  EXPECT_EQ(a["size"], kInvoicePdfSize);

  // Back in IDLE before the SIGTERM: a stop that lands inside a command (here
  // the IDLE that follows the catch-up) interrupts it, and the session then
  // ends without LOGOUT; that is the daemon's business, not this test's.
  ASSERT_TRUE(cyrus_.WaitForIdleSessions("alice", 1, seconds(20))) << daemon_.Log();
  MH_ASSERT_OK_AND_ASSIGN(int code, daemon_.Terminate());
  EXPECT_EQ(code, 0) << daemon_.Log();
  EXPECT_EQ(receiver_.count(), 1u);
}

TEST_F(CyrusTest, WrongPasswordIsOneLoginErrorAndNoExit) {
  AccountSpec account;
  std::string yaml = AccountYaml(cyrus_, account);
  // The builder writes the right password; replace it rather than add a
  // duplicate key.
  const std::string right = R"(password: "secret1")";
  if (size_t at = yaml.find(right); at != std::string::npos) {
    yaml.replace(at, right.size(), R"(password: "not-the-password")");
  }
  ASSERT_NE(yaml.find("not-the-password"), std::string::npos) << yaml;
  StartDaemon(yaml);

  ASSERT_TRUE(daemon_.WaitForLog("login failed", seconds(20))) << daemon_.Log();
  // A hot retry loop would log many more within a few seconds.
  EXPECT_FALSE(daemon_.WaitForExit(seconds(5)).has_value()) << "must not exit on a bad password";
  std::string log = daemon_.Log();
  EXPECT_EQ(Count(log, "login failed"), 1u) << log;
  EXPECT_NE(log.find("Login failed"), std::string::npos) << "Cyrus's own text should be quoted: " << log;
  EXPECT_EQ(log.find("not-the-password"), std::string::npos) << "the password must never be logged";
  EXPECT_EQ(log.find("imap.connected"), std::string::npos) << log;
  MH_ASSERT_OK_AND_ASSIGN(int code, daemon_.Terminate());
  EXPECT_EQ(code, 0) << log;
}

// Cyrus sends the whole BODYSTRUCTURE of a part bomb (Dovecot caps it at
// 10,000 parts itself): for 300,000 parts that is ~20 MB, past the metadata
// fetch budget. The bomb's batch fails, the message is tried alone, then read
// whole and parsed here under the part cap; the messages beside it arrive.
TEST_F(CyrusTest, PartBombOverTheMetaBudgetIsReadWholeAndTheFolderMovesOn) {
  AccountSpec account;
  StartDaemon(AccountYaml(cyrus_, account));
  ASSERT_TRUE(daemon_.WaitForLog("imap.connected", seconds(20))) << daemon_.Log();
  std::string bomb =
      "From: mallory@example.com\r\nTo: alice@example.com\r\nSubject: part bomb\r\n"
      "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n";
  for (int i = 0; i < 300000; ++i) bomb += "--b\r\n\r\n";
  bomb += "--b--\r\n";
  ImapClient imap = Imap();
  MH_ASSERT_OK_AND_ASSIGN(uint32_t before, imap.Append("alice", "INBOX", SampleMessage("plain_utf8.eml")));
  MH_ASSERT_OK_AND_ASSIGN(uint32_t bomb_uid, imap.Append("alice", "INBOX", bomb));
  MH_ASSERT_OK_AND_ASSIGN(uint32_t after, imap.Append("alice", "INBOX", SampleMessage("latin1_qp.eml")));

  std::map<uint32_t, nlohmann::json> got;
  for (size_t n = 1; got.size() < 3; ++n) {
    ASSERT_TRUE(receiver_.WaitFor(n, seconds(90))) << daemon_.Log();
    for (const auto& r : receiver_.Requests()) got[r.Json()["uid"].get<uint32_t>()] = r.Json();
  }
  EXPECT_EQ(got[before]["type"], "message.received");
  EXPECT_EQ(got[after]["type"], "message.received");
  const nlohmann::json& b = got[bomb_uid];
  ASSERT_EQ(b["type"], "message.received") << b.dump().substr(0, 1000);
  ASSERT_TRUE(b["message"]["truncated"].is_object()) << b["message"].dump().substr(0, 1000);
  EXPECT_GE(b["message"]["attachments"].size() + b["message"]["truncated"]["attachments_omitted"].get<size_t>(),
            299999u);
  // The window this test aims at: the budget refused the structure, and the
  // message was then read whole.
  const std::string log = daemon_.Log();
  EXPECT_NE(log.find("imap.message_failed account=test folder=INBOX uid=" + std::to_string(bomb_uid)),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("passed 8388608 bytes"), std::string::npos) << log;
  EXPECT_NE(log.find("imap.message_read_whole account=test folder=INBOX uid=" + std::to_string(bomb_uid)),
            std::string::npos)
      << log;
  const long peak_kib = daemon_.StatusKiB("VmHWM");
#ifdef __SANITIZE_ADDRESS__
  const long bound_kib = 600 * 1024;  // ASan's shadow memory and quarantine
#else
  const long bound_kib = 200 * 1024;
#endif
  EXPECT_LT(peak_kib, bound_kib) << "peak RSS " << peak_kib / 1024 << " MiB";
}

}  // namespace
}  // namespace mailhook::testsupport
