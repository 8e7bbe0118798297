// A message appended to a watched folder arrives at the webhook as a
// contract-shaped, signed event; two folders of one account are both watched.

#include <algorithm>
#include <map>

#include "pipeline_fixture.h"

namespace mailhook::testsupport {
namespace {

TEST_F(PipelineTest, AttachmentMessageBecomesContractShapedSignedEvent) {
  StartDaemon();
  WaitIdle();
  ImapClient imap(dovecot_);
  MH_ASSERT_OK_AND_ASSIGN(uint32_t uid, imap.Append("alice", "INBOX", SampleMessage("mixed_attachment.eml")));
  MH_ASSERT_OK_AND_ASSIGN(FolderStatus status, imap.Status("alice", "INBOX"));

  ASSERT_TRUE(receiver_.WaitFor(1, seconds(20))) << daemon_.Log();
  RecordedRequest req = receiver_.Requests()[0];
  EXPECT_EQ(req.method, "POST");
  EXPECT_EQ(req.Header("content-type"), "application/json");
  EXPECT_EQ(req.Header("user-agent").rfind("mailhook/", 0), 0u);
  EXPECT_TRUE(VerifyStandardWebhookSignature(kTestWebhookSecret, req));

  nlohmann::json e = req.Json();
  ASSERT_FALSE(e.is_discarded()) << req.body;
  EXPECT_EQ(e["type"], "message.received");
  EXPECT_EQ(e["schema"], 1);
  EXPECT_EQ(e["id"], req.Header("webhook-id"));
  EXPECT_EQ(e["id"].get<std::string>().rfind("evt_", 0), 0u);
  EXPECT_EQ(e["account"], "test");
  EXPECT_EQ(e["mailbox"], "INBOX");
  EXPECT_EQ(e["uid"], uid);
  EXPECT_EQ(e["uidvalidity"], status.uidvalidity);
  ASSERT_TRUE(e["created_at"].is_string());

  const nlohmann::json& m = e["message"];
  for (const char* key : {"message_id", "in_reply_to", "references", "date", "subject", "from", "to", "cc", "reply_to",
                          "flags", "size", "text", "html", "attachments"}) {
    EXPECT_TRUE(m.contains(key)) << "missing " << key << " in " << m.dump();
  }
  ASSERT_EQ(m["attachments"].size(), 1u) << m.dump(2);
  const nlohmann::json& a = m["attachments"][0];
  EXPECT_EQ(a["part"], "2");
  EXPECT_EQ(a["filename"], "invoice.pdf");
  EXPECT_EQ(a["content_type"], "application/pdf");
  EXPECT_EQ(a["disposition"], "attachment");
  EXPECT_EQ(a["size"], kInvoicePdfSize);
  EXPECT_FALSE(a.contains("content_base64")) << "metadata mode must not send content";
  EXPECT_TRUE(m["text"].is_string());
  EXPECT_GT(m["size"].get<int64_t>(), 0);
}

TEST_F(PipelineTest, AlternativeAndLatin1MessagesAreDecoded) {
  StartDaemon();
  WaitIdle();
  ImapClient imap(dovecot_);
  MH_ASSERT_OK(imap.Append("alice", "INBOX", SampleMessage("alternative.eml")));
  MH_ASSERT_OK_AND_ASSIGN(uint32_t uid2, imap.Append("alice", "INBOX", SampleMessage("latin1_qp.eml")));
  ASSERT_TRUE(receiver_.WaitFor(2, seconds(20))) << daemon_.Log();

  auto events = Events();
  std::sort(events.begin(), events.end(), [](auto& x, auto& y) { return x["uid"] < y["uid"]; });
  const nlohmann::json& alt = events[0]["message"];
  EXPECT_NE(alt["text"].get<std::string>().find("ZX-998877"), std::string::npos);
  EXPECT_NE(alt["html"].get<std::string>().find("<b>1234</b>"), std::string::npos);
  EXPECT_EQ(alt["references"], nlohmann::json::array({"<root@example.com>", "<prev@example.com>"}));

  const nlohmann::json& latin = events[1]["message"];
  EXPECT_EQ(events[1]["uid"], uid2);
  EXPECT_EQ(latin["subject"], "Résumé für François");
  EXPECT_EQ(latin["from"][0]["name"], "André Müller");
  EXPECT_NE(latin["text"].get<std::string>().find("résumé de François"), std::string::npos);
}

TEST_F(PipelineTest, TwoFoldersOfOneAccountAreBothWatched) {
  ImapClient imap(dovecot_);
  MH_ASSERT_OK(imap.CreateFolder("alice", "Urgent"));
  AccountSpec account;
  account.folders = {"INBOX", "Urgent"};
  StartDaemon(account);
  WaitIdle(2);

  MH_ASSERT_OK_AND_ASSIGN(uint32_t a, imap.Append("alice", "INBOX", SampleMessage("plain_utf8.eml")));
  MH_ASSERT_OK_AND_ASSIGN(uint32_t b, imap.Append("alice", "Urgent", SampleMessage("latin1_qp.eml")));
  ASSERT_TRUE(receiver_.WaitFor(2, seconds(20))) << daemon_.Log();

  std::map<std::string, nlohmann::json> by_mailbox;
  for (const auto& e : Events()) by_mailbox[e["mailbox"]] = e;
  ASSERT_EQ(by_mailbox.size(), 2u);
  EXPECT_EQ(by_mailbox["INBOX"]["uid"], a);
  EXPECT_EQ(by_mailbox["INBOX"]["message"]["subject"], "Grüße aus Köln");
  EXPECT_EQ(by_mailbox["Urgent"]["uid"], b);
  EXPECT_NE(by_mailbox["INBOX"]["id"], by_mailbox["Urgent"]["id"]);
}

TEST_F(PipelineTest, StartFromNewDoesNotReplayOldMessagesAndSigtermExitsZero) {
  ImapClient imap(dovecot_);
  MH_ASSERT_OK(imap.Append("alice", "INBOX", SampleMessage("plain_utf8.eml")));
  AccountSpec account;
  account.start_from = "new";
  StartDaemon(account);
  WaitIdle();
  MH_ASSERT_OK_AND_ASSIGN(uint32_t uid, imap.Append("alice", "INBOX", SampleMessage("latin1_qp.eml")));
  ASSERT_TRUE(receiver_.WaitFor(1, seconds(20))) << daemon_.Log();
  EXPECT_EQ(receiver_.Requests()[0].Json()["uid"], uid);
  // SIGTERM inside a command abandons the connection (its answer is half
  // read); between commands it ends with LOGOUT. Wait until the message was
  // delivered (the worker is done with it) and the watch connection is in
  // IDLE, so the test checks the LOGOUT path every time.
  const size_t processed = daemon_.Log().find("imap.message ");
  ASSERT_NE(processed, std::string::npos) << daemon_.Log();
  ASSERT_TRUE(daemon_.WaitForLog("delivery.ok", seconds(20), processed)) << daemon_.Log();
  ASSERT_TRUE(daemon_.WaitForLog("imap.idle", seconds(20))) << daemon_.Log();

  MH_ASSERT_OK_AND_ASSIGN(int code, daemon_.Terminate());
  EXPECT_EQ(code, 0) << daemon_.Log();
  EXPECT_NE(daemon_.Log().find("imap.logout"), std::string::npos) << "sessions must be logged out";
  EXPECT_EQ(receiver_.count(), 1u) << "the old message must not be replayed";
}

}  // namespace
}  // namespace mailhook::testsupport
