#include <filesystem>
#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "config/config.h"
#include "test_util.h"

namespace mailhook::config {
namespace {

using namespace std::chrono_literals;
using testing::Dump;
using testing::HasError;
using testing::Reveal;
using testing::ScopedEnv;
using testing::TempDir;

LoadResult Load(const std::string& yaml) { return LoadConfigFromString(yaml, "config.yml"); }

// A valid config; tests append to or edit it. Line numbers matter below.
constexpr const char* kAccount = R"(accounts:
  - name: support
    host: imap.example.com
    username: support@example.com
    password: hunter2
)";
constexpr const char* kWebhook = R"(webhooks:
  - name: tickets
    url: https://tickets.internal/hooks/email
)";

std::string Valid() { return std::string(kAccount) + kWebhook; }

TEST(LoaderTest, MinimalConfigGetsTheDefaults) {
  auto r = Load(Valid());
  ASSERT_TRUE(r.config) << Dump(r);
  EXPECT_TRUE(r.errors.empty());
  const Config& c = *r.config;
  EXPECT_EQ(c.state_dir, "/var/lib/mailhook");
  EXPECT_EQ(c.log.level, "info");
  EXPECT_EQ(c.log.format, "text");
  EXPECT_FALSE(c.http_listen);
  ASSERT_EQ(c.accounts.size(), 1u);
  const Account& a = c.accounts[0];
  EXPECT_EQ(a.name, "support");
  EXPECT_EQ(a.host, "imap.example.com");
  EXPECT_EQ(a.port, 993);
  EXPECT_EQ(a.tls, TlsMode::kImplicit);
  EXPECT_TRUE(a.tls_verify);
  EXPECT_EQ(a.username, "support@example.com");
  EXPECT_EQ(Reveal(a.password), "hunter2");
  EXPECT_EQ(a.password.kind(), SecretRef::Kind::kInline);
  EXPECT_EQ(a.auth, AuthMethod::kLogin);
  EXPECT_EQ(a.folders, std::vector<std::string>{"INBOX"});
  EXPECT_EQ(a.start_from, StartFrom::kNew);
  EXPECT_EQ(a.idle_refresh, Duration(25min));
  EXPECT_FALSE(a.on_delivered.mark_seen);
  EXPECT_FALSE(a.on_delivered.move_to);
  ASSERT_EQ(c.webhooks.size(), 1u);
  const Webhook& w = c.webhooks[0];
  EXPECT_EQ(w.url.origin(), "https://tickets.internal:443");
  EXPECT_EQ(w.url.target(), "/hooks/email");
  EXPECT_TRUE(w.secrets.empty());
  EXPECT_EQ(w.timeout, Duration(10s));
  EXPECT_EQ(w.attachments, AttachmentMode::kMetadata);
  EXPECT_EQ(w.max_attachment_bytes, 10u * 1024 * 1024);
  EXPECT_EQ(w.retry_schedule, DefaultRetrySchedule());
  EXPECT_TRUE(c.hooks.empty());
}

TEST(LoaderTest, ReadsEveryOption) {
  auto r = Load(R"(state_dir: /data
log: { level: debug, format: json }
http: { listen: "127.0.0.1:8025" }
accounts:
  - name: support
    host: imap.example.com
    port: 1993
    tls: starttls
    tls_verify: false
    allow_insecure: true
    ca_file: /etc/ca.pem
    username: u
    password: p
    auth: plain
    folders: [INBOX, "Support/Urgent"]
    start_from: unseen
    idle_refresh: 10m
    timeout: 45s
    on_delivered: { mark_seen: true, move_to: Done, add_flags: ["\\Flagged", "$Forwarded"] }
webhooks:
  - name: tickets
    url: http://127.0.0.1:9000/h
    secret: [whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw, whsec_b2xk]
    headers: { Authorization: "Bearer abc" }
    timeout: 1m30s
    match: { accounts: [support], folders: [INBOX], from: ["*@a.example"], subject: ["*x*"] }
    attachments: content
    max_attachment_bytes: 1000
    retry_schedule: [1s, 2s]
    ca_file: /etc/ca2.pem
    tls_verify: false
    allow_insecure: true
    concurrency: 8
hooks:
  - name: archive
    command: [/bin/cat, "-"]
    timeout: 5s
    attachments: none
)");
  ASSERT_TRUE(r.config) << Dump(r);
  const Config& c = *r.config;
  EXPECT_EQ(c.state_dir, "/data");
  EXPECT_EQ(c.log.level, "debug");
  EXPECT_EQ(c.log.format, "json");
  ASSERT_TRUE(c.http_listen);
  EXPECT_EQ(c.http_listen->host(), "127.0.0.1");
  EXPECT_EQ(c.http_listen->port(), 8025);
  const Account& a = c.accounts[0];
  EXPECT_EQ(a.port, 1993);
  EXPECT_EQ(a.tls, TlsMode::kStartTls);
  EXPECT_FALSE(a.tls_verify);
  EXPECT_EQ(a.ca_file, "/etc/ca.pem");
  EXPECT_EQ(a.auth, AuthMethod::kPlain);
  EXPECT_EQ(a.folders, (std::vector<std::string>{"INBOX", "Support/Urgent"}));
  EXPECT_EQ(a.start_from, StartFrom::kUnseen);
  EXPECT_EQ(a.idle_refresh, Duration(10min));
  EXPECT_EQ(a.timeout, Duration(45s));
  EXPECT_TRUE(a.on_delivered.mark_seen);
  EXPECT_EQ(a.on_delivered.move_to, "Done");
  EXPECT_EQ(a.on_delivered.add_flags, (std::vector<std::string>{"\\Flagged", "$Forwarded"}));
  const Webhook& w = c.webhooks[0];
  ASSERT_EQ(w.secrets.size(), 2u);
  EXPECT_EQ(Reveal(w.secrets[1]), "whsec_b2xk");
  EXPECT_EQ(Reveal(w.headers.at("Authorization")), "Bearer abc");
  EXPECT_EQ(w.timeout, Duration(90s));
  EXPECT_EQ(w.match.accounts, std::vector<std::string>{"support"});
  EXPECT_EQ(w.match.from, std::vector<std::string>{"*@a.example"});
  EXPECT_EQ(w.match.subject, std::vector<std::string>{"*x*"});
  EXPECT_EQ(w.attachments, AttachmentMode::kContent);
  EXPECT_EQ(w.max_attachment_bytes, 1000u);
  EXPECT_EQ(w.retry_schedule, (std::vector<Duration>{1s, 2s}));
  EXPECT_EQ(w.ca_file, "/etc/ca2.pem");
  EXPECT_FALSE(w.tls_verify);
  EXPECT_TRUE(w.allow_insecure);
  EXPECT_EQ(w.concurrency, 8);
  const Hook& h = c.hooks[0];
  EXPECT_EQ(h.command, (std::vector<std::string>{"/bin/cat", "-"}));
  EXPECT_EQ(h.timeout, Duration(5s));
  EXPECT_EQ(h.attachments, AttachmentMode::kNone);
  EXPECT_EQ(h.retry_schedule, DefaultRetrySchedule());
}

TEST(LoaderTest, PortDefaultsFollowTls) {
  auto r = Load(Valid() + "");
  ASSERT_TRUE(r.config);
  EXPECT_EQ(r.config->accounts[0].port, 993);
  std::string starttls = Valid();
  starttls.insert(starttls.find("    username"), "    tls: starttls\n");
  r = Load(starttls);
  ASSERT_TRUE(r.config) << Dump(r);
  EXPECT_EQ(r.config->accounts[0].port, 143);
  std::string none = Valid();
  none.insert(none.find("    username"), "    tls: none\n    allow_insecure: true\n");
  r = Load(none);
  ASSERT_TRUE(r.config) << Dump(r);
  EXPECT_EQ(r.config->accounts[0].tls, TlsMode::kNone);
  EXPECT_EQ(r.config->accounts[0].port, 143);
}

TEST(LoaderTest, UnknownKeyNamesLineColumnAndSuggestion) {
  std::string yaml = Valid();
  yaml.replace(yaml.find("password: hunter2"), 17, "pasword: hunter2");
  auto r = Load(yaml);
  EXPECT_FALSE(r.config);
  ASSERT_FALSE(r.errors.empty());
  EXPECT_EQ(r.errors[0].ToString(),
            "config.yml:5:5: unknown key \"pasword\" in account \"support\" (did you mean \"password\"?)");
  // The secret value never appears, even in a misspelt key's line.
  EXPECT_EQ(Dump(r).find("hunter2"), std::string::npos) << Dump(r);
}

TEST(LoaderTest, UnknownKeyWithoutSuggestionListsTheKnownKeys) {
  auto r = Load("colour: blue\n" + Valid());
  ASSERT_EQ(r.errors.size(), 1u) << Dump(r);
  EXPECT_EQ(r.errors[0].line, 1);
  EXPECT_EQ(r.errors[0].column, 1);
  EXPECT_THAT(r.errors[0].message, ::testing::HasSubstr("known keys are: state_dir log http"));
}

TEST(LoaderTest, RepeatedKeyIsAnError) {
  std::string yaml = Valid();
  yaml.insert(yaml.find("    username"), "    host: other.example.com\n");
  auto r = Load(yaml);
  EXPECT_TRUE(HasError(r, 4, 5, "key \"host\" appears twice in account \"support\"")) << Dump(r);
}

TEST(LoaderTest, BadDurationsAreErrorsWithTheFix) {
  auto r = Load(Valid() + "    timeout: 30x\n    retry_schedule: [5s, 30]\n");
  EXPECT_TRUE(HasError(r, 9, 14, "\"30x\" is not a duration for \"timeout\" in webhook \"tickets\"")) << Dump(r);
  EXPECT_TRUE(HasError(r, 10, 26, "has no unit: write 30s")) << Dump(r);
  EXPECT_EQ(r.errors.size(), 2u);
}

TEST(LoaderTest, ZeroDurationIsAnError) {
  auto r = Load(Valid() + "    timeout: 0s\n");
  EXPECT_TRUE(HasError(r, 9, 14, "must be longer than 0")) << Dump(r);
}

TEST(LoaderTest, BadPortsAreErrors) {
  std::string yaml = Valid();
  yaml.insert(yaml.find("    username"), "    port: 99999\n");
  auto r = Load(yaml);
  EXPECT_TRUE(HasError(r, 4, 11, "\"99999\" is not a valid port in account \"support\"; use a number from 1 to 65535"))
      << Dump(r);
  yaml.replace(yaml.find("99999"), 5, "imap");
  r = Load(yaml);
  EXPECT_TRUE(HasError(r, 4, 11, "\"imap\" is not a valid port")) << Dump(r);
}

TEST(LoaderTest, BadEnumsListTheChoices) {
  std::string yaml = Valid();
  yaml.insert(yaml.find("    username"), "    tls: ssl\n    auth: cram-md5\n    start_from: oldest\n");
  yaml += "    attachments: all\n";
  auto r = Load(yaml);
  EXPECT_TRUE(
      HasError(r, 4, 10, "\"tls\" in account \"support\" must be one of implicit | starttls | none, not \"ssl\""))
      << Dump(r);
  EXPECT_TRUE(HasError(r, 5, 11, "login | plain | xoauth2")) << Dump(r);
  EXPECT_TRUE(HasError(r, 6, 17, "new | all | unseen")) << Dump(r);
  EXPECT_TRUE(HasError(r, 12, 18, "none | metadata | content")) << Dump(r);
}

TEST(LoaderTest, BadBooleansAndNumbersAreErrors) {
  std::string yaml = Valid();
  yaml.insert(yaml.find("    username"), "    tls_verify: maybe\n");
  yaml += "    max_attachment_bytes: 10MB\n";
  auto r = Load(yaml);
  EXPECT_TRUE(HasError(r, 4, 17, "must be true or false, not \"maybe\"")) << Dump(r);
  EXPECT_TRUE(HasError(r, 10, 27, "must be a whole number of bytes")) << Dump(r);
}

TEST(LoaderTest, NamesMustBeLowerCaseTokens) {
  std::string yaml = Valid();
  yaml.replace(yaml.find("name: support"), 13, "name: Support Team");
  auto r = Load(yaml);
  EXPECT_TRUE(HasError(r, 2, 11, "name \"Support Team\" in accounts[0] must use only a-z, 0-9")) << Dump(r);
  EXPECT_TRUE(HasError(r, 2, 11, "\"support-team\"")) << Dump(r);
}

TEST(LoaderTest, MissingNameIsAnError) {
  std::string yaml = Valid();
  yaml.replace(yaml.find("- name: tickets"), 15, "- url2: x");
  auto r = Load(yaml);
  EXPECT_TRUE(HasError(r, 7, 5, "webhooks[0] has no \"name\"")) << Dump(r);
}

TEST(LoaderTest, DuplicateNamesAreErrors) {
  auto r = Load(std::string(kAccount) + R"(  - name: support
    host: b.example.com
    username: u
    password: p
webhooks:
  - name: tickets
    url: https://a.example/
  - name: tickets
    url: https://b.example/
hooks:
  - name: tickets
    command: [/bin/true]
)");
  EXPECT_TRUE(HasError(r, 6, 11, "account name \"support\" is already used at line 2")) << Dump(r);
  EXPECT_TRUE(HasError(r, 13, 11, "webhook name \"tickets\" is already used by the webhook at line 11")) << Dump(r);
  EXPECT_TRUE(HasError(r, 16, 11, "hook name \"tickets\" is already used by the webhook at line 11")) << Dump(r);
  EXPECT_EQ(r.errors.size(), 3u) << Dump(r);
}

TEST(LoaderTest, TlsNoneNeedsAllowInsecure) {
  std::string yaml = Valid();
  yaml.insert(yaml.find("    username"), "    tls: none\n");
  auto r = Load(yaml);
  EXPECT_TRUE(HasError(r, 4, 10, "add allow_insecure: true")) << Dump(r);
}

TEST(LoaderTest, FoldersMustBeANonEmptyListWithoutRepeats) {
  std::string yaml = Valid();
  yaml += "";
  std::string empty = yaml;
  empty.insert(empty.find("webhooks:"), "    folders: []\n");
  auto r = Load(empty);
  EXPECT_TRUE(HasError(r, 6, 14, "\"folders\" in account \"support\" is empty")) << Dump(r);
  std::string scalar = yaml;
  scalar.insert(scalar.find("webhooks:"), "    folders: INBOX\n");
  r = Load(scalar);
  EXPECT_TRUE(HasError(r, 6, 14, "must be a list, e.g. folders: [INBOX, { name: Support, idle: true }]")) << Dump(r);
  std::string twice = yaml;
  twice.insert(twice.find("webhooks:"), "    folders: [INBOX, Sent, INBOX]\n");
  r = Load(twice);
  EXPECT_TRUE(HasError(r, 6, 28, "folder \"INBOX\" is listed twice")) << Dump(r);
}

TEST(LoaderTest, FoldersTakeTheMapFormAndConnectionKeysHaveDefaults) {
  auto r = Load(Valid());
  ASSERT_TRUE(r.config) << Dump(r);
  const config::Account& d = r.config->accounts[0];
  EXPECT_EQ(d.notify, config::NotifyMode::kAuto);
  EXPECT_EQ(d.max_connections, 10);
  EXPECT_EQ(d.poll_interval, std::chrono::seconds(60));
  std::string yaml = Valid();
  yaml.insert(yaml.find("webhooks:"),
              "    folders: [INBOX, { name: Archive, idle: true }, Sent]\n    notify: \"off\"\n"
              "    max_connections: 3\n    poll_interval: 5m\n");
  r = Load(yaml);
  ASSERT_TRUE(r.config) << Dump(r);
  const config::Account& a = r.config->accounts[0];
  EXPECT_EQ(a.folders, (std::vector<std::string>{"INBOX", "Archive", "Sent"}));
  EXPECT_EQ(a.idle_pinned, std::vector<std::string>{"Archive"});
  EXPECT_EQ(a.notify, config::NotifyMode::kOff);
  EXPECT_EQ(a.max_connections, 3);
  EXPECT_EQ(a.poll_interval, std::chrono::minutes(5));
}

TEST(LoaderTest, ConnectionKeysAreChecked) {
  auto with = [](const std::string& lines) {
    std::string yaml = Valid();
    yaml.insert(yaml.find("webhooks:"), lines);
    return Load(yaml);
  };
  auto r = with("    max_connections: 1\n");
  EXPECT_TRUE(HasError(r, 6, 22, "must be between 2 and 1000 (one connection watches, one fetches), not 1")) << Dump(r);
  r = with("    poll_interval: 100ms\n");
  EXPECT_TRUE(HasError(r, 6, 20, "is shorter than 1s")) << Dump(r);
  r = with("    notify: sometimes\n");
  EXPECT_TRUE(HasError(r, 6, 13, "must be one of auto | off")) << Dump(r);
  r = with("    folders: [{ name: INBOX, idel: true }]\n");
  EXPECT_TRUE(HasError(r, 6, 30, "unknown key \"idel\"")) << Dump(r);
  r = with("    folders: [{ idle: true }]\n");
  EXPECT_TRUE(HasError(r, 6, 15, "has no \"name\"; add name: INBOX")) << Dump(r);
}

TEST(LoaderTest, LivenessIntervalDefaultsToAMinuteAndStaysBelowIdleRefresh) {
  auto with = [](const std::string& lines) {
    std::string yaml = Valid();
    yaml.insert(yaml.find("webhooks:"), lines);
    return Load(yaml);
  };
  auto r = Load(Valid());
  ASSERT_TRUE(r.config) << Dump(r);
  EXPECT_EQ(r.config->accounts[0].liveness_interval, std::chrono::seconds(60));
  r = with("    liveness_interval: 2m\n");
  ASSERT_TRUE(r.config) << Dump(r);
  EXPECT_EQ(r.config->accounts[0].liveness_interval, std::chrono::minutes(2));
  for (const char* off : {"0", "0s"}) {
    r = with(std::string("    liveness_interval: ") + off + "\n");
    ASSERT_TRUE(r.config) << off << Dump(r);
    EXPECT_EQ(r.config->accounts[0].liveness_interval, config::Duration(0)) << off;
  }
  // The default yields to a shorter idle_refresh (no error for an old config).
  r = with("    idle_refresh: 10s\n");
  ASSERT_TRUE(r.config) << Dump(r);
  r = with("    idle_refresh: 10m\n    liveness_interval: 10m\n");
  EXPECT_TRUE(HasError(r, 7, 24, "must be below idle_refresh")) << Dump(r);
  r = with("    liveness_interval: 500ms\n");
  EXPECT_TRUE(HasError(r, 6, 24, "is shorter than 1s")) << Dump(r);
  r = with("    liveness_interval: 60\n");
  EXPECT_TRUE(HasError(r, 6, 24, "has no unit")) << Dump(r);
}

TEST(LoaderTest, UrlMustBeHttpOrHttpsWithAHost) {
  for (const char* bad : {"ftp://example.com/x", "https://", "tickets.internal/hook", "https://:80/x"}) {
    std::string yaml = Valid();
    yaml.replace(yaml.find("https://tickets.internal/hooks/email"), 36, bad);
    auto r = Load(yaml);
    EXPECT_TRUE(HasError(r, 8, 10, "\"url\" in webhook \"tickets\": the url")) << bad << "\n" << Dump(r);
    EXPECT_TRUE(HasError(r, 8, 10, "write e.g. https://tickets.internal/hooks/email")) << bad << "\n" << Dump(r);
  }
}

TEST(LoaderTest, NeedsAnAccountAndATarget) {
  auto r = Load("state_dir: /tmp/x\n");
  EXPECT_TRUE(HasError(r, 1, 1, "no accounts")) << Dump(r);
  EXPECT_TRUE(HasError(r, 1, 1, "no webhooks, no hooks and no smtp targets")) << Dump(r);
  auto hooks_only = Load(std::string(kAccount) + "hooks:\n  - name: h\n    command: [/bin/true]\n");
  EXPECT_TRUE(hooks_only.config) << Dump(hooks_only);
  auto empty = Load("");
  ASSERT_EQ(empty.errors.size(), 1u);
  EXPECT_THAT(empty.errors[0].message, ::testing::HasSubstr("empty"));
}

TEST(LoaderTest, CollectsAllErrorsNotJustTheFirst) {
  auto r = Load(R"(accounts:
  - name: support
    host: imap.example.com
    port: 0
    username: u
    password: p
    idle_refresh: 45m
webhooks:
  - name: Tickets
    url: mailto:x
    timeout: soon
)");
  EXPECT_EQ(r.errors.size(), 5u) << Dump(r);
  EXPECT_TRUE(HasError(r, 4, 11, "port")) << Dump(r);
  EXPECT_TRUE(HasError(r, 7, 19, "longer than 29m")) << Dump(r);
  EXPECT_TRUE(HasError(r, 9, 11, "\"tickets\"")) << Dump(r);
  EXPECT_TRUE(HasError(r, 10, 10, "url")) << Dump(r);
  EXPECT_TRUE(HasError(r, 11, 14, "\"soon\" is not a duration")) << Dump(r);
}

TEST(LoaderTest, YamlSyntaxErrorHasAPosition) {
  auto r = Load("accounts:\n  - name: [unclosed\n");
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_GT(r.errors[0].line, 0);
  EXPECT_THAT(r.errors[0].message, ::testing::HasSubstr("YAML syntax error"));
}

TEST(LoaderTest, WrongShapesAreErrors) {
  auto r = Load("accounts: {name: x}\nwebhooks: 3\n");
  EXPECT_TRUE(HasError(r, 1, 11, "\"accounts\" must be a list")) << Dump(r);
  EXPECT_TRUE(HasError(r, 2, 11, "\"webhooks\" must be a list")) << Dump(r);
  auto scalar_entry = Load("accounts: [support]\nhooks: [{name: h, command: [/bin/true]}]\n");
  EXPECT_TRUE(HasError(scalar_entry, 1, 12, "accounts[0] must be a map")) << Dump(scalar_entry);
}

TEST(LoaderTest, MissingRequiredKeysAreNamedWithAnExample) {
  auto r = Load("accounts:\n  - name: a\nhooks:\n  - name: h\n");
  EXPECT_TRUE(HasError(r, 2, 5, "account \"a\" has no \"host\"; add host: imap.example.com")) << Dump(r);
  EXPECT_TRUE(HasError(r, 2, 5, "has no \"username\"")) << Dump(r);
  EXPECT_TRUE(HasError(r, 2, 5, "has no password; add password: ${IMAP_PASSWORD}")) << Dump(r);
  EXPECT_TRUE(HasError(r, 4, 5, "hook \"h\" has no \"command\"")) << Dump(r);
}

TEST(LoaderTest, MoveToAndFlagRules) {
  std::string yaml = Valid();
  yaml.insert(yaml.find("webhooks:"),
              "    folders: [INBOX, Archive]\n    on_delivered: { move_to: Archive, add_flags: [\"bad flag\"] }\n");
  auto r = Load(yaml);
  EXPECT_TRUE(HasError(r, 7, 30, "is a watched folder")) << Dump(r);
  EXPECT_TRUE(HasError(r, 7, 51, "is not an IMAP flag")) << Dump(r);
}

TEST(LoaderTest, HttpListenAndLogAreValidated) {
  auto r = Load("http: { listen: \"8025\" }\nlog: { level: verbose, colour: red }\n" + Valid());
  EXPECT_TRUE(HasError(r, 1, 17, "is not HOST:PORT")) << Dump(r);
  EXPECT_TRUE(HasError(r, 2, 15, "trace | debug | info | warn | error")) << Dump(r);
  EXPECT_TRUE(HasError(r, 2, 24, "unknown key \"colour\" in log")) << Dump(r);
  auto port = Load("http: { listen: \"0.0.0.0:99999\" }\n" + Valid());
  EXPECT_TRUE(HasError(port, 1, 17, "is not HOST:PORT")) << Dump(port);
  // The address `run` binds is the one parsed here: an unbracketed IPv6
  // literal is ambiguous, so it is refused here too (it passed check before).
  auto v6 = Load("http: { listen: \"::1:8025\" }\n" + Valid());
  EXPECT_TRUE(HasError(v6, 1, 17, "is not HOST:PORT")) << Dump(v6);
  auto ok = Load("http: { listen: \"[::1]:0\" }\n" + Valid());
  ASSERT_TRUE(ok.config) << Dump(ok);
  EXPECT_EQ(ok.config->http_listen->host(), "::1");
  EXPECT_EQ(ok.config->http_listen->port(), 0);
}

TEST(LoaderTargetTest, WebhookUrlIsParsedOnceAndRefusesUserinfo) {
  // user:password@ passed the loader and failed `run`; credentials in a URL
  // end up in logs, so the loader refuses them with the fix.
  auto r = Load(std::string(kAccount) + "webhooks:\n  - name: t\n    url: https://bob:pw@tickets.internal/x\n");
  EXPECT_TRUE(HasError(r, 8, 10, "user:password@ part")) << Dump(r);
  EXPECT_EQ(Dump(r).find("bob:pw"), std::string::npos);
  auto upper = Load(std::string(kAccount) + "webhooks:\n  - name: t\n    url: HTTP://LOCALHOST:9/x\n");
  ASSERT_TRUE(upper.config) << Dump(upper);  // loopback: plain http allowed
  EXPECT_EQ(upper.config->webhooks[0].url.origin(), "http://localhost:9");
}

// ---- environment ----

TEST(LoaderEnvTest, ExpandsVariablesInValues) {
  ScopedEnv host("MH_TEST_HOST", "mail.example.org");
  ScopedEnv pw("MH_TEST_PASSWORD", "s3cret");
  auto r = Load(R"(accounts:
  - name: support
    host: ${MH_TEST_HOST}
    port: ${MH_TEST_PORT:-1143}
    username: ${MH_TEST_USER:-ann}
    password: ${MH_TEST_PASSWORD}
hooks:
  - name: h
    command: [/bin/echo, "${MH_TEST_HOST}", "$${literal}"]
)");
  ASSERT_TRUE(r.config) << Dump(r);
  const Account& a = r.config->accounts[0];
  EXPECT_EQ(a.host, "mail.example.org");
  EXPECT_EQ(a.port, 1143);
  EXPECT_EQ(a.username, "ann");
  EXPECT_EQ(Reveal(a.password), "s3cret");
  EXPECT_EQ(r.config->hooks[0].command, (std::vector<std::string>{"/bin/echo", "mail.example.org", "${literal}"}));
}

TEST(LoaderEnvTest, MissingVariableIsAnErrorWithThePosition) {
  ::unsetenv("MH_TEST_UNSET_PASSWORD");
  std::string yaml = Valid();
  yaml.replace(yaml.find("hunter2"), 7, "${MH_TEST_UNSET_PASSWORD}");
  auto r = Load(yaml);
  ASSERT_EQ(r.errors.size(), 1u) << Dump(r);
  EXPECT_EQ(r.errors[0].ToString(),
            "config.yml:5:15: environment variable \"MH_TEST_UNSET_PASSWORD\" is not set (used by "
            "\"password\" in account \"support\"); set it, or write ${MH_TEST_UNSET_PASSWORD:-default}");
}

TEST(LoaderEnvTest, ValuesCannotInjectYaml) {
  ScopedEnv host("MH_TEST_HOST", "x\n    password: injected");
  std::string yaml = Valid();
  yaml.replace(yaml.find("imap.example.com"), 16, "${MH_TEST_HOST}");
  auto r = Load(yaml);
  ASSERT_TRUE(r.config) << Dump(r);
  EXPECT_EQ(Reveal(r.config->accounts[0].password), "hunter2");
}

// ---- secrets ----

TEST(LoaderSecretTest, PasswordFileIsRelativeToTheConfigFile) {
  TempDir dir;
  dir.Write("imap_password", "from-file\n");
  std::string yaml = Valid();
  yaml.replace(yaml.find("password: hunter2"), 17, "password_file: imap_password");
  std::string path = dir.Write("mailhook.yml", yaml);
  auto r = LoadConfig(path);
  ASSERT_TRUE(r.config) << Dump(r);
  EXPECT_EQ(Reveal(r.config->accounts[0].password), "from-file");
  EXPECT_EQ(r.file, path);
}

TEST(LoaderSecretTest, MissingSecretFileIsAnErrorAtItsPosition) {
  std::string yaml = Valid();
  yaml.replace(yaml.find("password: hunter2"), 17, "password_file: /nonexistent/imap_password");
  auto r = Load(yaml);
  ASSERT_EQ(r.errors.size(), 1u) << Dump(r);
  EXPECT_EQ(r.errors[0].line, 5);
  EXPECT_EQ(r.errors[0].column, 20);
  EXPECT_THAT(r.errors[0].message, ::testing::HasSubstr("/nonexistent/imap_password"));
}

TEST(LoaderSecretTest, PasswordCommandRunsWithoutAShell) {
  std::string yaml = Valid();
  yaml.replace(yaml.find("password: hunter2"), 17, "password_command: [printf, \"%s\\n\", \"pw from $(cmd)\"]");
  auto r = Load(yaml);
  ASSERT_TRUE(r.config) << Dump(r);
  EXPECT_EQ(Reveal(r.config->accounts[0].password), "pw from $(cmd)");
  EXPECT_EQ(r.config->accounts[0].password.command().front(), "printf");
}

TEST(LoaderSecretTest, FailingCommandNamesTheCommandNotItsOutput) {
  std::string yaml = Valid();
  yaml.replace(yaml.find("password: hunter2"), 17, "password_command: [sh, -c, \"echo leaked-secret; exit 4\"]");
  auto r = Load(yaml);
  ASSERT_TRUE(r.config) << Dump(r);  // loading runs no command
  auto value = r.config->accounts[0].password.Resolve();
  ASSERT_FALSE(value.ok());
  EXPECT_THAT(value.error().message(), ::testing::HasSubstr("\"password_command\" in account \"support\""));
  EXPECT_THAT(value.error().message(), ::testing::HasSubstr("\"sh\" exited with status 4"));
  EXPECT_EQ(value.error().message().find("leaked-secret"), std::string::npos);
}

TEST(LoaderSecretTest, LoadingRunsNoCommandResolvingRunsEachEveryTime) {
  TempDir dir;
  const std::string marker = (dir.path() / "ran").string();
  const std::string touch = "[sh, -c, \"echo x >> " + marker + "; echo ";
  std::string yaml = std::string(kAccount) + kWebhook + "    secret_command: " + touch + "whsec_AAAA\"]\n" +
                     "    headers: { X-T: { value_command: " + touch + "t\"] } }\n" +
                     "hooks:\n  - name: h\n    command: [/bin/true]\n    env: { T: { command: " + touch + "t\"] } }\n";
  yaml.replace(yaml.find("password: hunter2"), 17, "password_command: " + touch + "pw\"]");
  auto r = Load(yaml);
  ASSERT_TRUE(r.config) << Dump(r);
  EXPECT_FALSE(std::filesystem::exists(marker)) << "a *_command ran while the config was loaded";
  const Config& c = *r.config;
  EXPECT_EQ(Reveal(c.accounts[0].password), "pw");
  EXPECT_EQ(Reveal(c.accounts[0].password), "pw");  // again at the next login
  EXPECT_EQ(Reveal(c.webhooks[0].secrets[0]), "whsec_AAAA");
  EXPECT_EQ(Reveal(c.webhooks[0].headers.at("X-T")), "t");
  EXPECT_EQ(Reveal(c.hooks[0].env.at(0).second), "t");
  std::ifstream in(marker);
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(all, "x\nx\nx\nx\nx\n");  // five resolutions, five runs
}

TEST(LoaderSecretTest, OnlyOneSourcePerSecret) {
  std::string yaml = Valid();
  yaml.insert(yaml.find("webhooks:"), "    password_file: /run/secrets/x\n");
  auto r = Load(yaml);
  EXPECT_TRUE(HasError(r, 2, 5, "sets more than one of password, password_file, password_command")) << Dump(r);
}

TEST(LoaderSecretTest, Oauth2TokenFillsThePasswordAndKeepsTheCommand) {
  auto r = Load(R"(accounts:
  - name: gmail
    host: imap.gmail.com
    username: a@example.com
    auth: xoauth2
    oauth2: { token_command: [echo, ya29.token] }
hooks: [{ name: h, command: [/bin/true] }]
)");
  ASSERT_TRUE(r.config) << Dump(r);
  EXPECT_EQ(Reveal(r.config->accounts[0].password), "ya29.token");
  EXPECT_EQ(r.config->accounts[0].password.command(), (std::vector<std::string>{"echo", "ya29.token"}));
  auto wrong = Load(Valid() + "");
  std::string yaml = Valid();
  yaml.insert(yaml.find("webhooks:"), "    oauth2: { token: abc }\n");
  wrong = Load(yaml);
  EXPECT_TRUE(HasError(wrong, 6, 13, "only with auth: xoauth2")) << Dump(wrong);
  auto none =
      Load("accounts:\n  - { name: g, host: h, username: u, auth: xoauth2 }\nhooks: [{ name: h, command: [x] }]\n");
  EXPECT_TRUE(HasError(none, 2, 5, "oauth2: { token_command")) << Dump(none);
  EXPECT_TRUE(HasError(none, 2, 5, "add oauth2: { token_url")) << Dump(none);
}

// Issue 9: the built-in refresh flow, parsed into Account::oauth2.
TEST(LoaderOAuth2Test, RefreshFlowIsParsed) {
  TempDir dir;
  std::string refresh = dir.Write("refresh", "1//rt\n");
  auto r = Load(R"(accounts:
  - name: gmail
    host: imap.gmail.com
    username: a@example.com
    auth: oauthbearer
    oauth2:
      token_url: https://oauth2.googleapis.com/token
      client_id: "123.apps.googleusercontent.com"
      client_secret_command: [echo, cs]
      refresh_token_file: )" +
                refresh + R"(
      scope: https://mail.google.com/
hooks: [{ name: h, command: [/bin/true] }]
)");
  ASSERT_TRUE(r.config) << Dump(r);
  const Account& a = r.config->accounts[0];
  EXPECT_EQ(a.auth, AuthMethod::kOauthbearer);
  ASSERT_TRUE(a.oauth2);
  EXPECT_EQ(a.oauth2->token_url.host(), "oauth2.googleapis.com");
  EXPECT_EQ(a.oauth2->token_url.target(), "/token");
  EXPECT_EQ(a.oauth2->client_id, "123.apps.googleusercontent.com");
  ASSERT_TRUE(a.oauth2->client_secret);
  EXPECT_EQ(a.oauth2->client_secret->kind(), SecretRef::Kind::kCommand);
  EXPECT_EQ(a.oauth2->refresh_token.kind(), SecretRef::Kind::kFile);
  EXPECT_EQ(a.oauth2->refresh_token.file(), refresh);
  EXPECT_EQ(Reveal(a.oauth2->refresh_token), "1//rt");
  EXPECT_EQ(a.oauth2->scope, "https://mail.google.com/");
  EXPECT_TRUE(a.password.empty());
}

TEST(LoaderOAuth2Test, MixingBothFormsOrMissingKeysIsAnError) {
  const std::string head = "accounts:\n  - name: g\n    host: h\n    username: u\n    auth: xoauth2\n";
  const std::string tail = "hooks: [{ name: h, command: [/bin/true] }]\n";
  auto mixed = Load(head +
                    "    oauth2: { token: t, token_url: \"https://t.example/token\", client_id: c, "
                    "refresh_token: r }\n" +
                    tail);
  EXPECT_TRUE(HasError(mixed, 6, 13, "mixes an access token source")) << Dump(mixed);
  EXPECT_TRUE(HasError(mixed, 6, 13, "remove token*")) << Dump(mixed);
  auto no_refresh = Load(head + "    oauth2: { token_url: \"https://t.example/token\", client_id: c }\n" + tail);
  EXPECT_TRUE(HasError(no_refresh, 6, 13, "has no refresh token; add refresh_token_file")) << Dump(no_refresh);
  auto no_client = Load(head + "    oauth2: { token_url: \"https://t.example/token\", refresh_token: r }\n" + tail);
  EXPECT_TRUE(HasError(no_client, 6, 0, "client_id")) << Dump(no_client);
  auto login = Load(
      "accounts:\n  - name: g\n    host: h\n    username: u\n    oauth2: { token_url: "
      "\"https://t.example/token\", client_id: c, refresh_token: r }\n" +
      tail);
  EXPECT_TRUE(HasError(login, 5, 13, "only with auth: xoauth2 or oauthbearer")) << Dump(login);
}

TEST(LoaderOAuth2Test, PlainHttpTokenUrlOnlyToLoopbackOrWithAllowInsecure) {
  auto with = [](const std::string& url, const std::string& extra) {
    return Load("accounts:\n  - name: g\n    host: h\n    username: u\n    auth: xoauth2\n" + extra +
                "    oauth2: { token_url: \"" + url +
                "\", client_id: c, refresh_token: r }\n"
                "hooks: [{ name: h, command: [/bin/true] }]\n");
  };
  auto remote = with("http://tokens.example/token", "");
  EXPECT_TRUE(HasError(remote, 6, 0, "sends the refresh token in clear text")) << Dump(remote);
  auto loopback = with("http://127.0.0.1:8080/token", "");
  ASSERT_TRUE(loopback.config) << Dump(loopback);
  EXPECT_FALSE(loopback.config->accounts[0].oauth2->token_url.https());
  auto allowed = with("http://tokens.example/token", "    allow_insecure: true\n");
  ASSERT_TRUE(allowed.config) << Dump(allowed);
  // Said at start-up with the other insecure settings; loopback is not.
  const auto insecure = InsecureSettings(*allowed.config);
  ASSERT_EQ(insecure.size(), 1u);
  EXPECT_NE(insecure[0].find("oauth2.token_url is plain http://"), std::string::npos) << insecure[0];
  EXPECT_TRUE(InsecureSettings(*loopback.config).empty());
}

TEST(LoaderSecretTest, WebhookSecretIsAStringOrAListOrFiles) {
  TempDir dir;
  std::string a = dir.Write("a", "whsec_AAAA\n");
  std::string b = dir.Write("b", "whsec_BBBB\n");
  auto r = Load(std::string(kAccount) + kWebhook + "    secret_file: [" + a + ", " + b + "]\n");
  ASSERT_TRUE(r.config) << Dump(r);
  ASSERT_EQ(r.config->webhooks[0].secrets.size(), 2u);
  EXPECT_EQ(Reveal(r.config->webhooks[0].secrets[0]), "whsec_AAAA");
  EXPECT_EQ(Reveal(r.config->webhooks[0].secrets[1]), "whsec_BBBB");
  auto one = Load(Valid() + "    secret: whsec_AAAA\n");
  ASSERT_TRUE(one.config) << Dump(one);
  EXPECT_EQ(one.config->webhooks[0].secrets.size(), 1u);
  auto cmd = Load(Valid() + "    secret_command: [echo, whsec_CCCC]\n");
  ASSERT_TRUE(cmd.config) << Dump(cmd);
  EXPECT_EQ(Reveal(cmd.config->webhooks[0].secrets[0]), "whsec_CCCC");
}

TEST(LoaderSecretTest, MalformedWhsecIsAnErrorWithoutTheValue) {
  auto r = Load(Valid() + "    secret: whsec_not*base64!\n");
  ASSERT_EQ(r.errors.size(), 1u) << Dump(r);
  EXPECT_EQ(r.errors[0].line, 9);
  EXPECT_EQ(r.errors[0].column, 13);
  EXPECT_THAT(r.errors[0].message, ::testing::HasSubstr("is not whsec_<base64>"));
  EXPECT_EQ(Dump(r).find("not*base64"), std::string::npos);
  // Without the prefix the value is still read as base64 by the signer, so a
  // value it cannot decode passed `check` and failed `run`: refused here now.
  auto bare = Load(Valid() + "    secret: my-webhook-secret\n");
  EXPECT_TRUE(HasError(bare, 9, 13, "is not whsec_<base64>")) << Dump(bare);
  // Padding is optional for the signer, so it is here too.
  auto unpadded = Load(Valid() + "    secret: whsec_b2s\n");
  EXPECT_TRUE(unpadded.errors.empty()) << Dump(unpadded);
}

TEST(LoaderSecretTest, HeadersFromValuesFilesAndCommands) {
  TempDir dir;
  std::string token = dir.Write("token", "t0k\n");
  auto r = Load(Valid() + "    headers:\n      Authorization: { value_file: " + token +
                ", prefix: \"Bearer \" }\n      X-A: plain\n      X-B: { value_command: [echo, cmd] }\n");
  ASSERT_TRUE(r.config) << Dump(r);
  const auto& h = r.config->webhooks[0].headers;
  EXPECT_EQ(Reveal(h.at("Authorization")), "Bearer t0k");
  EXPECT_EQ(Reveal(h.at("X-A")), "plain");
  EXPECT_EQ(Reveal(h.at("X-B")), "cmd");
}

TEST(LoaderSecretTest, BadHeadersAreErrors) {
  ScopedEnv crlf("MH_TEST_CRLF", "a\r\nX-Evil: 1");
  auto r = Load(Valid() +
                "    headers:\n      webhook-signature: x\n      \"Bad Name\": x\n      X-C: "
                "\"${MH_TEST_CRLF}\"\n      X-D: { valu: x }\n      Transfer-Encoding: chunked\n");
  EXPECT_TRUE(HasError(r, 10, 7, "is set by mailhook itself")) << Dump(r);
  EXPECT_TRUE(HasError(r, 14, 7, "is set by mailhook itself")) << Dump(r);  // framing: ours
  EXPECT_TRUE(HasError(r, 11, 7, "not a valid HTTP field name")) << Dump(r);
  EXPECT_TRUE(HasError(r, 12, 12, "contains a line break")) << Dump(r);
  EXPECT_TRUE(HasError(r, 13, 14, "did you mean \"value\"")) << Dump(r);
  EXPECT_EQ(Dump(r).find("X-Evil"), std::string::npos);
}

// ---- targets ----

TEST(LoaderTargetTest, MatchMustNameKnownAccountsAndWatchedFolders) {
  auto r = Load(Valid() + "    match: { accounts: [suport], folders: [Spam] }\n");
  EXPECT_TRUE(HasError(r, 9, 25, "account \"suport\" in match of webhook \"tickets\" is not defined")) << Dump(r);
  auto folder = Load(Valid() + "    match: { folders: [Spam, \"Support/*\", inbox, \"INB?X\"] }\n");
  ASSERT_EQ(folder.errors.size(), 2u) << Dump(folder);
  EXPECT_TRUE(HasError(folder, 9, 24, "folder \"Spam\" in match of webhook \"tickets\" matches no folder watched"))
      << Dump(folder);
  // A pattern is judged by the router's rule: this one selects nothing watched.
  EXPECT_TRUE(HasError(folder, 9, 30, "folder pattern \"Support/*\" in match of webhook")) << Dump(folder);
}

TEST(LoaderTargetTest, MatchFolderPatternsAreParsedForTheRouter) {
  auto r = Load(std::string(kAccount) + "    folders: [INBOX, Support/Tier1]\n" + kWebhook +
                "    match: { folders: [\"Support/*\", inbox] }\n");
  ASSERT_TRUE(r.config) << Dump(r);
  const auto& folders = r.config->webhooks[0].match.folders;
  ASSERT_EQ(folders.size(), 2u);
  EXPECT_TRUE(folders[0].is_glob());
  EXPECT_TRUE(folders[0].Matches("Support/Tier1"));
  EXPECT_FALSE(folders[0].Matches("INBOX"));
  EXPECT_TRUE(folders[1].Matches("INBOX"));
  EXPECT_TRUE(folders[1].Matches("Inbox"));
}

TEST(LoaderTargetTest, HookCommandMustBeAnArgvList) {
  auto r = Load(std::string(kAccount) + "hooks:\n  - name: h\n    command: \"/bin/save.sh /data\"\n");
  EXPECT_TRUE(HasError(r, 8, 14, "must be a list (argv; no shell runs it)")) << Dump(r);
  auto empty = Load(std::string(kAccount) + "hooks:\n  - name: h\n    command: []\n");
  EXPECT_TRUE(HasError(empty, 8, 14, "is empty")) << Dump(empty);
}

// A hook that cannot run is refused by check and at start-up, with the
// cause, instead of failing every event later (issue #10: "check says OK").
TEST(LoaderTargetTest, HookCommandMustExistAndBeExecutable) {
  TempDir dir;
  std::string script = dir.Write("hook.sh", "#!/bin/sh\nexit 0\n");
  std::filesystem::permissions(script, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  auto hook = [](const std::string& program) {
    return Load(std::string(kAccount) + "hooks:\n  - name: h\n    command: [\"" + program + "\", x]\n");
  };
  auto missing = hook(dir.path().string() + "/missing.sh");
  EXPECT_TRUE(HasError(missing, 8, 15, "missing.sh\": No such file or directory; it must be an existing file"))
      << Dump(missing);
  auto not_executable = hook(script);
  EXPECT_TRUE(HasError(not_executable, 8, 15, "not executable for this user")) << Dump(not_executable);
  auto directory = hook(dir.path().string());
  EXPECT_TRUE(HasError(directory, 8, 15, "it is a directory")) << Dump(directory);
  auto unknown = hook("mailhook-no-such-program");
  EXPECT_TRUE(HasError(unknown, 8, 15, "no executable file of that name in PATH")) << Dump(unknown);

  std::filesystem::permissions(script, std::filesystem::perms::owner_exec, std::filesystem::perm_options::add);
  auto runnable = hook(script);
  EXPECT_TRUE(runnable.config) << Dump(runnable);
  auto in_path = hook("cat");  // a bare name is looked up in PATH, as when the hook runs
  EXPECT_TRUE(in_path.config) << Dump(in_path);
}

TEST(LoaderTargetTest, ConcurrencyDefaultsToFourAndIsBounded) {
  auto r = Load(Valid() + "hooks:\n  - name: h\n    command: [/bin/true]\n    concurrency: 2\n");
  ASSERT_TRUE(r.config) << Dump(r);
  EXPECT_EQ(r.config->webhooks[0].concurrency, 4);
  EXPECT_EQ(r.config->hooks[0].concurrency, 2);
  for (const char* bad : {"0", "65", "four", "-1"}) {
    auto b = Load(Valid() + "    concurrency: " + bad + "\n");
    EXPECT_TRUE(HasError(b, 9, 18,
                         "\"concurrency\" in webhook \"tickets\" must be a number from 1 "
                         "to 64"))
        << bad << "\n"
        << Dump(b);
  }
}

TEST(LoaderTargetTest, PlainHttpOffLoopbackNeedsAllowInsecure) {
  for (const char* ok : {"http://127.0.0.1:8080/h", "http://127.3.2.1/h", "http://localhost/h", "http://[::1]:80/h",
                         "https://tickets.internal/h"}) {
    std::string yaml = Valid();
    yaml.replace(yaml.find("https://tickets.internal/hooks/email"), 36, ok);
    auto r = Load(yaml);
    EXPECT_TRUE(r.config) << ok << "\n" << Dump(r);
  }
  std::string yaml = Valid();
  yaml.replace(yaml.find("https://tickets.internal/hooks/email"), 36, "http://tickets.internal/h");
  auto r = Load(yaml);
  EXPECT_TRUE(HasError(r, 8, 10, "plain http:// to \"tickets.internal\"")) << Dump(r);
  EXPECT_TRUE(HasError(r, 8, 10, "add allow_insecure: true")) << Dump(r);
  auto allowed = Load(yaml + "    allow_insecure: true\n");
  ASSERT_TRUE(allowed.config) << Dump(allowed);
  EXPECT_TRUE(allowed.config->webhooks[0].allow_insecure);
  auto unverified = Load(Valid() + "    tls_verify: false\n");
  EXPECT_TRUE(HasError(unverified, 9, 17, "tls_verify: false in webhook \"tickets\"")) << Dump(unverified);
  EXPECT_TRUE(Load(Valid() + "    tls_verify: false\n    allow_insecure: true\n").config);
}

TEST(LoaderTargetTest, TimeoutMustFitTheDeliveryLease) {
  auto r = Load(Valid() + "    timeout: 11m\n");
  EXPECT_TRUE(HasError(r, 9, 14, "\"timeout\" in webhook \"tickets\" is longer than 10m")) << Dump(r);
  auto hook = Load(Valid() + "hooks:\n  - name: h\n    command: [/bin/true]\n    timeout: 1h\n");
  EXPECT_TRUE(HasError(hook, 12, 14, "use at most 10m")) << Dump(hook);
  auto ok = Load(Valid() + "    timeout: 10m\n");
  ASSERT_TRUE(ok.config) << Dump(ok);
  EXPECT_EQ(ok.config->webhooks[0].timeout, Duration(10min));
}

}  // namespace
}  // namespace mailhook::config
