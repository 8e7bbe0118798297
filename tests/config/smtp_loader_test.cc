// The `smtp:` targets (issue 12): a valid block, the defaults, and each rule
// the loader enforces, with the line and column of the key and the fix.
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "config/check.h"
#include "config/config.h"
#include "config/key_catalog.h"
#include "test_util.h"

namespace mailhook::config {
namespace {

using namespace std::chrono_literals;
using testing::Dump;
using testing::HasError;
using testing::Reveal;

LoadResult Load(const std::string& yaml) { return LoadConfigFromString(yaml, "config.yml"); }

// An account (lines 1-5) and a webhook (6-8); smtp: starts at line 9, its
// first entry's keys at line 10 onwards.
constexpr const char* kBase = R"(accounts:
  - name: support
    host: imap.example.com
    username: support@example.com
    password: hunter2
webhooks:
  - name: tickets
    url: https://tickets.internal/hooks/email
smtp:
)";

// A minimal reply target: lines 10-16.
constexpr const char* kReply = R"(  - name: ack
    host: smtp.example.com
    username: support@example.com
    password: s3cret
    from: "Support <support@example.com>"
    mode: reply
    text: "We received {{message.subject}}"
)";

std::string With(const std::string& entry) { return std::string(kBase) + entry; }

const SmtpTarget& Only(const LoadResult& r) {
  static const SmtpTarget kNone;
  if (!r.config || r.config->smtp.size() != 1) {
    ADD_FAILURE() << "expected one smtp target\n" << Dump(r);
    return kNone;
  }
  return r.config->smtp[0];
}

TEST(SmtpLoaderTest, AMinimalReplyTargetGetsTheDefaults) {
  auto r = Load(With(kReply));
  ASSERT_TRUE(r.config) << Dump(r);
  const SmtpTarget& t = Only(r);
  EXPECT_EQ(t.name, "ack");
  EXPECT_EQ(t.host, "smtp.example.com");
  EXPECT_EQ(t.tls, TlsMode::kImplicit);
  EXPECT_EQ(t.port, 465);
  EXPECT_TRUE(t.tls_verify);
  EXPECT_FALSE(t.allow_insecure);
  EXPECT_FALSE(t.ca_file);
  EXPECT_EQ(t.username, "support@example.com");
  EXPECT_EQ(Reveal(t.password), "s3cret");
  EXPECT_EQ(t.auth, SmtpAuth::kPlain);
  EXPECT_FALSE(t.oauth2);
  EXPECT_EQ(t.from, (MailAddress{"Support", "support@example.com"}));
  EXPECT_EQ(t.mode, SmtpMode::kReply);
  EXPECT_TRUE(t.to.empty());
  EXPECT_TRUE(t.cc.empty());
  EXPECT_EQ(t.subject, "Re: {{message.subject}}");
  EXPECT_EQ(t.text, "We received {{message.subject}}");
  EXPECT_FALSE(t.html);
  EXPECT_FALSE(t.attach_original);
  EXPECT_EQ(t.rate_limit.per_sender, 1);
  EXPECT_EQ(t.rate_limit.window, Duration(24h));
  EXPECT_EQ(t.timeout, Duration(60s));
  EXPECT_EQ(t.retry_schedule, DefaultRetrySchedule());
  EXPECT_EQ(t.concurrency, kDefaultConcurrency);
  EXPECT_TRUE(t.match.accounts.empty());
}

TEST(SmtpLoaderTest, ReadsEveryKeyOfAForwardTarget) {
  auto r = Load(With(R"(  - name: fwd
    host: smtp.example.com
    port: 2587
    tls: starttls
    ca_file: /etc/ssl/private-ca.pem
    username: support@example.com
    password_command: [/bin/echo, pw]
    auth: login
    from: support@example.com
    mode: forward
    to: ["tickets@example.com", "{{message.from.address}}"]
    cc: [team@example.com]
    subject: "[ticket] {{message.subject}}"
    text: "t"
    html: "<p>h</p>"
    attach_original: false
    match: { accounts: [support], folders: [INBOX] }
    retry_schedule: [1s, 1m]
    timeout: 2m
    concurrency: 2
)"));
  ASSERT_TRUE(r.config) << Dump(r);
  const SmtpTarget& t = Only(r);
  EXPECT_EQ(t.port, 2587);
  EXPECT_EQ(t.tls, TlsMode::kStartTls);
  EXPECT_EQ(t.ca_file, "/etc/ssl/private-ca.pem");
  EXPECT_EQ(t.password.kind(), SecretRef::Kind::kCommand);
  EXPECT_EQ(t.auth, SmtpAuth::kLogin);
  EXPECT_EQ(t.from, (MailAddress{"", "support@example.com"}));
  EXPECT_EQ(t.mode, SmtpMode::kForward);
  EXPECT_EQ(t.to, (std::vector<std::string>{"tickets@example.com", "{{message.from.address}}"}));
  EXPECT_EQ(t.cc, std::vector<std::string>{"team@example.com"});
  EXPECT_EQ(t.subject, "[ticket] {{message.subject}}");
  EXPECT_EQ(t.html, "<p>h</p>");
  EXPECT_FALSE(t.attach_original);
  std::string forward = std::string(kReply);
  forward.replace(forward.find("mode: reply"), 11, "mode: forward\n    to: [x@y.example]");
  auto attach = Load(With(forward + "    attach_original: true\n"));
  ASSERT_TRUE(attach.config) << Dump(attach);
  EXPECT_TRUE(Only(attach).attach_original);
  EXPECT_EQ(t.match.accounts, std::vector<std::string>{"support"});
  EXPECT_EQ(t.retry_schedule, (std::vector<Duration>{1s, 1min}));
  EXPECT_EQ(t.timeout, Duration(2min));
  EXPECT_EQ(t.concurrency, 2);
}

TEST(SmtpLoaderTest, PortFollowsTlsAndForwardDefaultsItsSubject) {
  std::string starttls = kReply;
  starttls.insert(starttls.find("    username"), "    tls: starttls\n");
  EXPECT_EQ(Only(Load(With(starttls))).port, 587);
  std::string none = kReply;
  none.insert(none.find("    username"), "    tls: none\n    allow_insecure: true\n");
  auto r = Load(With(none));
  EXPECT_EQ(Only(r).port, 587);
  EXPECT_THAT(InsecureSettings(*r.config), ::testing::Contains(::testing::HasSubstr("smtp ack: tls: none")));
  auto fwd = Load(With(
      R"(  - { name: f, host: h, username: u, password: p, from: a@b.example, mode: forward, to: [x@y.example], html: h }
)"));
  EXPECT_EQ(Only(fwd).subject, "Fwd: {{message.subject}}");
}

TEST(SmtpLoaderTest, TlsNoneNeedsAllowInsecure) {
  std::string none = kReply;
  none.insert(none.find("    username"), "    tls: none\n");  // line 12
  auto r = Load(With(none));
  EXPECT_TRUE(HasError(r, 12, 10, "tls: none in smtp target \"ack\" sends the password and the mail in clear text"))
      << Dump(r);
  EXPECT_TRUE(HasError(r, 12, 10, "add allow_insecure: true")) << Dump(r);
  std::string unverified = kReply;
  unverified.insert(unverified.find("    username"), "    tls_verify: false\n");
  auto u = Load(With(unverified));
  EXPECT_TRUE(HasError(u, 12, 17, "tls_verify: false in smtp target \"ack\"")) << Dump(u);
}

TEST(SmtpLoaderTest, ReplyWithToIsAnError) {
  std::string yaml = With(std::string(kReply) + "    to: [someone@example.com]\n");  // line 17
  auto r = Load(yaml);
  EXPECT_TRUE(HasError(r, 17, 9, "\"to\" in smtp target \"ack\" is for mode: forward; a reply goes to the sender"))
      << Dump(r);
  EXPECT_EQ(r.errors.size(), 1u) << Dump(r);
  // The contract's own example writes `to: []` in reply mode: that is fine.
  auto empty = Load(With(std::string(kReply) + "    to: []\n"));
  EXPECT_TRUE(empty.config) << Dump(empty);
}

TEST(SmtpLoaderTest, ForwardWithoutToIsAnError) {
  std::string fwd = kReply;
  fwd.replace(fwd.find("mode: reply"), 11, "mode: forward");
  auto r = Load(With(fwd));
  EXPECT_TRUE(HasError(r, 10, 5, "smtp target \"ack\" has mode: forward but no \"to\"; add to:")) << Dump(r);
  auto empty = Load(With(fwd + "    to: []\n"));
  EXPECT_TRUE(HasError(empty, 17, 9, "mode: forward needs at least one address")) << Dump(empty);
}

TEST(SmtpLoaderTest, ModeIsRequiredAndReplyOnlyKeysAreRefusedInForward) {
  std::string no_mode = kReply;
  no_mode.erase(no_mode.find("    mode: reply\n"), 16);
  auto r = Load(With(no_mode));
  EXPECT_TRUE(HasError(r, 10, 5, "has no \"mode\"; add mode: reply")) << Dump(r);
  auto fwd = Load(With(R"(  - name: f
    host: h
    username: u
    password: p
    from: a@b.example
    mode: forward
    to: [x@y.example]
    text: t
    rate_limit: { per_sender: 2 }
)"));
  EXPECT_TRUE(HasError(fwd, 18, 17, "rate_limit in smtp target \"f\" limits replies")) << Dump(fwd);
  auto attach = Load(With(std::string(kReply) + "    attach_original: true\n"));
  EXPECT_TRUE(HasError(attach, 17, 22, "attach_original: true in smtp target \"ack\" is for mode: forward"))
      << Dump(attach);
}

TEST(SmtpLoaderTest, BadFromAddressesAreErrors) {
  for (const char* bad :
       {"\"support\"", "\"Support <support@>\"", "\"<@example.com>\"", "\"a b@example.com\"",
        "\"Support <support@example.com> x\"", "\"Support, Inc. <s@example.com>\"", "\"a@b.example, c@d.example\"",
        "\"a@exa mple.com\"", "\"a..b@example.com\"", "\"jürgen@example.com\""}) {
    std::string yaml = kReply;
    yaml.replace(yaml.find("\"Support <support@example.com>\""), 31, bad);
    auto r = Load(With(yaml));
    EXPECT_TRUE(HasError(r, 14, 11, "\"from\" in smtp target \"ack\"")) << bad << "\n" << Dump(r);
    EXPECT_TRUE(HasError(r, 14, 11, "write one address, optionally with a name")) << bad << "\n" << Dump(r);
  }
  for (const char* good : {"\"\\\"Support, Inc.\\\" <s@example.com>\"", "\"<s@example.com>\"", "s@localhost",
                           "\"Süpport <s@bücher.example>\""}) {
    std::string yaml = kReply;
    yaml.replace(yaml.find("\"Support <support@example.com>\""), 31, good);
    auto r = Load(With(yaml));
    EXPECT_TRUE(r.config) << good << "\n" << Dump(r);
  }
  std::string quoted = kReply;
  quoted.replace(quoted.find("\"Support <support@example.com>\""), 31, "\"\\\"Support, Inc.\\\" <s@example.com>\"");
  EXPECT_EQ(Only(Load(With(quoted))).from, (MailAddress{"Support, Inc.", "s@example.com"}));
}

TEST(SmtpLoaderTest, TemplatesThatDoNotCompileAreErrorsAtTheirLine) {
  auto r = Load(With(R"(  - name: f
    host: h
    username: u
    password: p
    from: a@b.example
    mode: forward
    to: ["{{message.from[0].address}}"]
    subject: "{{message.subject"
    text: "{{ message.nope }}"
)"));
  EXPECT_TRUE(HasError(r, 16, 10, "\"to\" in smtp target \"f\"")) << Dump(r);
  EXPECT_TRUE(HasError(r, 17, 14, "\"subject\" in smtp target \"f\"")) << Dump(r);
  EXPECT_TRUE(HasError(r, 18, 11, "message.nope")) << Dump(r);
  EXPECT_EQ(r.errors.size(), 3u) << Dump(r);
}

TEST(SmtpLoaderTest, LiteralRecipientsAreCheckedTemplatesAreKept) {
  auto r = Load(With(R"(  - name: f
    host: h
    username: u
    password: p
    from: a@b.example
    mode: forward
    to: ["tickets@example.com", "not an address", "{{message.from.address}}"]
    cc: ["team@"]
    text: t
)"));
  EXPECT_TRUE(HasError(r, 16, 33, "address \"not an address\" in \"to\" of smtp target \"f\"")) << Dump(r);
  EXPECT_TRUE(HasError(r, 17, 10, "address \"team@\" in \"cc\" of smtp target \"f\" has no domain")) << Dump(r);
  EXPECT_EQ(r.errors.size(), 2u) << Dump(r);
}

TEST(SmtpLoaderTest, UnknownKeyIsAnErrorWithTheKnownKeys) {
  std::string yaml = With(std::string(kReply) + "    reply_to: x@example.com\n");  // line 17
  auto r = Load(yaml);
  EXPECT_TRUE(HasError(r, 17, 5, "reply_to")) << Dump(r);
  ASSERT_EQ(r.errors.size(), 1u) << Dump(r);
  EXPECT_THAT(r.errors[0].message, ::testing::HasSubstr("attach_original"));
  auto rate = Load(With(std::string(kReply) + "    rate_limit: { per_sender: 2, per_day: 3 }\n"));
  EXPECT_TRUE(HasError(rate, 17, 34, "unknown key \"per_day\" in rate_limit of smtp target \"ack\"")) << Dump(rate);
}

TEST(SmtpLoaderTest, ANameTakenByAWebhookIsAnError) {
  std::string yaml = kReply;
  yaml.replace(yaml.find("name: ack"), 9, "name: tickets");
  auto r = Load(With(yaml));
  EXPECT_TRUE(HasError(r, 10, 11, "smtp target name \"tickets\" is already used by the webhook at line 7")) << Dump(r);
  EXPECT_EQ(r.errors.size(), 1u) << Dump(r);
  auto twice = Load(With(std::string(kReply) + kReply));
  EXPECT_TRUE(HasError(twice, 17, 11, "already used by the smtp target at line 10")) << Dump(twice);
}

TEST(SmtpLoaderTest, CredentialsFollowTheAccountRules) {
  std::string no_password = kReply;
  no_password.erase(no_password.find("    password: s3cret\n"), 21);
  auto r = Load(With(no_password));
  EXPECT_TRUE(HasError(r, 10, 5, "smtp target \"ack\" has no password; add password: ${SMTP_PASSWORD}")) << Dump(r);
  std::string oauth_with_plain = kReply;
  oauth_with_plain.replace(oauth_with_plain.find("    password: s3cret\n"), 21,
                           "    oauth2: { token_command: [/bin/echo, t] }\n");
  auto plain = Load(With(oauth_with_plain));
  EXPECT_TRUE(HasError(plain, 13, 13, "is used only with auth: xoauth2; add auth: xoauth2")) << Dump(plain);
  std::string refresh = oauth_with_plain;
  refresh.replace(refresh.find("    oauth2: { token_command: [/bin/echo, t] }\n"), 46,
                  "    auth: xoauth2\n"
                  "    oauth2:\n"
                  "      token_url: https://oauth2.googleapis.com/token\n"
                  "      client_id: abc\n"
                  "      refresh_token: r\n"
                  "      scope: https://mail.google.com/\n");
  auto refresh_ok = Load(With(refresh));
  ASSERT_TRUE(refresh_ok.config) << Dump(refresh_ok);
  ASSERT_TRUE(Only(refresh_ok).oauth2);
  EXPECT_EQ(Only(refresh_ok).oauth2->client_id, "abc");
  EXPECT_EQ(Only(refresh_ok).oauth2->scope, "https://mail.google.com/");
  std::string token = kReply;
  token.replace(token.find("    password: s3cret\n"), 21,
                "    auth: xoauth2\n    oauth2: { token_command: [/bin/echo, t] }\n");
  auto ok = Load(With(token));
  ASSERT_TRUE(ok.config) << Dump(ok);
  EXPECT_EQ(Only(ok).auth, SmtpAuth::kXoauth2);
  EXPECT_EQ(Only(ok).password.kind(), SecretRef::Kind::kCommand);
  std::string http = refresh;
  http.replace(http.find("https://oauth2.googleapis.com/token"), 35, "http://tokens.example.com/token");
  auto insecure = Load(With(http));
  EXPECT_TRUE(HasError(insecure, 15, 18, "add allow_insecure: true to the smtp target")) << Dump(insecure);
}

TEST(SmtpLoaderTest, ABodyIsRequiredAndRateLimitsAreChecked) {
  std::string no_body = kReply;
  no_body.erase(no_body.find("    text: "));
  auto r = Load(With(no_body));
  EXPECT_TRUE(HasError(r, 10, 5, "smtp target \"ack\" has no body; add text:")) << Dump(r);
  auto nulls = Load(With(no_body + "    text: null\n    html: null\n"));
  EXPECT_TRUE(HasError(nulls, 10, 5, "has no body")) << Dump(nulls);
  auto rate = Load(With(std::string(kReply) + "    rate_limit: { per_sender: 3, window: 1h }\n"));
  ASSERT_TRUE(rate.config) << Dump(rate);
  EXPECT_EQ(Only(rate).rate_limit.per_sender, 3);
  EXPECT_EQ(Only(rate).rate_limit.window, Duration(1h));
  auto zero = Load(With(std::string(kReply) + "    rate_limit: { per_sender: 0, window: 10s }\n"));
  EXPECT_TRUE(HasError(zero, 17, 31, "\"per_sender\" in rate_limit of smtp target \"ack\" must be from 1"))
      << Dump(zero);
  EXPECT_TRUE(HasError(zero, 17, 42, "\"window\" in rate_limit of smtp target \"ack\" must be from 1m")) << Dump(zero);
}

TEST(SmtpLoaderTest, SmtpTargetsAloneAreEnoughTargets) {
  std::string yaml = kBase;
  yaml.replace(yaml.find("webhooks:\n"),
               std::string("webhooks:\n  - name: tickets\n    url: https://tickets.internal/hooks/email\n").size(), "");
  auto r = Load(yaml + kReply);
  ASSERT_TRUE(r.config) << Dump(r);
  std::ostringstream out;
  EXPECT_EQ(PrintCheck(r, out), kCheckOk);
  EXPECT_THAT(out.str(), ::testing::HasSubstr("0 webhooks, 0 hooks, 1 smtp target"));
  auto shape = Load(std::string(kBase) + "  name: ack\n");
  EXPECT_TRUE(HasError(shape, 10, 3, "\"smtp\" must be a list")) << Dump(shape);
}

}  // namespace
}  // namespace mailhook::config
