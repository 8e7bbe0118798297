// The smtp target end to end (issue #12, "Acceptance"): the real daemon
// watches alice's INBOX of a test Dovecot and answers through a private,
// real Postfix (STARTTLS + AUTH by Dovecot, delivery by LMTP into the same
// Dovecot). The reply is fetched back from bob's INBOX over IMAP and parsed
// with `mailhook parse`; Postfix's policy server makes it answer 451 then
// 250 (delivered once), 550 (dead letter), and a wrong password gives 535
// (one clear error, retried no sooner than the operator delay: no hot loop).
// "Nothing arrives" is checked only after the daemon logged its decision.
// Postfix needs root: skipped with the reason otherwise.

#include <chrono>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "testsupport.h"
#include "util/base64.h"

namespace mailhook::testsupport {
namespace {

using std::chrono::seconds;

constexpr const char* kReplyMarker = "\r\nAuto-Submitted: auto-replied\r\n";

size_t Count(const std::string& haystack, const std::string& needle) {
  size_t n = 0;
  for (size_t at = haystack.find(needle); at != std::string::npos; at = haystack.find(needle, at + needle.size())) ++n;
  return n;
}

// A message from bob to alice (CRLF added by Append).
std::string FromBob(const std::string& message_id, const std::string& subject, const std::string& extra_headers = "") {
  return "From: Bob <bob@example.test>\n"
         "To: alice@example.test\n"
         "Subject: " +
         subject +
         "\n"
         "Date: Mon, 30 Nov 2026 03:00:00 +0000\n"
         "Message-ID: " +
         message_id + "\n" + extra_headers +
         "MIME-Version: 1.0\n"
         "Content-Type: text/plain; charset=utf-8\n"
         "Content-Transfer-Encoding: 8bit\n"
         "\n"
         "Bitte um Rückruf.\n";
}

constexpr const char* kReplyMode =
    "mode: reply, subject: \"Re: {{message.subject}}\", "
    "text: \"We received your message \\\"{{message.subject}}\\\". Reference: {{id}}\"";

class SmtpTargetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::string why = PostfixServer::WhyCannotRun(); !why.empty()) GTEST_SKIP() << why;
    MH_ASSERT_OK(dovecot_.Start(PostfixServer::DovecotOptionsFor(dovecot_)));
    MH_ASSERT_OK(postfix_.Start(dovecot_));
  }

  // The daemon watching alice's INBOX with the smtp target `ack` replying as alice.
  void StartDaemon(const std::string& password = "", const std::string& mode = kReplyMode) {
    ConfigSpec cfg;
    cfg.state_dir = daemon_.state_dir();
    cfg.http_listen = "127.0.0.1:0";
    AccountSpec account;
    account.name = "alice";
    cfg.accounts.push_back(AccountYaml(dovecot_, account));
    // The certificate names localhost (postfix_.tls_name()), which resolves to 127.0.0.1.
    cfg.extra = "smtp:\n  - {name: ack, host: " + Quote(postfix_.tls_name()) +
                ", port: " + std::to_string(postfix_.submission_port()) +
                ", tls: starttls, ca_file: " + Quote(postfix_.ca_file()) +
                ", username: alice, password: " + Quote(password.empty() ? dovecot_.password("alice") : password) +
                ", from: \"Support <alice@example.test>\", " + mode + ", retry_schedule: [1s, 1s, 1s], timeout: 10s}";
    MH_ASSERT_OK(daemon_.WriteConfig(RenderConfig(cfg)));
    MH_ASSERT_OK(daemon_.Start());
    ASSERT_TRUE(daemon_.WaitForLog("imap.connected", seconds(20))) << daemon_.Log();
  }

  std::vector<std::string> RepliesToBob() {
    auto found = ImapClient(dovecot_).FindMessages(
        "bob", "INBOX", [](const std::string& m) { return m.find(kReplyMarker) != std::string::npos; });
    EXPECT_TRUE(found.ok()) << (found.ok() ? "" : found.error().ToString());
    return found.ok() ? *found : std::vector<std::string>{};
  }

  // The event `mailhook parse` makes of the bytes (decoded headers and text).
  nlohmann::json Parse(const std::string& rfc822) {
    std::string path = daemon_.dir() + "/reply.eml";
    std::ofstream(path, std::ios::binary) << rfc822;
    auto r = RunMailhook({"parse", path, "--mailbox", "INBOX"});
    EXPECT_TRUE(r.ok() && r->exit_code == 0) << (r.ok() ? r->err : r.error().ToString());
    if (!r.ok()) return {};
    return nlohmann::json::parse(r->out, nullptr, false);
  }

  DovecotServer dovecot_;
  PostfixServer postfix_;
  MailhookProcess daemon_;
};

TEST_F(SmtpTargetTest, AcknowledgementLandsInTheSendersMailboxThreaded) {
  StartDaemon();
  ImapClient imap(dovecot_);
  MH_ASSERT_OK(imap.Append("alice", "INBOX",
                           FromBob("<ticket-1@example.test>",
                                   "=?UTF-8?Q?Gr=C3=BC=C3=9Fe_zum_Ticket?=", "References: <root@example.test>\n")));
  MH_ASSERT_OK_AND_ASSIGN(
      std::string reply,
      imap.WaitForMessage(
          "bob", "INBOX", [](const std::string& m) { return m.find(kReplyMarker) != std::string::npos; }, seconds(20)));
  ASSERT_TRUE(daemon_.WaitForLog("delivery.ok smtp=ack event=", seconds(5))) << daemon_.Log();
  std::string log = daemon_.Log();
  size_t at = log.find("delivery.ok smtp=ack event=") + std::string("delivery.ok smtp=ack event=").size();
  std::string event_id = log.substr(at, log.find(' ', at) - at);
  ASSERT_EQ(event_id.rfind("evt_", 0), 0u) << log;

  nlohmann::json e = Parse(reply);
  ASSERT_FALSE(e.is_discarded()) << reply;
  const nlohmann::json& m = e["message"];
  EXPECT_EQ(m["subject"], "Re: Grüße zum Ticket") << reply;
  EXPECT_EQ(m["in_reply_to"], nlohmann::json::array({"<ticket-1@example.test>"})) << reply;
  ASSERT_FALSE(m["references"].empty()) << reply;
  EXPECT_EQ(m["references"].back(), "<ticket-1@example.test>") << reply;
  EXPECT_EQ(m["references"].front(), "<root@example.test>") << reply;
  EXPECT_EQ(m["from"][0]["name"], "Support") << reply;
  EXPECT_EQ(m["from"][0]["address"], "alice@example.test") << reply;
  EXPECT_EQ(m["to"][0]["address"], "bob@example.test") << reply;
  const std::string text = m["text"].get<std::string>();
  EXPECT_NE(text.find("We received your message \"Grüße zum Ticket\""), std::string::npos) << text;
  EXPECT_NE(text.find("Reference: " + event_id), std::string::npos) << text;
  EXPECT_NE(reply.find("charset=utf-8"), std::string::npos) << reply;
  EXPECT_NE(reply.find(kReplyMarker), std::string::npos) << reply;

  // A second message from bob within the window: rate limited, no second reply.
  const size_t mark = daemon_.LogMark();
  MH_ASSERT_OK(imap.Append("alice", "INBOX", FromBob("<ticket-2@example.test>", "Noch eine Frage")));
  ASSERT_TRUE(daemon_.WaitForLog("smtp.skipped target=ack", seconds(20), mark)) << daemon_.Log();
  EXPECT_NE(daemon_.Log().find("rule=rate_limited", mark), std::string::npos) << daemon_.Log();
  EXPECT_EQ(RepliesToBob().size(), 1u);

  // The first message again (same Message-ID, a new event): answered already.
  const size_t again = daemon_.LogMark();
  MH_ASSERT_OK(imap.Append("alice", "INBOX",
                           FromBob("<ticket-1@example.test>",
                                   "=?UTF-8?Q?Gr=C3=BC=C3=9Fe_zum_Ticket?=", "References: <root@example.test>\n")));
  ASSERT_TRUE(daemon_.WaitForLog("smtp.skipped target=ack", seconds(20), again)) << daemon_.Log();
  EXPECT_NE(daemon_.Log().find("rule=already_answered", again), std::string::npos) << daemon_.Log();
  EXPECT_EQ(RepliesToBob().size(), 1u);
}

// One message per header rule of RFC 3834 (and the robot and own-address
// rules); each is logged with its rule and nothing reaches Postfix.
TEST_F(SmtpTargetTest, EveryHeaderLoopRuleSkipsWithoutSending) {
  StartDaemon();
  ImapClient imap(dovecot_);
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"precedence", FromBob("<rule-1@example.test>", "Bulk", "Precedence: bulk\n")},
      {"list", FromBob("<rule-2@example.test>", "List", "List-Id: <team.example.test>\n")},
      {"null_sender", FromBob("<rule-3@example.test>", "Bounce", "Return-Path: <>\n")},
      {"robot_sender",
       "From: noreply@example.test\nTo: alice@example.test\nSubject: Robot\n"
       "Message-ID: <rule-4@example.test>\n\nautomated\n"},
      {"own_address",
       "From: Support <alice@example.test>\nTo: alice@example.test\nSubject: Own\n"
       "Message-ID: <rule-5@example.test>\n\nmine\n"},
  };
  for (const auto& [rule, message] : cases) {
    const size_t mark = daemon_.LogMark();
    MH_ASSERT_OK(imap.Append("alice", "INBOX", message));
    ASSERT_TRUE(daemon_.WaitForLog("smtp.skipped target=ack", seconds(20), mark)) << rule << "\n" << daemon_.Log();
    EXPECT_NE(daemon_.Log().find("rule=" + rule + " ", mark), std::string::npos) << rule << "\n" << daemon_.Log();
  }
  EXPECT_EQ(postfix_.policy_requests(), 0);
  MH_ASSERT_OK_AND_ASSIGN(auto inbox, imap.ListUids("bob", "INBOX"));
  EXPECT_TRUE(inbox.empty());
}

// Forward mode: to the configured people, whoever sent the original (loop
// rules are for replies), marked auto-generated and not threaded as a reply.
TEST_F(SmtpTargetTest, ForwardGoesToTheConfiguredRecipients) {
  StartDaemon("",
              "mode: forward, to: [\"bob@example.test\"], subject: \"Fwd: {{message.subject}}\", "
              "text: \"New ticket {{id}} from {{message.subject}}\"");
  ImapClient imap(dovecot_);
  MH_ASSERT_OK(imap.Append("alice", "INBOX",
                           "From: Carol <carol@example.org>\nTo: alice@example.test\nSubject: Printer broken\n"
                           "Message-ID: <fwd-1@example.org>\nAuto-Submitted: auto-generated\n\nIt is on fire.\n"));
  MH_ASSERT_OK_AND_ASSIGN(
      std::string fwd,
      imap.WaitForMessage(
          "bob", "INBOX",
          [](const std::string& m) { return m.find("\r\nSubject: Fwd: Printer broken\r\n") != std::string::npos; },
          seconds(20)));
  EXPECT_NE(fwd.find("\r\nAuto-Submitted: auto-generated\r\n"), std::string::npos) << fwd;
  EXPECT_NE(fwd.find("\r\nTo: bob@example.test\r\n"), std::string::npos) << fwd;
  EXPECT_EQ(fwd.find("\r\nIn-Reply-To:"), std::string::npos) << fwd;
  EXPECT_NE(fwd.find("New ticket evt_"), std::string::npos) << fwd;
  EXPECT_EQ(daemon_.Log().find("smtp.skipped"), std::string::npos) << daemon_.Log();
}

// attach_original: the forward carries the original byte for byte as a
// message/rfc822 part, for a message fetched whole with its batch and for one
// over the whole-fetch size (256 KiB), whose bytes are read for the forward.
TEST_F(SmtpTargetTest, ForwardAttachesTheOriginalByteForByte) {
  StartDaemon("",
              "mode: forward, to: [\"bob@example.test\"], subject: \"Fwd: {{message.subject}}\", "
              "text: \"New ticket {{id}}\", attach_original: true");
  ImapClient imap(dovecot_);
  std::string large = FromBob("<attach-2@example.test>", "Large");
  for (int i = 0; i < 4000; ++i) large += "line " + std::to_string(i) + " " + std::string(70, 'x') + "\n";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"Small", FromBob("<attach-1@example.test>", "Small")}, {"Large", large}};
  for (const auto& [subject, message] : cases) {
    MH_ASSERT_OK_AND_ASSIGN(uint32_t uid, imap.Append("alice", "INBOX", message));
    MH_ASSERT_OK_AND_ASSIGN(std::string original, imap.Fetch("alice", "INBOX", uid));  // as the server keeps it
    if (subject == "Large") {
      ASSERT_GT(original.size(), 256u << 10) << "must take the server path";
    }
    MH_ASSERT_OK_AND_ASSIGN(
        std::string fwd,
        imap.WaitForMessage(
            "bob", "INBOX",
            [&](const std::string& m) { return m.find("\r\nSubject: Fwd: " + subject + "\r\n") != std::string::npos; },
            seconds(30)));
    const std::string part = "Content-Type: message/rfc822\r\nContent-Disposition: attachment\r\n";
    const size_t at = fwd.find(part);
    ASSERT_NE(at, std::string::npos) << subject << "\n" << fwd.substr(0, 4000);
    const size_t body = fwd.find("\r\n\r\n", at);
    ASSERT_NE(body, std::string::npos);
    // The part's body is the original, up to the CRLF of the closing delimiter.
    EXPECT_EQ(fwd.compare(body + 4, original.size(), original), 0) << subject;
    EXPECT_EQ(fwd.compare(body + 4 + original.size(), 4, "\r\n--"), 0) << subject;
    EXPECT_NE(fwd.find("New ticket evt_"), std::string::npos) << subject;
    EXPECT_NE(original.find("Message-ID: <attach-"), std::string::npos);
  }
  // A line over 998 octets: message/rfc822 cannot carry it, so it arrives as
  // the base64 file original.eml, still byte for byte.
  MH_ASSERT_OK_AND_ASSIGN(
      uint32_t uid,
      imap.Append("alice", "INBOX", FromBob("<attach-3@example.test>", "Wide") + std::string(1500, 'w') + "\n"));
  MH_ASSERT_OK_AND_ASSIGN(std::string original, imap.Fetch("alice", "INBOX", uid));
  MH_ASSERT_OK_AND_ASSIGN(
      std::string fwd,
      imap.WaitForMessage(
          "bob", "INBOX",
          [](const std::string& m) { return m.find("\r\nSubject: Fwd: Wide\r\n") != std::string::npos; }, seconds(30)));
  const size_t at = fwd.find("Content-Disposition: attachment; filename=\"original.eml\"");
  ASSERT_NE(at, std::string::npos) << fwd.substr(0, 4000);
  const size_t body = fwd.find("\r\n\r\n", at) + 4;
  std::string base64 = fwd.substr(body, fwd.find("\r\n--", body) - body);
  std::erase(base64, '\r');
  std::erase(base64, '\n');
  EXPECT_EQ(util::Base64DecodeStrict(base64), original);
  EXPECT_NE(fwd.find("attached as the file original.eml"), std::string::npos);
  EXPECT_TRUE(daemon_.WaitForLog("smtp.original_as_file target=ack", seconds(5))) << daemon_.Log();
  EXPECT_EQ(daemon_.Log().find("smtp.original_omitted"), std::string::npos) << daemon_.Log();
}

TEST_F(SmtpTargetTest, LoopProtectionSkipsAnAutoReply) {
  StartDaemon();
  ImapClient imap(dovecot_);
  MH_ASSERT_OK(imap.Append("alice", "INBOX",
                           FromBob("<auto-1@example.test>", "Out of office", "Auto-Submitted: auto-replied\n")));
  ASSERT_TRUE(daemon_.WaitForLog("smtp.skipped target=ack", seconds(20))) << daemon_.Log();
  EXPECT_NE(daemon_.Log().find("rule=auto_submitted"), std::string::npos) << daemon_.Log();
  EXPECT_TRUE(RepliesToBob().empty());
  MH_ASSERT_OK_AND_ASSIGN(auto inbox, imap.ListUids("bob", "INBOX"));
  EXPECT_TRUE(inbox.empty());
  EXPECT_EQ(postfix_.policy_requests(), 0);

  httplib::Client http("127.0.0.1", daemon_.HttpPort());
  auto metrics = http.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_NE(metrics->body.find("mailhook_smtp_skipped_total{rule=\"auto_submitted\",smtp=\"ack\"} 1"),
            std::string::npos)
      << metrics->body;
}

TEST_F(SmtpTargetTest, Deferred451IsRetriedAndDeliveredOnce) {
  postfix_.DeferFirstAttemptFor("bob@example.test");
  StartDaemon();
  ImapClient imap(dovecot_);
  MH_ASSERT_OK(imap.Append("alice", "INBOX", FromBob("<defer-1@example.test>", "Greylisted")));
  ASSERT_TRUE(daemon_.WaitForLog("delivery.retry smtp=ack", seconds(20))) << daemon_.Log();
  MH_ASSERT_OK(imap.WaitForMessage(
      "bob", "INBOX", [](const std::string& m) { return m.find(kReplyMarker) != std::string::npos; }, seconds(20)));
  ASSERT_TRUE(daemon_.WaitForLog("delivery.ok smtp=ack", seconds(5))) << daemon_.Log();
  // The queue is empty once the one delivery is logged: nothing else can arrive.
  ASSERT_TRUE(postfix_.WaitForLog(": removed", seconds(5)));
  EXPECT_EQ(postfix_.policy().deferred(), 1);
  EXPECT_EQ(postfix_.policy().requests_for("bob@example.test"), 2);
  EXPECT_EQ(RepliesToBob().size(), 1u);
  EXPECT_EQ(Count(daemon_.Log(), "delivery.retry smtp=ack"), 1u) << daemon_.Log();
}

TEST_F(SmtpTargetTest, Rejected550BecomesADeadLetter) {
  postfix_.RejectRecipient("bob@example.test");
  StartDaemon();
  ImapClient imap(dovecot_);
  MH_ASSERT_OK(imap.Append("alice", "INBOX", FromBob("<reject-1@example.test>", "Rejected")));
  ASSERT_TRUE(daemon_.WaitForLog("delivery.dead smtp=ack", seconds(20))) << daemon_.Log();
  EXPECT_EQ(Count(daemon_.Log(), "delivery.retry"), 0u) << "a 5xx is not retried: " << daemon_.Log();
  EXPECT_EQ(postfix_.policy().requests_for("bob@example.test"), 1);
  MH_ASSERT_OK_AND_ASSIGN(CommandResult list, RunMailhook({"deadletters", "list", "-c", daemon_.config_path()}));
  EXPECT_EQ(list.exit_code, 0) << list.err;
  EXPECT_NE(list.out.find("1 dead letter"), std::string::npos) << list.out;
  EXPECT_NE(list.out.find("5.1.1"), std::string::npos) << list.out;
  MH_ASSERT_OK_AND_ASSIGN(auto inbox, imap.ListUids("bob", "INBOX"));
  EXPECT_TRUE(inbox.empty());
}

TEST_F(SmtpTargetTest, WrongPasswordIsOneClearErrorAndNoHotLoop) {
  StartDaemon("not-the-password");
  ImapClient imap(dovecot_);
  MH_ASSERT_OK(imap.Append("alice", "INBOX", FromBob("<auth-1@example.test>", "Wrong password")));
  ASSERT_TRUE(daemon_.WaitForLog("delivery.retry smtp=ack", seconds(20))) << daemon_.Log();
  const std::string log = daemon_.Log();
  EXPECT_NE(log.find("bad credentials"), std::string::npos) << log;
  EXPECT_EQ(log.find("not-the-password"), std::string::npos) << "the password is never logged";
  // Retried no sooner than the operator delay (30 min), not on the 1 s schedule.
  size_t at = log.find("next_in_ms=", log.find("delivery.retry smtp=ack"));
  ASSERT_NE(at, std::string::npos) << log;
  EXPECT_GE(std::stoll(log.substr(at + 11)), 30LL * 60 * 1000) << log;
  ASSERT_TRUE(postfix_.WaitForLog("authentication failed", seconds(5))) << postfix_.ReadLog();
  // The 1 s schedule would have tried again within this window: it must not.
  EXPECT_FALSE(daemon_.WaitForLog("delivery.retry smtp=ack", seconds(4), log.find("delivery.retry smtp=ack") + 1));
  EXPECT_EQ(Count(postfix_.ReadLog(), "authentication failed"), 1u) << postfix_.ReadLog();
  EXPECT_EQ(Count(daemon_.Log(), "bad credentials"), 1u) << daemon_.Log();
  // Nothing was accepted (asked of Postfix, not of bob's INBOX: Dovecot's
  // auth penalty after the failed login delays the next login from 127.0.0.1 by 4 s).
  EXPECT_EQ(Count(postfix_.ReadLog(), "status=sent"), 0u) << postfix_.ReadLog();
  EXPECT_EQ(postfix_.policy_requests(), 0);
}

}  // namespace
}  // namespace mailhook::testsupport
