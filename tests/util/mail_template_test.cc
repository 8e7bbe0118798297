#include "util/mail_template.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace mailhook::util {
namespace {

using Escape = MailTemplate::Escape;

// The example event of CONTRACT.md "Event", as written there.
const nlohmann::json& ContractEvent() {
  static const nlohmann::json event = nlohmann::json::parse(R"({
    "type": "message.received",
    "schema": 1,
    "id": "evt_0123",
    "created_at": "2026-11-26T07:00:00Z",
    "account": "support",
    "mailbox": "INBOX",
    "uidvalidity": 1732600000,
    "uid": 4711,
    "message": {
      "message_id": "<abc@example.com>",
      "in_reply_to": ["<prev@example.com>"],
      "references": ["<root@example.com>", "<prev@example.com>"],
      "date": "2026-11-26T06:59:58Z",
      "subject": "decoded, UTF-8",
      "from": [{ "name": "Ann", "address": "ann@example.com" }],
      "to":   [{ "name": "", "address": "support@example.com" }],
      "cc": [], "reply_to": [],
      "flags": [],
      "size": 18342,
      "text": "the text/plain body, decoded to UTF-8, or null",
      "html": "the text/html body, decoded to UTF-8, or null",
      "attachments": [{
        "part": "2", "filename": "invoice.pdf", "content_type": "application/pdf",
        "disposition": "attachment", "content_id": null, "size": 48211,
        "sha256": "hex, when content was fetched", "content_base64": "only with attachments: content"
      }]
    }
  })");
  return event;
}

std::string Render(std::string_view source, const nlohmann::json& event, Escape escape = Escape::kText) {
  auto t = MailTemplate::Compile(source, escape);
  EXPECT_TRUE(t.ok()) << (t.ok() ? "" : t.error().ToString());
  return t.ok() ? t->Render(event) : "<compile error>";
}

TEST(MailTemplate, ContractExampleRenders) {
  EXPECT_EQ(Render("Re: {{message.subject}}", ContractEvent(), Escape::kHeader), "Re: decoded, UTF-8");
  EXPECT_EQ(Render("We received your message \"{{message.subject}}\". Reference: {{id}}", ContractEvent()),
            "We received your message \"decoded, UTF-8\". Reference: evt_0123");
}

TEST(MailTemplate, EveryKnownFieldRenders) {
  const nlohmann::json& e = ContractEvent();
  EXPECT_EQ(Render("{{ uid }}/{{uidvalidity}}/{{message.size}}", e), "4711/1732600000/18342");
  EXPECT_EQ(Render("{{type}} {{account}} {{mailbox}} {{created_at}}", e),
            "message.received support INBOX 2026-11-26T07:00:00Z");
  EXPECT_EQ(Render("{{message.message_id}} {{message.date}}", e), "<abc@example.com> 2026-11-26T06:59:58Z");
  EXPECT_EQ(Render("{{message.from}} | {{message.from.name}} | {{message.from.address}}", e),
            "Ann <ann@example.com> | Ann | ann@example.com");
  EXPECT_EQ(Render("{{message.to}}|{{message.cc}}|{{message.reply_to.address}}", e), "support@example.com||");
  EXPECT_EQ(Render("{{message.attachments.count}}", e), "1");
  EXPECT_EQ(Render("{{message.text}}", e), "the text/plain body, decoded to UTF-8, or null");
  nlohmann::json many = e;
  many["message"]["to"] = {{{"name", "Smith, Bob"}, {"address", "bob@example.com"}},
                           {{"name", "Eve \"E\""}, {"address", "eve@example.com"}},
                           {{"name", "Zoë"}, {"address", "zoe@example.org"}}};
  EXPECT_EQ(Render("{{message.to}}", many),
            "\"Smith, Bob\" <bob@example.com>, \"Eve \\\"E\\\"\" <eve@example.com>, Zoë <zoe@example.org>");
  for (std::string_view name : MailTemplate::KnownFields()) {
    EXPECT_TRUE(MailTemplate::Compile("{{" + std::string(name) + "}}", Escape::kText).ok()) << name;
  }
}

TEST(MailTemplate, UnknownFieldIsAnErrorNamingItAndTheKnownOnes) {
  auto t = MailTemplate::Compile("Re: {{message.subjet}}", Escape::kHeader);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.error().code(), "config.template");
  EXPECT_TRUE(t.error().NeedsOperator());
  EXPECT_NE(t.error().message().find("\"message.subjet\""), std::string::npos) << t.error().message();
  EXPECT_NE(t.error().message().find("position 5"), std::string::npos) << t.error().message();
  EXPECT_NE(t.error().message().find("message.subject, "), std::string::npos) << t.error().message();
  // Attachment contents are not reachable, nor is anything outside the list.
  EXPECT_FALSE(MailTemplate::Compile("{{message.attachments}}", Escape::kText).ok());
  EXPECT_FALSE(MailTemplate::Compile("{{message}}", Escape::kText).ok());
}

TEST(MailTemplate, SyntaxErrors) {
  auto unclosed = MailTemplate::Compile("Hello {{message.subject", Escape::kText);
  ASSERT_FALSE(unclosed.ok());
  EXPECT_NE(unclosed.error().message().find("unclosed \"{{\" at position 7"), std::string::npos)
      << unclosed.error().message();
  auto empty = MailTemplate::Compile("a {{ }} b", Escape::kText);
  ASSERT_FALSE(empty.ok());
  EXPECT_NE(empty.error().message().find("empty"), std::string::npos);
}

TEST(MailTemplate, LiteralBraces) {
  const nlohmann::json& e = ContractEvent();
  EXPECT_EQ(Render("{{{{id}} is {{id}}; a }} alone is text", e), "{{id}} is evt_0123; a }} alone is text");
  EXPECT_EQ(Render("no fields at all", e), "no fields at all");
  EXPECT_EQ(Render("", e), "");
}

TEST(MailTemplate, EscapingPerMode) {
  nlohmann::json e = ContractEvent();
  e["message"]["subject"] = "<script>alert('x')</script> & \"q\"\r\nBcc: victim@example.com\x01";
  EXPECT_EQ(
      Render("<p>{{message.subject}}</p>", e, Escape::kHtml),
      "<p>&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;\r\nBcc: victim@example.com\x01</p>");
  const std::string header = Render("Re: {{message.subject}}", e, Escape::kHeader);
  EXPECT_EQ(header, "Re: <script>alert('x')</script> & \"q\"  Bcc: victim@example.com");
  EXPECT_EQ(header.find_first_of("\r\n\x01"), std::string::npos);
  EXPECT_EQ(Render("{{message.subject}}", e, Escape::kText), e["message"]["subject"].get<std::string>());
  // The operator's own literal text is cleaned in header mode too.
  EXPECT_EQ(Render("a\nb", e, Escape::kHeader), "a b");
  EXPECT_EQ(Render("<b>{{id}}</b>", e, Escape::kHtml), "<b>evt_0123</b>");
}

TEST(MailTemplate, MissingOrNullFieldsRenderEmpty) {
  nlohmann::json e = ContractEvent();
  e["message"]["html"] = nullptr;
  e["message"]["from"] = nlohmann::json::array();
  e["message"].erase("subject");
  EXPECT_EQ(Render("[{{message.html}}][{{message.from}}][{{message.from.name}}][{{message.subject}}]", e), "[][][][]");
  EXPECT_EQ(Render("[{{message.subject}}][{{uid}}]", nlohmann::json::object()), "[][]");
  EXPECT_EQ(Render("[{{message.from.address}}]", nlohmann::json::parse(R"({"message": {"from": "odd"}})")), "[]");
}

TEST(MailTemplate, OutputIsBounded) {
  nlohmann::json e = ContractEvent();
  e["message"]["subject"] = std::string(MailTemplate::kMaxHeaderBytes - 1, 'x') + "ü";
  const std::string header = Render("{{message.subject}}", e, Escape::kHeader);
  EXPECT_EQ(header.size(), MailTemplate::kMaxHeaderBytes - 1) << "cut before the 2-byte character";
  e["message"]["text"] = std::string(4 << 20, 'y');
  const std::string body =
      Render("{{message.text}}{{message.text}}{{message.text}}{{message.text}}{{message.text}}", e, Escape::kText);
  EXPECT_EQ(body.size(), MailTemplate::kMaxBodyBytes);
}

}  // namespace
}  // namespace mailhook::util
