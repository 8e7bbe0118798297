// Router: which targets an event goes to. Configs are built by the loader, so
// these tests see exactly what `run` routes with (a rule the loader accepts but
// the router ignores is the bug they guard against).
#include "daemon/router.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "config/config.h"

namespace mailhook::daemon {
namespace {

constexpr const char* kAccounts = R"(accounts:
  - name: support
    host: imap.example.com
    username: support@example.com
    password: hunter2
    folders: [INBOX, Support/Tier1, Support/Tier2/Urgent, Support.Old, Sales, "Sales Q1"]
  - name: billing
    host: imap.example.com
    username: billing@example.com
    password: hunter2
    folders: [INBOX, Invoices]
)";

config::Config Load(const std::string& targets) {
  auto r = config::LoadConfigFromString(std::string(kAccounts) + targets, "router.yml");
  std::string errors;
  for (const auto& e : r.errors) errors += e.ToString() + "\n";
  EXPECT_TRUE(r.config) << errors;
  return r.config.value_or(config::Config{});
}

std::vector<std::string> Targets(const config::Config& c, const std::string& account, const std::string& folder,
                                 const mime::MessageContent* content = nullptr) {
  std::vector<std::string> out;
  for (const auto& r : RoutesFor(c, account, folder, content)) out.push_back(r.target.ToString());
  return out;
}

using Names = std::vector<std::string>;

TEST(RouterTest, EmptyMatchSelectsEveryAccountAndFolder) {
  auto c = Load("webhooks:\n  - name: all\n    url: https://t.example/h\n");
  EXPECT_EQ(Targets(c, "support", "INBOX"), Names{"webhook:all"});
  EXPECT_EQ(Targets(c, "billing", "Invoices"), Names{"webhook:all"});
}

TEST(RouterTest, AccountsAndExactFoldersSelect) {
  auto c = Load(
      "webhooks:\n  - name: bill\n    url: https://t.example/h\n    match: { accounts: [billing] }\n"
      "hooks:\n  - name: sales\n    command: [/bin/true]\n    match: { folders: [Sales] }\n");
  EXPECT_EQ(Targets(c, "billing", "INBOX"), Names{"webhook:bill"});
  EXPECT_EQ(Targets(c, "support", "INBOX"), Names{});
  EXPECT_EQ(Targets(c, "support", "Sales"), Names{"hook:sales"});
  EXPECT_EQ(Targets(c, "support", "Sales Q1"), Names{});  // exact, not a prefix
}

TEST(RouterTest, StarMatchesAnyRunIncludingTheHierarchyDelimiter) {
  auto c = Load(
      "webhooks:\n  - name: s\n    url: https://t.example/h\n"
      "    match: { folders: [\"Support/*\"] }\n");
  EXPECT_EQ(Targets(c, "support", "Support/Tier1"), Names{"webhook:s"});
  EXPECT_EQ(Targets(c, "support", "Support/Tier2/Urgent"), Names{"webhook:s"});
  EXPECT_EQ(Targets(c, "support", "Support.Old"), Names{});
  EXPECT_EQ(Targets(c, "support", "INBOX"), Names{});
  EXPECT_EQ(Targets(c, "support", "support/Tier1"), Names{});  // case-sensitive
}

TEST(RouterTest, QuestionMarkMatchesExactlyOneCharacter) {
  auto c = Load(
      "webhooks:\n  - name: s\n    url: https://t.example/h\n"
      "    match: { folders: [\"Support/Tier?\"] }\n");
  EXPECT_EQ(Targets(c, "support", "Support/Tier1"), Names{"webhook:s"});
  EXPECT_EQ(Targets(c, "support", "Support/Tier"), Names{});
  EXPECT_EQ(Targets(c, "support", "Support/Tier2/Urgent"), Names{});
}

TEST(RouterTest, InboxIsCaseInsensitiveOtherNamesAreNot) {
  // RFC 3501 5.1: "INBOX" in any case is the inbox; other names are the server's.
  auto c = Load(
      "webhooks:\n  - name: s\n    url: https://t.example/h\n"
      "    match: { folders: [inbox, Sales] }\n");
  EXPECT_EQ(Targets(c, "support", "INBOX"), Names{"webhook:s"});
  EXPECT_EQ(Targets(c, "support", "Inbox"), Names{"webhook:s"});
  EXPECT_EQ(Targets(c, "support", "sales"), Names{});
}

TEST(RouterTest, WebhooksBeforeHooksEachWithItsAttachmentMode) {
  auto c = Load(
      "webhooks:\n  - name: w\n    url: https://t.example/h\n    attachments: content\n"
      "    max_attachment_bytes: 1000\n"
      "hooks:\n  - name: h\n    command: [/bin/true]\n    attachments: none\n");
  auto routes = RoutesFor(c, "support", "INBOX", nullptr);
  ASSERT_EQ(routes.size(), 2u);
  EXPECT_EQ(routes[0].target.ToString(), "webhook:w");
  EXPECT_EQ(routes[0].attachments, config::AttachmentMode::kContent);
  EXPECT_EQ(routes[0].max_attachment_bytes, 1000u);
  EXPECT_EQ(routes[1].target.ToString(), "hook:h");
  EXPECT_EQ(routes[1].attachments, config::AttachmentMode::kNone);
}

TEST(RouterTest, FromAndSubjectApplyOnlyOnceTheContentIsKnown) {
  auto c = Load(
      "webhooks:\n  - name: inv\n    url: https://t.example/h\n"
      "    match: { from: [\"*@vendor.example\"], subject: [\"*invoice*\"] }\n");
  // Before decoding: the target may want the message, so it is fetched.
  EXPECT_EQ(Targets(c, "billing", "Invoices"), Names{"webhook:inv"});
  mime::MessageContent m;
  m.from.push_back({"Vendor", "ap@Vendor.example"});
  m.subject = "Your INVOICE 42";
  EXPECT_EQ(Targets(c, "billing", "Invoices", &m), Names{"webhook:inv"});  // globs ignore case
  m.subject = "Hello";
  EXPECT_EQ(Targets(c, "billing", "Invoices", &m), Names{});
  m.subject.reset();
  EXPECT_EQ(Targets(c, "billing", "Invoices", &m), Names{});  // no subject is ""
  m.subject = "invoice";
  m.from[0].address = "someone@else.example";
  EXPECT_EQ(Targets(c, "billing", "Invoices", &m), Names{});
}

TEST(RouterTest, OnlyForwardsThatAttachTheOriginalGetItsBytes) {
  const std::string smtp =
      "smtp:\n"
      "  - name: fwd\n    host: smtp.example.com\n    username: a\n    password: p\n    from: a@example.com\n"
      "    mode: forward\n"
      "    to: [t@example.com]\n    text: x\n    attach_original: true\n"
      "  - name: plain\n    host: smtp.example.com\n    username: a\n    password: p\n    from: a@example.com\n"
      "    mode: forward\n"
      "    to: [t@example.com]\n    text: x\n"
      "  - name: ack\n    host: smtp.example.com\n    username: a\n    password: p\n    from: a@example.com\n"
      "    mode: reply\n    text: x\n";
  auto c = Load("webhooks:\n  - name: all\n    url: https://t.example/h\n" + smtp);
  std::vector<std::string> with;
  for (const Route& r : RoutesFor(c, "support", "INBOX", nullptr)) {
    if (r.original_message) with.push_back(r.target.ToString());
    EXPECT_EQ(r.auto_reply_headers, r.target.ToString().starts_with("smtp:")) << r.target.ToString();
  }
  EXPECT_EQ(with, Names{"smtp:fwd"});
}

}  // namespace
}  // namespace mailhook::daemon
