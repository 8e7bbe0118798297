// RFC 3834 loop protection: one test per rule, each with a near miss that
// must not skip (a rule that fires too eagerly silences real customers).
#include "delivery/loop_guard.h"

#include <gtest/gtest.h>

namespace mailhook::delivery {
namespace {

constexpr std::string_view kOwn = "support@example.com";

/// A message from a person: no rule fires.
LoopFacts Person() {
  LoopFacts f;
  f.sender_address = "ann@example.org";
  f.return_path = "<ann@example.org>";
  f.message_id = "<abc@example.org>";
  return f;
}

std::optional<SkipRule> Rule(const LoopFacts& f) { return StaticSkipRule(f, kOwn); }

TEST(LoopGuardTest, APersonIsAnswered) { EXPECT_EQ(Rule(Person()), std::nullopt); }

TEST(LoopGuardTest, RuleNamesAreTheMetricLabels) {
  EXPECT_EQ(RuleName(SkipRule::kAutoSubmitted), "auto_submitted");
  EXPECT_EQ(RuleName(SkipRule::kPrecedence), "precedence");
  EXPECT_EQ(RuleName(SkipRule::kMailingList), "list");
  EXPECT_EQ(RuleName(SkipRule::kNullSender), "null_sender");
  EXPECT_EQ(RuleName(SkipRule::kRobotSender), "robot_sender");
  EXPECT_EQ(RuleName(SkipRule::kOwnAddress), "own_address");
  EXPECT_EQ(RuleName(SkipRule::kAlreadyAnswered), "already_answered");
  EXPECT_EQ(RuleName(SkipRule::kRateLimited), "rate_limited");
}

TEST(LoopGuardTest, AutoSubmittedOtherThanNoSkips) {
  for (const char* value : {"auto-replied", "auto-generated", "Auto-Replied; owner-email=\"x@example.com\"",
                            "AUTO-NOTIFIED (vacation)", "yes"}) {
    LoopFacts f = Person();
    f.auto_submitted = value;
    EXPECT_EQ(Rule(f), SkipRule::kAutoSubmitted) << value;
  }
  for (const char* value : {"no", "No", " no (a person wrote this) ", "no; x=y", ""}) {
    LoopFacts f = Person();
    f.auto_submitted = value;
    EXPECT_EQ(Rule(f), std::nullopt) << "near miss: " << value;
  }
}

TEST(LoopGuardTest, PrecedenceBulkListJunkSkips) {
  for (const char* value : {"bulk", "List", " JUNK ", "bulk (newsletter)"}) {
    LoopFacts f = Person();
    f.precedence = value;
    EXPECT_EQ(Rule(f), SkipRule::kPrecedence) << value;
  }
  for (const char* value : {"first-class", "urgent", "bulky", "normal"}) {
    LoopFacts f = Person();
    f.precedence = value;
    EXPECT_EQ(Rule(f), std::nullopt) << "near miss: " << value;
  }
}

TEST(LoopGuardTest, ListIdOrListUnsubscribeSkips) {
  LoopFacts id = Person();
  id.has_list_id = true;
  EXPECT_EQ(Rule(id), SkipRule::kMailingList);
  LoopFacts unsubscribe = Person();
  unsubscribe.has_list_unsubscribe = true;
  EXPECT_EQ(Rule(unsubscribe), SkipRule::kMailingList);
  // Near miss: a person writing from an address named like a list.
  LoopFacts near = Person();
  near.sender_address = "list@example.org";
  EXPECT_EQ(Rule(near), std::nullopt);
}

TEST(LoopGuardTest, NullOrMissingSenderSkips) {
  for (const char* rp : {"<>", "< >"}) {
    LoopFacts bounce = Person();
    bounce.return_path = rp;
    EXPECT_EQ(Rule(bounce), SkipRule::kNullSender) << rp;
  }
  LoopFacts nobody = Person();
  nobody.sender_address = "";
  EXPECT_EQ(Rule(nobody), SkipRule::kNullSender);
  LoopFacts no_domain = Person();
  no_domain.sender_address = "undisclosed";
  EXPECT_EQ(Rule(no_domain), SkipRule::kNullSender);
  // Near miss: no Return-Path at all (not delivered by SMTP) is not a bounce.
  LoopFacts absent = Person();
  absent.return_path = "";
  EXPECT_EQ(Rule(absent), std::nullopt);
}

TEST(LoopGuardTest, RobotSendersSkip) {
  for (const char* sender :
       {"MAILER-DAEMON@mx.example.org", "postmaster@example.org", "noreply@example.org", "no-reply@example.org",
        "No_Reply@example.org", "donotreply@example.org", "do-not-reply@example.org", "noreply+abc@example.org",
        "bounce@example.org", "bounces+123-ann=example.org@mail.example.net", "bounce-42@example.org",
        "owner-users@lists.example.org", "users-request@lists.example.org"}) {
    LoopFacts f = Person();
    f.sender_address = sender;
    EXPECT_EQ(Rule(f), SkipRule::kRobotSender) << sender;
  }
  for (const char* sender :
       {"mailer@example.org", "post@example.org", "reply@example.org", "bouncer@club.example", "owner@example.org",
        "request@example.org", "requests-team@example.org", "noreplyguy@example.org", "ann@noreply.example.org"}) {
    LoopFacts f = Person();
    f.sender_address = sender;
    EXPECT_EQ(Rule(f), std::nullopt) << "near miss: " << sender;
  }
}

TEST(LoopGuardTest, ARobotReturnPathSkipsEvenWithAPersonInFrom) {
  LoopFacts f = Person();
  f.return_path = "<owner-users@lists.example.org>";
  EXPECT_EQ(Rule(f), SkipRule::kRobotSender);
  // Near miss: a Return-Path of a person's provider (SES-style VERP).
  f.return_path = "<0100018c-abc@amazonses.com>";
  EXPECT_EQ(Rule(f), std::nullopt);
}

TEST(LoopGuardTest, OurOwnFromAddressSkips) {
  LoopFacts f = Person();
  f.sender_address = "Support@EXAMPLE.com";
  EXPECT_EQ(Rule(f), SkipRule::kOwnAddress);
  LoopFacts via_return_path = Person();
  via_return_path.return_path = "<support@example.com>";
  EXPECT_EQ(Rule(via_return_path), SkipRule::kOwnAddress);
  // Near misses: the same local part elsewhere, a subdomain, a +tag.
  for (const char* sender : {"support@example.org", "support@mail.example.com", "support+x@example.com"}) {
    LoopFacts near = Person();
    near.sender_address = sender;
    EXPECT_EQ(Rule(near), std::nullopt) << "near miss: " << sender;
  }
}

TEST(LoopGuardTest, FactsAreReadFromTheHeaders) {
  auto fields = mime::ParseHeaderBlock(
      "Return-Path: <ann@example.org>\r\n"
      "Return-Path: <relay@example.net>\r\n"
      "From: =?utf-8?q?Ann?= <ann@example.org>\r\n"
      "Auto-Submitted: auto-replied\r\n"
      "Precedence: bulk\r\n"
      "List-ID: <users.lists.example.org>\r\n"
      "List-Unsubscribe: <mailto:users-leave@example.org>\r\n"
      "Message-ID: <abc@example.org>\r\n\r\n");
  LoopFacts f = LoopFactsFromHeaders(fields);
  EXPECT_EQ(f.return_path, "<ann@example.org>");
  EXPECT_EQ(f.sender_address, "ann@example.org");
  EXPECT_EQ(f.auto_submitted, "auto-replied");
  EXPECT_EQ(f.precedence, "bulk");
  EXPECT_TRUE(f.has_list_id);
  EXPECT_TRUE(f.has_list_unsubscribe);
  EXPECT_EQ(f.message_id, "<abc@example.org>");

  LoopFacts bounce = LoopFactsFromHeaders(mime::ParseHeaderBlock("Return-Path: <>\r\nSender: x@example.org\r\n\r\n"));
  EXPECT_EQ(bounce.return_path, "<>");
  EXPECT_EQ(bounce.sender_address, "x@example.org");  // Sender when there is no From
  EXPECT_EQ(Rule(bounce), SkipRule::kNullSender);

  LoopFacts plain = LoopFactsFromHeaders(mime::ParseHeaderBlock("From: ann@example.org\r\n\r\n"));
  EXPECT_EQ(plain.return_path, "");
  EXPECT_FALSE(plain.has_list_id);
  EXPECT_EQ(Rule(plain), std::nullopt);
}

// The event an smtp route gets (mime::EventPieces with auto_reply_headers).
TEST(LoopGuardTest, FactsAreReadFromTheEventOfAnSmtpRoute) {
  LoopFacts f = LoopFactsFromEventJson(R"({"type":"message.received","id":"evt_1",
    "message":{"message_id":"<abc@example.org>","from":[{"name":"Ann","address":"ann@example.org"}]},
    "auto_reply_headers":{"auto_submitted":"auto-replied","precedence":null,"list_id":"<l.example.org>",
      "list_unsubscribe":null,"return_path":"<>","sender":null}})");
  EXPECT_EQ(f.sender_address, "ann@example.org");
  EXPECT_EQ(f.message_id, "<abc@example.org>");
  EXPECT_EQ(f.auto_submitted, "auto-replied");
  EXPECT_EQ(f.precedence, "");
  EXPECT_TRUE(f.has_list_id);
  EXPECT_FALSE(f.has_list_unsubscribe);
  EXPECT_EQ(f.return_path, "<>");
  // A person's message: every header null, From set.
  LoopFacts person = LoopFactsFromEventJson(
      R"({"message":{"message_id":null,"from":[{"name":"","address":"bob@example.org"}]},
          "auto_reply_headers":{"auto_submitted":null,"precedence":null,"list_id":null,
          "list_unsubscribe":null,"return_path":"<bob@example.org>","sender":null}})");
  EXPECT_EQ(Rule(person), std::nullopt);
  // Not an event: nobody to answer, so the reply is skipped.
  EXPECT_EQ(Rule(LoopFactsFromEventJson("not json")), SkipRule::kNullSender);
  EXPECT_EQ(Rule(LoopFactsFromEventJson("[1]")), SkipRule::kNullSender);
}

TEST(LoopGuardTest, FactsAreReadFromExtractedContent) {
  mime::MessageContent c;
  c.auto_reply.sender = "Robot <noreply@example.org>";  // used only without From
  c.auto_reply.precedence = "junk";
  c.message_id = "<m@x>";
  LoopFacts f = LoopFactsFromContent(c);
  EXPECT_EQ(f.sender_address, "noreply@example.org");
  EXPECT_EQ(f.precedence, "junk");
  EXPECT_EQ(f.return_path, "");
  EXPECT_EQ(f.message_id, "<m@x>");
  c.from = {{"Ann", "ann@example.org"}};
  EXPECT_EQ(LoopFactsFromContent(c).sender_address, "ann@example.org");
}

}  // namespace
}  // namespace mailhook::delivery
