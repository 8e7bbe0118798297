// The built-in OAuth2 refresh flow end to end: a real Dovecot whose oauth2
// passdb asks an introspection endpoint this test runs on loopback, next to
// the token endpoint mailhook refreshes at. Covered: OAUTHBEARER and XOAUTH2
// logins with a token mailhook obtained itself, a token that stops being
// accepted mid-session (a new one is obtained and the message that arrived
// meanwhile delivered), a rotated refresh token written back to its file, and
// a revoked refresh token (one operator error, /readyz false).

#include <httplib.h>

#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "pipeline_fixture.h"
#include "util/base64.h"

namespace mailhook::testsupport {
namespace {

/// Token and introspection endpoints on 127.0.0.1. Access tokens are
/// "at-<n>"; refresh tokens rotate on each grant ("rt-<n>") and only the
/// newest is accepted, as strict providers do.
class Provider {
 public:
  Provider() {
    server_.Post("/token", [this](const httplib::Request& req, httplib::Response& res) { Token(req, res); });
    server_.Post("/introspect", [this](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard lock(mu_);
      const bool active = active_.count(req.get_param_value("token")) > 0;
      if (!active) ++inactive_;
      res.set_content(active ? R"({"active":true,"username":"alice"})" : R"({"active":false})", "application/json");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    // Bound before listening: connections wait in the backlog until it runs.
  }
  ~Provider() {
    server_.stop();
    thread_.join();
  }
  std::string url(const std::string& path) const { return "http://127.0.0.1:" + std::to_string(port_) + path; }
  /// Every access token handed out so far stops being accepted.
  void ExpireAccessTokens() {
    std::lock_guard lock(mu_);
    active_.clear();
  }
  /// The refresh token stops working (user revoked consent).
  void RevokeRefreshToken() {
    std::lock_guard lock(mu_);
    refresh_ = "revoked";
  }
  int grants() const {
    std::lock_guard lock(mu_);
    return grants_;
  }
  int refused() const {
    std::lock_guard lock(mu_);
    return refused_;
  }
  /// Logins Dovecot refused because the token was no longer active.
  int inactive() const {
    std::lock_guard lock(mu_);
    return inactive_;
  }
  std::string refresh_token() const {
    std::lock_guard lock(mu_);
    return refresh_;
  }

 private:
  void Token(const httplib::Request& req, httplib::Response& res) {
    std::lock_guard lock(mu_);
    if (req.get_param_value("grant_type") != "refresh_token" || req.get_param_value("client_id") != "mh-test" ||
        req.get_param_value("client_secret") != "cs-secret-1") {
      res.status = 401;
      res.set_content(R"({"error":"invalid_client"})", "application/json");
      return;
    }
    if (req.get_param_value("refresh_token") != refresh_) {
      ++refused_;
      res.status = 400;
      res.set_content(R"({"error":"invalid_grant","error_description":"Token has been expired or revoked."})",
                      "application/json");
      return;
    }
    ++grants_;
    const std::string access = "at-" + std::to_string(grants_) + "-secretaccess";
    refresh_ = "rt-" + std::to_string(grants_ + 1) + "-secretrefresh";
    active_.insert(access);
    res.set_content(R"({"access_token":")" + access + R"(","token_type":"Bearer","expires_in":3600,)" +
                        R"("refresh_token":")" + refresh_ + R"("})",
                    "application/json");
  }

  mutable std::mutex mu_;
  std::string refresh_ = "rt-1-secretrefresh";
  std::set<std::string> active_;
  int grants_ = 0;
  int refused_ = 0;
  int inactive_ = 0;
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
};

class OAuth2Test : public ::testing::Test {
 protected:
  void SetUp() override {
    DovecotOptions options;
    options.oauth2_introspection_url = provider_.url("/introspect");
    MH_ASSERT_OK(dovecot_.Start(options));
    MH_ASSERT_OK(receiver_.Start());
    refresh_file_ = secrets_.Sub("refresh_token");
    std::ofstream(refresh_file_) << provider_.refresh_token() << "\n";
  }

  void StartDaemon(const std::string& auth) {
    WriteConfig(auth);
    MH_ASSERT_OK(daemon_.Start());
  }

  void WriteConfig(const std::string& auth) {
    ConfigSpec cfg;
    cfg.state_dir = daemon_.state_dir();
    cfg.http_listen = "127.0.0.1:0";
    // The protocol trace shows the AUTHENTICATE lines and the token request:
    // ExpectNoSecretInLog checks them too.
    cfg.log_level = "trace";
    cfg.accounts.push_back(
        "{name: test, host: 127.0.0.1, port: " + std::to_string(dovecot_.imaps_port()) +
        ", tls: implicit, ca_file: " + Quote(dovecot_.ca_file()) + ", username: alice, auth: " + auth +
        ", oauth2: {token_url: " + Quote(provider_.url("/token")) +
        ", client_id: mh-test, client_secret: cs-secret-1, refresh_token_file: " + Quote(refresh_file_) +
        ", scope: imap}, folders: [INBOX], start_from: all}");
    cfg.webhooks.push_back(WebhookYaml({"hook", receiver_.url(), kTestWebhookSecret, ""}));
    MH_ASSERT_OK(daemon_.WriteConfig(RenderConfig(cfg)));
  }

  std::string RefreshFile() const {
    std::ifstream in(refresh_file_);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

  /// Polls /readyz until it answers `want` (a polled interface by nature).
  bool ReadyIs(int want) {
    httplib::Client http("127.0.0.1", daemon_.HttpPort());
    for (int i = 0; i < 300; ++i) {
      auto r = http.Get("/readyz");
      if (r && r->status == want) return true;
      std::this_thread::sleep_for(milliseconds(100));
    }
    return false;
  }

  void ExpectNoSecretInLog() {
    const std::string log = daemon_.Log();
    // The trace was on: the login and the token request were traced.
    EXPECT_NE(log.find("imap.sent"), std::string::npos) << log;
    EXPECT_NE(log.find("AUTHENTICATE"), std::string::npos) << log;
    EXPECT_NE(log.find("http.request target=oauth2:test"), std::string::npos) << log;
    std::vector<std::string> secrets = {"secretaccess", "secretrefresh", "cs-secret-1"};
    // Each access token as XOAUTH2 and OAUTHBEARER send it (base64), and the
    // 16-character start libetpan's line splitting could leave.
    for (int n = 1; n <= provider_.grants(); ++n) {
      const std::string token = "at-" + std::to_string(n) + "-secretaccess";
      for (const std::string& payload :
           {"user=alice\1auth=Bearer " + token + "\1\1", "n,a=alice,\1auth=Bearer " + token + "\1\1"}) {
        const std::string b64 = util::Base64Encode(payload);
        secrets.push_back(b64);
        secrets.push_back(b64.substr(b64.size() - 24));  // the token's part, whatever the line start
      }
    }
    for (const std::string& secret : secrets) {
      EXPECT_EQ(log.find(secret), std::string::npos) << secret << " in the log:\n" << log;
    }
  }

  Provider provider_;
  DovecotServer dovecot_;
  WebhookReceiver receiver_;
  MailhookProcess daemon_;
  TempDir secrets_{"mh-oauth2-"};
  std::string refresh_file_;
};

TEST_F(OAuth2Test, OauthbearerTokenExpiresMidSessionAndANewOneIsObtained) {
  StartDaemon("oauthbearer");
  ASSERT_TRUE(daemon_.WaitForLog("imap.connected", seconds(30))) << daemon_.Log();
  ImapClient imap(dovecot_);
  MH_ASSERT_OK(imap.Append("alice", "INBOX", SampleMessage("plain_utf8.eml")));
  ASSERT_TRUE(receiver_.WaitFor(1, seconds(20))) << daemon_.Log();
  // One refresh served every connection of the account; the rotated refresh
  // token is in the file now.
  EXPECT_EQ(provider_.grants(), 1);
  EXPECT_EQ(RefreshFile(), provider_.refresh_token() + "\n");
  EXPECT_TRUE(daemon_.WaitForLog("oauth2.refresh_token_rotated", seconds(5))) << daemon_.Log();
  EXPECT_NE(daemon_.Log().find("stored=file"), std::string::npos) << daemon_.Log();

  // The access token stops being accepted (expired or revoked early), and
  // the sessions are dropped while a message arrives.
  size_t mark = daemon_.LogMark();
  provider_.ExpireAccessTokens();
  MH_ASSERT_OK(dovecot_.KillSessionProcesses());
  // Right after the kill our own APPEND can lose its connection while
  // Dovecot cleans up (ci of stops 20 and 23): AppendRetrying tries again and
  // never stores the message twice, so the exactly-once check below holds.
  MH_ASSERT_OK(imap.AppendRetrying("alice", "INBOX", SampleMessage("latin1_qp.eml")));
  ASSERT_TRUE(daemon_.WaitForLog("imap.connected", seconds(60), mark)) << daemon_.Log();
  ASSERT_TRUE(receiver_.WaitFor(2, seconds(60))) << daemon_.Log();
  // The window was hit: a login with the old token was refused, and then
  // one refresh used the rotated token from the file (the old one would be
  // refused).
  EXPECT_GE(provider_.inactive(), 1);
  EXPECT_EQ(provider_.refused(), 0);
  EXPECT_GE(provider_.grants(), 2);
  EXPECT_EQ(RefreshFile(), provider_.refresh_token() + "\n");
  std::multiset<uint32_t> uids;
  for (const auto& r : receiver_.Requests()) uids.insert(r.Json()["uid"].get<uint32_t>());
  EXPECT_EQ(uids, (std::multiset<uint32_t>{1, 2}));
  // Dovecot saw OAUTHBEARER logins (our hand-sent AUTHENTICATE).
  EXPECT_NE(dovecot_.ReadLog().find("method=OAUTHBEARER"), std::string::npos) << dovecot_.ReadLog();
  ExpectNoSecretInLog();
}

TEST_F(OAuth2Test, RevokedRefreshTokenIsOneOperatorErrorAndNotReady) {
  StartDaemon("xoauth2");
  ASSERT_TRUE(daemon_.WaitForLog("imap.connected", seconds(30))) << daemon_.Log();
  ASSERT_TRUE(ReadyIs(200)) << daemon_.Log();
  EXPECT_NE(dovecot_.ReadLog().find("method=XOAUTH2"), std::string::npos) << dovecot_.ReadLog();
  size_t mark = daemon_.LogMark();
  provider_.RevokeRefreshToken();
  provider_.ExpireAccessTokens();
  MH_ASSERT_OK(dovecot_.KillSessionProcesses());
  // The login with the cached token fails, the one refresh after it is
  // refused: an operator error that names the cause and the fix.
  ASSERT_TRUE(daemon_.WaitForLog("oauth2.needs_operator", seconds(60), mark)) << daemon_.Log();
  ASSERT_TRUE(daemon_.WaitForLog("expired or was revoked", seconds(5), mark)) << daemon_.Log();
  ASSERT_TRUE(daemon_.WaitForLog("Sign in again to get a new refresh token", seconds(5), mark)) << daemon_.Log();
  EXPECT_TRUE(ReadyIs(503)) << daemon_.Log();
  EXPECT_GE(provider_.refused(), 1);
  // Slow retry: no hot loop against the token endpoint. The refusal is kept
  // for 60 s and handed to every connection of the account: one request,
  // one error line (the connections' own lines are at debug).
  EXPECT_EQ(provider_.refused(), 1);
  const std::string since = daemon_.Log().substr(mark);
  size_t errors = 0;
  for (size_t at = since.find(" E imap oauth2.needs_operator"); at != std::string::npos;
       at = since.find(" E imap oauth2.needs_operator", at + 1)) {
    ++errors;
  }
  EXPECT_EQ(errors, 1u) << since;
  ExpectNoSecretInLog();
}

// `check --connect` logs in the way `run` does: with an access token it
// obtained at token_url.
TEST_F(OAuth2Test, CheckConnectObtainsATokenAndLogsIn) {
  WriteConfig("oauthbearer");
  MH_ASSERT_OK_AND_ASSIGN(CommandResult r, RunMailhook({"check", "--connect", "-c", daemon_.config_path()}));
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("ok   test/INBOX"), std::string::npos) << r.out << r.err;
  EXPECT_EQ(provider_.grants(), 1);
  provider_.RevokeRefreshToken();
  MH_ASSERT_OK_AND_ASSIGN(CommandResult revoked, RunMailhook({"check", "--connect", "-c", daemon_.config_path()}));
  EXPECT_NE(revoked.exit_code, 0);
  EXPECT_NE(revoked.out.find("expired or was revoked"), std::string::npos) << revoked.out << revoked.err;
  for (const std::string& text : {r.out, r.err, revoked.out, revoked.err}) {
    EXPECT_EQ(text.find("secretrefresh"), std::string::npos) << text;
    EXPECT_EQ(text.find("secretaccess"), std::string::npos) << text;
  }
}

}  // namespace
}  // namespace mailhook::testsupport
