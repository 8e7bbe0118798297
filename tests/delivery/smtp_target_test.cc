#include "delivery/smtp_target.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <condition_variable>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>

#include "delivery/dispatcher.h"
#include "mime/decode.h"
#include "mime/event.h"
#include "mime/extractor.h"
#include "mime/mime_parser.h"
#include "store/open_store.h"
#include "temp_dir.h"
#include "util/base64.h"
#include "util/metrics_catalog.h"
#include "util/target_id.h"

namespace mailhook::delivery {
namespace {

using nlohmann::json;

// A ledger in memory with the store's rules: one reply per message id, a
// retry of the same event passes, at most per_sender per sender.
class FakeLedger : public ReplyLedger {
 public:
  util::Result<store::ReplyReservation> Reserve(const store::SentReply& reply, store::ReplyLimit limit) override {
    if (by_event_.count(reply.event_id)) return store::ReplyReservation::kReserved;
    for (const auto& [event, r] : by_event_) {
      if (!reply.message_id.empty() && r.message_id == reply.message_id) {
        return store::ReplyReservation::kAlreadyAnswered;
      }
    }
    int sent = 0;
    for (const auto& [event, r] : by_event_) sent += r.sender == reply.sender ? 1 : 0;
    if (sent >= limit.per_sender) return store::ReplyReservation::kRateLimited;
    by_event_[reply.event_id] = reply;
    return store::ReplyReservation::kReserved;
  }
  util::Status Release(const std::string&, const std::string& event_id) override {
    by_event_.erase(event_id);
    return util::Ok();
  }
  util::Result<std::vector<store::RecipientState>> Recipients(const std::string&,
                                                              const std::string& event_id) override {
    return recipients_[event_id];
  }
  util::Status RecordRecipients(const std::string&, const std::string& event_id,
                                const std::vector<store::RecipientState>& states) override {
    if (fail_record_) return util::Error("store.write", util::RetryClass::kBackoff, "disk full");
    for (const auto& s : states) recipients_[event_id].push_back(s);
    return util::Ok();
  }
  util::Status ForgetRecipients(const std::string&, const std::string& event_id) override {
    recipients_.erase(event_id);
    return util::Ok();
  }
  // The recipients of an event with the status `status`.
  std::vector<std::string> With(const std::string& event_id, store::RecipientState::Status status) {
    std::vector<std::string> out;
    for (const auto& r : recipients_[event_id]) {
      if (r.status == status) out.push_back(r.recipient);
    }
    return out;
  }
  std::map<std::string, store::SentReply> by_event_;
  std::map<std::string, std::vector<store::RecipientState>> recipients_;
  bool fail_record_ = false;
};

struct Sent {
  std::string from;
  std::vector<std::string> to;
  std::string message;
};

class SmtpTargetTest : public ::testing::Test {
 protected:
  SmtpTargetTest() {
    target_.name = "ack";
    target_.from = {"Support", "support@example.com"};
    target_.mode = config::SmtpMode::kReply;
    target_.subject = "Re: {{message.subject}}";
    target_.text = "We received \"{{message.subject}}\". Reference: {{id}}";
  }

  std::unique_ptr<SmtpTarget> Make() {
    auto t = SmtpTarget::Create(
        target_,
        [this](const std::string& from, const std::vector<std::string>& to, std::string_view message,
               std::chrono::steady_clock::time_point, const util::CancelToken&) {
          sent_.push_back({from, to, std::string(message)});
          return report_;
        },
        ledger_, [this](std::string_view rule) { skipped_.emplace_back(rule); });
    EXPECT_TRUE(t.ok()) << t.error().message();
    return std::move(t).value();
  }

  // The event an smtp route stores for this message (mime::EventPieces with
  // the auto-reply headers), as the daemon makes it.
  static store::Delivery Row(const std::string& message, const std::string& event_id = "evt_1") {
    auto content = mime::ExtractWhole(message, mime::ExtractOptions{});
    EXPECT_TRUE(content.ok());
    mime::EventMeta meta{"support", "INBOX", 7, 42, {}, message.size(), "2026-11-30T03:00:00Z"};
    std::string payload;
    for (const auto& p : mime::EventPieces(meta, *content, config::AttachmentMode::kMetadata, 0, true)) payload += *p;
    store::Delivery row;
    row.item.event_id = event_id;
    row.item.target = "smtp:ack";
    row.item.payload = payload;
    row.created_at =
        std::chrono::system_clock::time_point(std::chrono::seconds(1795000000));  // the row's, every attempt
    return row;
  }

  config::SmtpTarget target_;
  std::shared_ptr<FakeLedger> ledger_ = std::make_shared<FakeLedger>();
  SendReport report_{SendReport::Kind::kSent, "", {}};
  std::vector<Sent> sent_;
  std::vector<std::string> skipped_;
  util::CancelToken cancel_;
};

const std::string kAsk =
    "From: Ann <ann@example.org>\r\nTo: support@example.com\r\nSubject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n"
    "Message-ID: <q1@example.org>\r\nReferences: <root@example.org>\r\n\r\nHelp please\r\n";

TEST_F(SmtpTargetTest, ReplyGoesToTheSenderThreadedAndMarkedAutomatic) {
  Outcome out = Make()->Deliver(Row(kAsk), cancel_);
  EXPECT_EQ(out.kind, OutcomeKind::kSuccess) << out.error;
  ASSERT_EQ(sent_.size(), 1u);
  EXPECT_EQ(sent_[0].from, "support@example.com");
  EXPECT_EQ(sent_[0].to, std::vector<std::string>{"ann@example.org"});
  // Parsed back as `mailhook parse` would.
  auto reply = mime::ExtractWhole(sent_[0].message, mime::ExtractOptions{});
  ASSERT_TRUE(reply.ok());
  EXPECT_EQ(reply->subject, "Re: Grüße");
  EXPECT_EQ(reply->in_reply_to, std::vector<std::string>{"<q1@example.org>"});
  EXPECT_EQ(reply->references, (std::vector<std::string>{"<root@example.org>", "<q1@example.org>"}));
  EXPECT_EQ(reply->auto_reply.auto_submitted, "auto-replied");
  EXPECT_EQ(reply->text.value_or(""),
            "We received \"Grüße\". Reference: " + mime::EventId("support", "INBOX", 7, 42) + "\r\n");
  EXPECT_EQ(reply->from.at(0).address, "support@example.com");
}

// The reply's To carries the sender's display name (RFC 2047 when not
// ASCII, quoted when it holds specials); the envelope has the bare address.
TEST_F(SmtpTargetTest, TheReplysToHasTheSendersDisplayName) {
  EXPECT_EQ(Make()->Deliver(Row(kAsk), cancel_).kind, OutcomeKind::kSuccess);
  ASSERT_EQ(sent_.size(), 1u);
  EXPECT_NE(sent_[0].message.find("\r\nTo: Ann <ann@example.org>\r\n"), std::string::npos) << sent_[0].message;

  struct Case {
    std::string from, name, address;
  };
  for (const Case& c : {Case{"=?utf-8?q?J=C3=BCrgen_M=C3=BCller?= <jm@example.org>", "Jürgen Müller", "jm@example.org"},
                        Case{"\"Example, Bob\" <bob@example.org>", "Example, Bob", "bob@example.org"}}) {
    SCOPED_TRACE(c.from);
    std::string ask = kAsk;
    ask.replace(0, ask.find("\r\n"), "From: " + c.from);
    ask.replace(ask.find("<q1@"), 4, "<" + c.address);
    sent_.clear();
    EXPECT_EQ(Make()->Deliver(Row(ask, c.address), cancel_).kind, OutcomeKind::kSuccess);
    ASSERT_EQ(sent_.size(), 1u);
    EXPECT_EQ(sent_[0].to, std::vector<std::string>{c.address});
    auto reply = mime::ExtractWhole(sent_[0].message, mime::ExtractOptions{});
    ASSERT_TRUE(reply.ok());
    ASSERT_EQ(reply->to.size(), 1u);
    EXPECT_EQ(reply->to[0].name, c.name);
    EXPECT_EQ(reply->to[0].address, c.address);
    const std::string& raw = sent_[0].message;
    const size_t to = raw.find("\r\nTo: ");
    ASSERT_NE(to, std::string::npos);
    const std::string to_line = raw.substr(to + 2, raw.find("\r\n", to + 2) - to - 2);
    for (unsigned char ch : to_line) EXPECT_LT(ch, 0x80) << to_line;  // encoded, never raw UTF-8
  }
}

TEST_F(SmtpTargetTest, LoopRulesSkipWithoutSendingAndAreNotRetried) {
  const std::string auto_reply = "Auto-Submitted: auto-replied\r\n" + kAsk;
  Outcome out = Make()->Deliver(Row(auto_reply), cancel_);
  EXPECT_EQ(out.kind, OutcomeKind::kSuccess);
  EXPECT_TRUE(sent_.empty());
  EXPECT_EQ(skipped_, std::vector<std::string>{"auto_submitted"});
  EXPECT_TRUE(ledger_->by_event_.empty());  // a skip reserves nothing
}

TEST_F(SmtpTargetTest, AnsweredMessagesAndTheRateLimitAreSkippedButARetryIsNot) {
  auto target = Make();
  report_ = {SendReport::Kind::kRetry, "451 try later", {}};
  EXPECT_EQ(target->Deliver(Row(kAsk, "evt_1"), cancel_).kind, OutcomeKind::kRetry);
  report_ = {SendReport::Kind::kSent, "", {}};
  EXPECT_EQ(target->Deliver(Row(kAsk, "evt_1"), cancel_).kind, OutcomeKind::kSuccess);  // the retry is sent
  EXPECT_EQ(sent_.size(), 2u);
  // The same message again (another folder, another event): answered.
  EXPECT_EQ(target->Deliver(Row(kAsk, "evt_2"), cancel_).kind, OutcomeKind::kSuccess);
  // Another message of the same sender within the window: rate limited.
  std::string second = kAsk;
  second.replace(second.find("<q1@"), 4, "<q2@");
  EXPECT_EQ(target->Deliver(Row(second, "evt_3"), cancel_).kind, OutcomeKind::kSuccess);
  EXPECT_EQ(sent_.size(), 2u);
  EXPECT_EQ(skipped_, (std::vector<std::string>{"already_answered", "rate_limited"}));
}

TEST_F(SmtpTargetTest, SendingErrorsBecomeTheDispatchersOutcomes) {
  auto target = Make();
  report_ = {SendReport::Kind::kNeedsOperator, "535 bad credentials: use an app password", {}};
  Outcome op = target->Deliver(Row(kAsk, "evt_1"), cancel_);
  EXPECT_EQ(op.kind, OutcomeKind::kRetry);
  ASSERT_TRUE(op.retry_after);
  EXPECT_GE(*op.retry_after, SmtpTarget::kOperatorRetry);  // no hot loop on a bad password
  EXPECT_NE(op.error.find("app password"), std::string::npos);
  // Meanwhile the target is held: other events wait without a login each.
  Outcome held = target->Deliver(Row(kAsk, "evt_2"), cancel_);
  EXPECT_EQ(held.kind, OutcomeKind::kRetry);
  ASSERT_TRUE(held.retry_after);
  EXPECT_LE(*held.retry_after, SmtpTarget::kOperatorRetry);
  EXPECT_NE(held.error.find("app password"), std::string::npos);
  EXPECT_EQ(sent_.size(), 1u);

  auto fresh = Make();
  report_ = {SendReport::Kind::kPermanent, "550 5.1.1 no such user", {}};
  Outcome dead = fresh->Deliver(Row(kAsk, "evt_1"), cancel_);
  EXPECT_EQ(dead.kind, OutcomeKind::kPermanent);
  EXPECT_NE(dead.error.find("5.1.1"), std::string::npos);
  EXPECT_TRUE(ledger_->by_event_.empty());  // a reply that never went out does not count
}

TEST_F(SmtpTargetTest, ForwardGoesToTheRenderedRecipients) {
  target_.mode = config::SmtpMode::kForward;
  target_.subject = "Fwd: {{message.subject}}";
  target_.to = {"Desk <desk@example.com>", "{{message.from.address}}"};
  target_.cc = {"audit@example.com"};
  const std::string auto_reply = "Auto-Submitted: auto-replied\r\n" + kAsk;
  Outcome out = Make()->Deliver(Row(auto_reply), cancel_);  // forwards do not apply the reply rules
  EXPECT_EQ(out.kind, OutcomeKind::kSuccess) << out.error;
  ASSERT_EQ(sent_.size(), 1u);
  EXPECT_EQ(sent_[0].to, (std::vector<std::string>{"desk@example.com", "ann@example.org", "audit@example.com"}));
  auto fwd = mime::ExtractWhole(sent_[0].message, mime::ExtractOptions{});
  ASSERT_TRUE(fwd.ok());
  EXPECT_EQ(fwd->subject, "Fwd: Grüße");
  EXPECT_EQ(fwd->auto_reply.auto_submitted, "auto-generated");
  EXPECT_EQ(fwd->cc.at(0).address, "audit@example.com");
}

TEST_F(SmtpTargetTest, OnlyReceivedMessagesWithTheirHeadersAreAnsweredAndOwnMailIsNotForwarded) {
  auto target = Make();
  // message.unprocessable carries no auto-reply headers: never answered.
  store::Delivery unprocessable = Row(kAsk);
  unprocessable.item.payload = R"({"type":"message.unprocessable","message":{"from":[{"name":"","address":"a@b.c"}]}})";
  EXPECT_EQ(target->Deliver(unprocessable, cancel_).kind, OutcomeKind::kSuccess);
  EXPECT_TRUE(sent_.empty());
  EXPECT_EQ(skipped_, std::vector<std::string>{"not_a_received_message"});

  target_.mode = config::SmtpMode::kForward;
  target_.to = {"desk@example.com"};
  const std::string ours = "From: Support <SUPPORT@example.com>\r\nSubject: x\r\nMessage-ID: <m@x>\r\n\r\nhi\r\n";
  EXPECT_EQ(Make()->Deliver(Row(ours), cancel_).kind, OutcomeKind::kSuccess);
  EXPECT_TRUE(sent_.empty());  // a forward of our own mail would loop
  EXPECT_EQ(skipped_.back(), "own_address");
}

using Kind = SendReport::Kind;
using Status = store::RecipientState::Status;

// A forward to three: desk takes it, ann is deferred (451), audit refused (550).
TEST_F(SmtpTargetTest, ARecipientDeferredWhileOthersTookTheMailIsRetriedAlone) {
  target_.mode = config::SmtpMode::kForward;
  target_.subject = "Fwd: {{message.subject}}";
  target_.to = {"Desk <desk@example.com>", "{{message.from.address}}"};
  target_.cc = {"audit@example.com"};
  auto target = Make();
  store::Delivery row = Row(kAsk);
  row.created_at = std::chrono::system_clock::now() - std::chrono::minutes(5);
  report_ = {Kind::kSent,
             "2 of 3 recipients refused; sent to the others",
             {{"desk@example.com", Kind::kSent, "250 2.0.0 ok"},
              {"ann@example.org", Kind::kRetry, "451 4.2.1 mailbox busy"},
              {"audit@example.com", Kind::kPermanent, "550 5.1.1 no such user"}}};
  Outcome first = target->Deliver(row, cancel_);
  EXPECT_EQ(first.kind, OutcomeKind::kRetry) << first.error;
  EXPECT_NE(first.error.find("not yet delivered to: ann@example.org"), std::string::npos) << first.error;
  EXPECT_EQ(first.error.find("desk@example.com"), std::string::npos) << first.error;
  // Recorded before Deliver returned: who has it and who never will.
  EXPECT_EQ(ledger_->With(row.item.event_id, Status::kSent), std::vector<std::string>{"desk@example.com"});
  EXPECT_EQ(ledger_->With(row.item.event_id, Status::kRefused), std::vector<std::string>{"audit@example.com"});

  // The retry goes to ann only, with the same bytes (Message-ID, Date).
  report_ = {Kind::kSent, "", {{"ann@example.org", Kind::kSent, "250 ok"}}};
  Outcome second = target->Deliver(row, cancel_);
  EXPECT_EQ(second.kind, OutcomeKind::kSuccess) << second.error;
  ASSERT_EQ(sent_.size(), 2u);
  EXPECT_EQ(sent_[1].to, std::vector<std::string>{"ann@example.org"});
  EXPECT_EQ(sent_[1].message, sent_[0].message);
  EXPECT_EQ(ledger_->With(row.item.event_id, Status::kSent),
            (std::vector<std::string>{"desk@example.com", "ann@example.org"}));

  // Everyone is settled: a replay connects to nobody and succeeds.
  EXPECT_EQ(target->Deliver(row, cancel_).kind, OutcomeKind::kSuccess);
  EXPECT_EQ(sent_.size(), 2u);
}

// After a partial send, a reload whose `to` now renders nobody makes the
// retry a dead letter before sending: who got it stays recorded, so a replay
// does not send it to them again.
TEST_F(SmtpTargetTest, ADeadLetterBeforeSendingKeepsWhoAlreadyGotIt) {
  target_.mode = config::SmtpMode::kForward;
  target_.to = {"desk@example.com", "{{message.from.address}}"};
  store::Delivery row = Row(kAsk);
  report_ = {Kind::kSent,
             "1 of 2 recipients refused; sent to the others",
             {{"desk@example.com", Kind::kSent, "250 ok"}, {"ann@example.org", Kind::kRetry, "451 4.2.1 busy"}}};
  EXPECT_EQ(Make()->Deliver(row, cancel_).kind, OutcomeKind::kRetry);
  target_.to = {"{{message.reply_to.address}}"};  // kAsk has no Reply-To: renders empty
  Outcome out = Make()->Deliver(row, cancel_);
  EXPECT_EQ(out.kind, OutcomeKind::kPermanent) << out.error;
  EXPECT_EQ(sent_.size(), 1u);
  EXPECT_EQ(ledger_->With(row.item.event_id, Status::kSent), std::vector<std::string>{"desk@example.com"});
}

TEST_F(SmtpTargetTest, WhenOnlyRefusedRecipientsAreLeftTheDeliveryEnds) {
  target_.mode = config::SmtpMode::kForward;
  target_.to = {"desk@example.com", "ann@example.org"};
  auto target = Make();
  // desk took it, ann was deferred; then ann is refused for good: success.
  report_ = {
      Kind::kSent, "", {{"desk@example.com", Kind::kSent, "250 ok"}, {"ann@example.org", Kind::kRetry, "451 x"}}};
  EXPECT_EQ(target->Deliver(Row(kAsk, "evt_1"), cancel_).kind, OutcomeKind::kRetry);
  report_ = {
      Kind::kPermanent, "every recipient (RCPT TO) refused", {{"ann@example.org", Kind::kPermanent, "550 5.1.1 gone"}}};
  Outcome done = target->Deliver(Row(kAsk, "evt_1"), cancel_);
  EXPECT_EQ(done.kind, OutcomeKind::kSuccess) << done.error;
  EXPECT_EQ(sent_.back().to, std::vector<std::string>{"ann@example.org"});

  // Nobody took it: a dead letter with every server's text, and the
  // recorded refusals are forgotten so a replay tries everyone again.
  report_ = {Kind::kRetry,
             "every recipient (RCPT TO) refused",
             {{"desk@example.com", Kind::kPermanent, "550 5.7.1 relay denied"},
              {"ann@example.org", Kind::kRetry, "452 full"}}};
  EXPECT_EQ(target->Deliver(Row(kAsk, "evt_2"), cancel_).kind, OutcomeKind::kRetry);
  report_ = {
      Kind::kPermanent, "every recipient (RCPT TO) refused", {{"ann@example.org", Kind::kPermanent, "550 5.1.1 gone"}}};
  Outcome dead = target->Deliver(Row(kAsk, "evt_2"), cancel_);
  EXPECT_EQ(dead.kind, OutcomeKind::kPermanent);
  EXPECT_NE(dead.error.find("desk@example.com: 550 5.7.1 relay denied"), std::string::npos) << dead.error;
  EXPECT_NE(dead.error.find("ann@example.org: 550 5.1.1 gone"), std::string::npos) << dead.error;
  EXPECT_EQ(ledger_->recipients_.count("evt_2"), 0u);
}

TEST_F(SmtpTargetTest, AFailedAttemptAfterAPartialSendNamesTheMissingRecipients) {
  target_.mode = config::SmtpMode::kForward;
  target_.to = {"desk@example.com", "ann@example.org"};
  auto target = Make();
  report_ = {
      Kind::kSent, "", {{"desk@example.com", Kind::kSent, "250 ok"}, {"ann@example.org", Kind::kRetry, "451 x"}}};
  EXPECT_EQ(target->Deliver(Row(kAsk), cancel_).kind, OutcomeKind::kRetry);
  // The next attempt fails before RCPT: the retry's error, which a dead
  // letter of exhausted retries keeps, still names ann.
  report_ = {Kind::kRetry, "connection refused", {}};
  Outcome out = target->Deliver(Row(kAsk), cancel_);
  EXPECT_EQ(out.kind, OutcomeKind::kRetry);
  EXPECT_NE(out.error.find("connection refused; not yet delivered to: ann@example.org"), std::string::npos)
      << out.error;
  // An accepted RCPT whose message was not taken (DATA refused 451) is not sent.
  report_ = {Kind::kRetry, "451 after DATA", {{"ann@example.org", Kind::kRetry, "451 later"}}};
  EXPECT_EQ(target->Deliver(Row(kAsk), cancel_).kind, OutcomeKind::kRetry);
  EXPECT_EQ(ledger_->With("evt_1", Status::kSent), std::vector<std::string>{"desk@example.com"});
  // A store that cannot record: retried (a resend to those who have it
  // beats losing it).
  ledger_->fail_record_ = true;
  report_ = {Kind::kSent, "", {}};
  Outcome unrecorded = target->Deliver(Row(kAsk), cancel_);
  EXPECT_EQ(unrecorded.kind, OutcomeKind::kRetry);
  EXPECT_NE(unrecorded.error.find("disk full"), std::string::npos);
}

// Through the dispatcher: when the schedule ends, the dead letter names the
// recipient that never got the message, with its server's text.
TEST_F(SmtpTargetTest, TheDeadLetterOfExhaustedRetriesNamesTheMissingRecipients) {
  target_.mode = config::SmtpMode::kForward;
  target_.to = {"desk@example.com", "ann@example.org"};
  report_ = {Kind::kSent,
             "",
             {{"desk@example.com", Kind::kSent, "250 ok"}, {"ann@example.org", Kind::kRetry, "451 4.2.1 busy"}}};
  testsupport::TempDir dir;
  store::Delivery row = Row(kAsk);
  auto store = store::OpenStore({.state_dir = dir.path()});
  ASSERT_TRUE(store.ok());
  store::OutboxItem item = row.item;
  item.account = "support";
  item.folder = "INBOX";
  item.uidvalidity = 7;
  item.uid = 1;
  ASSERT_TRUE((*store)->CommitMessages("support", "INBOX", store::Watermark{7, 1}, {item}).ok());
  config::Config config;
  config.state_dir = dir.path();
  util::MetricsCatalog metrics;
  DispatcherOptions options;
  options.workers = 1;
  Dispatcher dispatcher(config, "test", metrics, options);
  dispatcher.RegisterTarget(util::TargetId::Smtp("ack"), Make(), RetryPolicy({std::chrono::milliseconds(1)}, 0.0));
  std::mutex mu;
  std::condition_variable cv;
  std::vector<OutcomeKind> results;
  dispatcher.SetOnOutcome([&](const Report& r) {
    std::lock_guard lock(mu);
    results.push_back(r.result);
    cv.notify_all();
  });
  ASSERT_TRUE(dispatcher.Start().ok());
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(20), [&] { return results.size() >= 2; }));
  }
  dispatcher.Stop();
  EXPECT_EQ(results, (std::vector<OutcomeKind>{OutcomeKind::kRetry, OutcomeKind::kPermanent}));
  ASSERT_EQ(sent_.size(), 2u);
  EXPECT_EQ(sent_[1].to, std::vector<std::string>{"ann@example.org"});  // the retry: ann alone
  auto dead = (*store)->dead_letters().ListInfo();
  ASSERT_TRUE(dead.ok());
  ASSERT_EQ(dead->size(), 1u);
  EXPECT_NE(dead->front().last_error.find("not yet delivered to: ann@example.org (451 4.2.1 busy)"), std::string::npos)
      << dead->front().last_error;
  EXPECT_EQ(dead->front().last_error.find("desk@"), std::string::npos) << dead->front().last_error;
}

TEST_F(SmtpTargetTest, AddressTemplatesMayUseOnlyAddressFields) {
  target_.mode = config::SmtpMode::kForward;
  target_.to = {"{{message.from.name}} <team@example.com>"};
  auto t = SmtpTarget::Create(target_, {}, ledger_);
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.error().message().find("cannot be used in an address list"), std::string::npos) << t.error().message();
  target_.to = {"{{message.reply_to.address}}", "{{message.from}}"};
  EXPECT_TRUE(SmtpTarget::Create(target_, {}, ledger_).ok());
}

TEST_F(SmtpTargetTest, UnknownTemplateFieldFailsAtCreate) {
  target_.text = "{{message.nope}}";
  auto t = SmtpTarget::Create(target_, {}, ledger_);
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.error().message().find("smtp.ack.text"), std::string::npos) << t.error().message();
  EXPECT_NE(t.error().message().find("message.nope"), std::string::npos) << t.error().message();
}

// attach_original (issue 12): the forward carries the stored original as
// message/rfc822, or goes out inline saying why it could not.
class SmtpForwardOriginalTest : public SmtpTargetTest {
 protected:
  SmtpForwardOriginalTest() {
    target_.mode = config::SmtpMode::kForward;
    target_.subject = "Fwd: {{message.subject}}";
    target_.to = {"desk@example.com"};
    target_.text = "Forwarded: {{message.subject}}";
    target_.html = "<p>Forwarded</p>";
    target_.attach_original = true;
  }
  // A target whose sender answers with script_, one report per send.
  std::unique_ptr<SmtpTarget> Scripted(std::shared_ptr<FakeLedger> ledger = nullptr) {
    auto t = SmtpTarget::Create(
        target_,
        [this](const std::string& from, const std::vector<std::string>& to, std::string_view message,
               std::chrono::steady_clock::time_point, const util::CancelToken&) {
          sent_.push_back({from, to, std::string(message)});
          return script_.at(sent_.size() - 1);
        },
        ledger ? ledger : ledger_);
    EXPECT_TRUE(t.ok());
    return t.ok() ? std::move(*t) : nullptr;
  }
  std::vector<SendReport> script_;
  // The event of a forward route: with "original_rfc822" as the watcher
  // stores it (base64 of `raw`; no original: null, as over the limit).
  static store::Delivery ForwardRow(const std::string& message, const std::string* raw, uint64_t size = 0,
                                    const std::string& event_id = "evt_1") {
    auto content = mime::ExtractWhole(message, mime::ExtractOptions{});
    EXPECT_TRUE(content.ok());
    mime::EventMeta meta{"support", "INBOX", 7, 42, {}, size ? size : message.size(), "2026-11-30T03:00:00Z"};
    mime::EventOriginal original;
    if (raw) original.base64 = std::make_shared<const std::string>(util::Base64Encode(*raw));
    std::string payload;
    for (const auto& p : mime::EventPieces(meta, *content, config::AttachmentMode::kMetadata, 0, true, &original)) {
      payload += *p;
    }
    store::Delivery row;
    row.item.event_id = event_id;
    row.item.target = "smtp:ack";
    row.item.payload = payload;
    row.created_at =
        std::chrono::system_clock::time_point(std::chrono::seconds(1795000000));  // the row's, every attempt
    return row;
  }
  // The sent message's parts, parsed back.
  static mime::ParsedMessage Parsed(const std::string& message) { return mime::ParseMessage(message); }
};

TEST_F(SmtpForwardOriginalTest, TheOriginalIsAttachedByteForByteAndARetrySendsTheSameBytes) {
  // 8-bit, with a line that starts with a dot: kept as it is.
  const std::string original =
      "From: Ann <ann@example.org>\r\nSubject: caf\xC3\xA9\r\nMessage-ID: <o1@example.org>\r\n"
      "\r\n.dot line\r\nGr\xC3\xBC\xC3\x9F"
      "e\r\n";
  auto target = Make();
  report_ = {SendReport::Kind::kRetry, "451 try later", {}};
  EXPECT_EQ(target->Deliver(ForwardRow(original, &original), cancel_).kind, OutcomeKind::kRetry);
  report_ = {SendReport::Kind::kSent, "", {}};
  EXPECT_EQ(target->Deliver(ForwardRow(original, &original), cancel_).kind, OutcomeKind::kSuccess);
  ASSERT_EQ(sent_.size(), 2u);
  EXPECT_EQ(sent_[0].message, sent_[1].message);  // byte for byte, Date included
  const mime::ParsedMessage fwd = Parsed(sent_[1].message);
  EXPECT_EQ(fwd.root.type + "/" + fwd.root.subtype, "multipart/mixed");
  ASSERT_EQ(fwd.root.children.size(), 2u);
  const mime::Part& attached = fwd.root.children[1];
  EXPECT_EQ(attached.type + "/" + attached.subtype, "message/rfc822");
  const mime::SectionRange range = fwd.ranges.at(attached.section);
  EXPECT_EQ(fwd.data.substr(range.body_begin, range.body_end - range.body_begin), original);
  EXPECT_EQ(sent_[1].message.find("too large"), std::string::npos);
}

TEST_F(SmtpForwardOriginalTest, AnOriginalOverTheLimitIsForwardedInlineWithANote) {
  EXPECT_EQ(Make()->Deliver(ForwardRow(kAsk, nullptr, 12u << 20), cancel_).kind, OutcomeKind::kSuccess);
  ASSERT_EQ(sent_.size(), 1u);
  EXPECT_EQ(sent_[0].message.find("Content-Type: message/rfc822"), std::string::npos);
  auto fwd = mime::ExtractWhole(sent_[0].message, mime::ExtractOptions{});
  ASSERT_TRUE(fwd.ok());
  EXPECT_NE(fwd->text.value_or("").find("the original (12 MiB) was too large to attach"), std::string::npos)
      << fwd->text.value_or("");
  EXPECT_NE(fwd->html.value_or("").find("was too large to attach"), std::string::npos);
}

TEST_F(SmtpForwardOriginalTest, AnOriginalTheServerWouldNotSendIsForwardedInlineWithANote) {
  // As the watcher stores it when the IMAP server refused the original's
  // bytes: null, with the reason beside it.
  store::Delivery row = ForwardRow(kAsk, nullptr);
  auto event = nlohmann::json::parse(row.item.payload);
  ASSERT_TRUE(event["original_rfc822"].is_null());
  event["original_omitted"] = "unreadable";
  row.item.payload = event.dump();
  EXPECT_EQ(Make()->Deliver(row, cancel_).kind, OutcomeKind::kSuccess);
  ASSERT_EQ(sent_.size(), 1u);
  EXPECT_EQ(sent_[0].message.find("Content-Type: message/rfc822"), std::string::npos);
  auto fwd = mime::ExtractWhole(sent_[0].message, mime::ExtractOptions{});
  ASSERT_TRUE(fwd.ok());
  EXPECT_NE(fwd->text.value_or("").find("the mail server would not send its bytes"), std::string::npos)
      << fwd->text.value_or("");
  EXPECT_EQ(fwd->text.value_or("").find("too large"), std::string::npos) << fwd->text.value_or("");
  EXPECT_NE(fwd->html.value_or("").find("would not send its bytes"), std::string::npos);
}

TEST_F(SmtpForwardOriginalTest, AnOriginalMessageRfc822CannotCarryIsAttachedAsAFileWithANote) {
  const std::string original =
      "Subject: long\r\nMessage-ID: <o2@example.org>\r\n\r\n" + std::string(1200, 'x') + "\r\n";
  EXPECT_EQ(Make()->Deliver(ForwardRow(original, &original), cancel_).kind, OutcomeKind::kSuccess);
  ASSERT_EQ(sent_.size(), 1u);
  EXPECT_EQ(sent_[0].message.find("Content-Type: message/rfc822"), std::string::npos);
  mime::ExtractOptions options;
  options.fetch_content = true;
  auto fwd = mime::ExtractWhole(sent_[0].message, options);
  ASSERT_TRUE(fwd.ok());
  EXPECT_NE(fwd->text.value_or("").find("attached as the file original.eml"), std::string::npos)
      << fwd->text.value_or("");
  ASSERT_EQ(fwd->attachments.size(), 1u);
  EXPECT_EQ(fwd->attachments[0].filename, "original.eml");
  ASSERT_TRUE(fwd->attachments[0].content_base64);
  EXPECT_EQ(mime::DecodeBase64(*fwd->attachments[0].content_base64), original);
  // An event queued before attach_original was set has no original: inline too.
  sent_.clear();
  EXPECT_EQ(Make()->Deliver(Row(kAsk, "evt_2"), cancel_).kind, OutcomeKind::kSuccess);
  ASSERT_EQ(sent_.size(), 1u);
  EXPECT_NE(sent_[0].message.find("not stored with this message"), std::string::npos);
}

TEST_F(SmtpForwardOriginalTest, AnEightBitOriginalGoesAsAFileToAServerWithout8BitMime) {
  const std::string original =
      "Subject: caf\xC3\xA9\r\nMessage-ID: <o4@example.org>\r\n\r\nGr\xC3\xBC\xC3\x9F"
      "e\r\n";
  SendReport no_8bitmime{SendReport::Kind::kPermanent, "no 8BITMIME", {}, false, true};
  SendReport too_large{SendReport::Kind::kPermanent, "552 5.3.4 Message size exceeds fixed limit", {}, true};
  script_ = {no_8bitmime, {SendReport::Kind::kSent, "", {}}};
  auto t = Scripted();
  ASSERT_TRUE(t);
  Outcome out = t->Deliver(ForwardRow(original, &original), cancel_);
  EXPECT_EQ(out.kind, OutcomeKind::kSuccess) << out.error;
  ASSERT_EQ(sent_.size(), 2u);
  EXPECT_NE(sent_[0].message.find("Content-Type: message/rfc822"), std::string::npos);
  // The second is all 7-bit: the original as the base64 file, byte for byte.
  EXPECT_TRUE(std::all_of(sent_[1].message.begin(), sent_[1].message.end(),
                          [](char c) { return static_cast<unsigned char>(c) < 0x80; }));
  mime::ExtractOptions options;
  options.fetch_content = true;
  auto fwd = mime::ExtractWhole(sent_[1].message, options);
  ASSERT_TRUE(fwd.ok());
  EXPECT_NE(fwd->text.value_or("").find("does not accept 8-bit data"), std::string::npos) << fwd->text.value_or("");
  ASSERT_EQ(fwd->attachments.size(), 1u);
  EXPECT_EQ(fwd->attachments[0].filename, "original.eml");
  ASSERT_TRUE(fwd->attachments[0].content_base64);
  EXPECT_EQ(mime::DecodeBase64(*fwd->attachments[0].content_base64), original);

  // Then too large as a file as well: it goes without, and the note about
  // the file is not left behind.
  sent_.clear();
  script_ = {no_8bitmime, too_large, {SendReport::Kind::kSent, "", {}}};
  out = t->Deliver(ForwardRow(original, &original, 0, "evt_3"), cancel_);
  EXPECT_EQ(out.kind, OutcomeKind::kSuccess) << out.error;
  ASSERT_EQ(sent_.size(), 3u);
  EXPECT_EQ(sent_[2].message.find("original.eml"), std::string::npos);
  EXPECT_NE(sent_[2].message.find("too large for"), std::string::npos);
}

TEST_F(SmtpForwardOriginalTest, AnUnsafeOriginalRefusedForItsSizeLeavesNoNoteOfTheFile) {
  const std::string original =
      "Subject: long\r\nMessage-ID: <o5@example.org>\r\n\r\n" + std::string(1200, 'x') + "\r\n";
  script_ = {{SendReport::Kind::kPermanent, "552 5.3.4 Message size exceeds fixed limit", {}, true},
             {SendReport::Kind::kSent, "", {}}};
  auto t = Scripted();
  ASSERT_TRUE(t);
  EXPECT_EQ(t->Deliver(ForwardRow(original, &original, 0, "evt_5"), cancel_).kind, OutcomeKind::kSuccess);
  ASSERT_EQ(sent_.size(), 2u);
  EXPECT_NE(sent_[0].message.find("original.eml"), std::string::npos);
  // The second says why the original is missing, and nothing else about it.
  EXPECT_NE(sent_[1].message.find("too large for"), std::string::npos);
  EXPECT_EQ(sent_[1].message.find("original.eml"), std::string::npos) << sent_[1].message;
}

TEST_F(SmtpForwardOriginalTest, AForwardTheServerRefusesForItsSizeGoesAgainWithoutTheOriginal) {
  const std::string original = "Subject: big\r\nMessage-ID: <o3@example.org>\r\n\r\nbig body\r\n";
  script_ = {{SendReport::Kind::kPermanent, "552 5.3.4 Message size exceeds fixed limit", {}, true},
             {SendReport::Kind::kSent, "", {}}};
  auto t = Scripted();
  ASSERT_TRUE(t);
  Outcome out = t->Deliver(ForwardRow(original, &original), cancel_);
  EXPECT_EQ(out.kind, OutcomeKind::kSuccess) << out.error;
  ASSERT_EQ(sent_.size(), 2u);
  EXPECT_NE(sent_[0].message.find("Content-Type: message/rfc822"), std::string::npos);
  EXPECT_EQ(sent_[1].message.find("Content-Type: message/rfc822"), std::string::npos);
  EXPECT_NE(sent_[1].message.find("too large for"), std::string::npos);
  EXPECT_EQ(sent_[1].to, sent_[0].to);

  // Without an original there is nothing to leave out: a dead letter, one send.
  sent_.clear();
  script_ = {{SendReport::Kind::kPermanent, "552 5.3.4 Message size exceeds fixed limit", {}, true}};
  target_.attach_original = false;
  auto plain = Scripted(std::make_shared<FakeLedger>());  // evt_1 was delivered to everyone in ledger_
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->Deliver(ForwardRow(original, &original), cancel_).kind, OutcomeKind::kPermanent);
  EXPECT_EQ(sent_.size(), 1u);
}

}  // namespace
}  // namespace mailhook::delivery
