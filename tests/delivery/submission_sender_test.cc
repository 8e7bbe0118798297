// SubmissionSender with the OAuth2 refresh flow (an OAuth2TokenCache with a
// scripted token endpoint) against the scripted SMTP server on 127.0.0.1:
// the AUTH XOAUTH2 line carries the refreshed token, a token the server
// refuses is refreshed once at the next send, and a token endpoint failure
// is the send's outcome without any SMTP connection. The dispatcher builds
// such a target (it refused them before) and keeps its cache across a reload.
#include <httplib.h>

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "delivery/dispatcher.h"
#include "delivery/oauth2_token_cache.h"
#include "delivery/smtp_target.h"
#include "fake_smtp_server.h"
#include "store/open_store.h"
#include "store/store.h"
#include "temp_dir.h"
#include "util/base64.h"
#include "util/cancel_token.h"
#include "util/metrics_catalog.h"

namespace mailhook::delivery {
namespace {

using testsupport::FakeSmtpScript;
using testsupport::FakeSmtpServer;
using testsupport::TestCertificates;

constexpr const char* kUser = "support@example.com";
const std::string kMessage = "Subject: hi\r\n\r\nbody\r\n";

/// A deadline no test reaches.
std::chrono::steady_clock::time_point Later() { return std::chrono::steady_clock::now() + std::chrono::seconds(30); }

/// A token endpoint handing out "at1", "at2"..., or failing with `fail`.
struct TokenEndpoint {
  std::mutex mu;
  int calls = 0;
  int stop_fd = -2;  // the last request's
  std::optional<util::Error> fail;

  OAuth2TokenCache::Requester requester() {
    return [this](const TokenRequest& r) -> util::Result<TokenGrant> {
      std::lock_guard lock(mu);
      ++calls;
      stop_fd = r.stop_fd;
      if (fail) return *fail;
      TokenGrant g;
      g.access_token = util::Secret("at" + std::to_string(calls));
      g.expires_in = std::chrono::seconds(3600);
      return g;
    };
  }
  int Calls() {
    std::lock_guard lock(mu);
    return calls;
  }
};

std::string XoauthLine(const std::string& token) {
  return "AUTH XOAUTH2 " + util::Base64Encode(std::string("user=") + kUser + "\1auth=Bearer " + token + "\1\1");
}

class SubmissionSenderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(TestCertificates::Get().ok()) << "openssl could not make the test CA";
    oauth2_.token_url = config::HttpUrl::Parse("https://oauth2.example/token").value();
    oauth2_.client_id = "c";
    oauth2_.refresh_token = config::SecretRef(util::Secret("rt"));
    tokens_ = std::make_shared<OAuth2TokenCache>("smtp:ack", oauth2_, false, endpoint_.requester());
  }

  config::SmtpTarget Target(int port) const {
    config::SmtpTarget t;
    t.name = "ack";
    t.host = "127.0.0.1";
    t.port = static_cast<uint16_t>(port);
    t.tls = config::TlsMode::kStartTls;
    t.ca_file = TestCertificates::Get().ca_file();
    t.auth = config::SmtpAuth::kXoauth2;
    t.username = kUser;
    t.timeout = std::chrono::seconds(3);
    return t;
  }

  SendReport Send(FakeSmtpServer& server) {
    SendReport report =
        SubmissionSender(Target(server.port()), tokens_)(kUser, {"ann@example.org"}, kMessage, Later(), cancel_);
    server.Join();
    return report;
  }

  TokenEndpoint endpoint_;
  config::OAuth2Refresh oauth2_;
  std::shared_ptr<OAuth2TokenCache> tokens_;
  util::CancelToken cancel_;
};

TEST_F(SubmissionSenderTest, Xoauth2CarriesTheRefreshedTokenAndReusesIt) {
  FakeSmtpServer first({});
  SendReport sent = Send(first);
  EXPECT_EQ(sent.kind, SendReport::Kind::kSent) << sent.error;
  ASSERT_GE(first.commands().size(), 4u);
  EXPECT_EQ(first.commands()[3], XoauthLine("at1"));
  EXPECT_EQ(endpoint_.stop_fd, cancel_.fd());  // the dispatcher's stop ends a token request

  FakeSmtpServer second({});
  EXPECT_EQ(Send(second).kind, SendReport::Kind::kSent);
  ASSERT_GE(second.commands().size(), 4u);
  EXPECT_EQ(second.commands()[3], XoauthLine("at1"));  // still valid: no new request
  EXPECT_EQ(endpoint_.Calls(), 1);
}

TEST_F(SubmissionSenderTest, ARefusedTokenIsRefreshedOnceAtTheNextSend) {
  FakeSmtpScript refusing;
  refusing.replies = {{"AUTH XOAUTH2", "334 eyJzdGF0dXMiOiI0MDAifQ==\r\n"},
                      {"", "535 5.7.8 Username and Password not accepted\r\n"}};
  FakeSmtpServer first(refusing);
  SendReport refused = Send(first);
  EXPECT_EQ(refused.kind, SendReport::Kind::kNeedsOperator);
  EXPECT_NE(refused.error.find("535"), std::string::npos) << refused.error;
  EXPECT_EQ(endpoint_.Calls(), 1);

  FakeSmtpServer second({});
  SendReport sent = Send(second);
  EXPECT_EQ(sent.kind, SendReport::Kind::kSent) << sent.error;
  ASSERT_GE(second.commands().size(), 4u);
  EXPECT_EQ(second.commands()[3], XoauthLine("at2"));
  EXPECT_EQ(endpoint_.Calls(), 2);

  FakeSmtpServer third({});
  EXPECT_EQ(Send(third).kind, SendReport::Kind::kSent);
  EXPECT_EQ(endpoint_.Calls(), 2);  // exactly one refresh for the refused token
}

// The per-recipient outcomes reach the target, which retries only the
// deferred recipient (smtp_target.h).
TEST_F(SubmissionSenderTest, EachRecipientsOutcomeIsReported) {
  FakeSmtpScript script;
  script.replies = {{"RCPT TO:<bob@", "451 4.2.1 mailbox busy\r\n"}, {"RCPT TO:<eve@", "550 5.1.1 no such user\r\n"}};
  FakeSmtpServer server(script);
  SendReport report = SubmissionSender(Target(server.port()), tokens_)(
      kUser, {"ann@example.org", "bob@example.org", "eve@example.org"}, kMessage, Later(), cancel_);
  server.Join();
  EXPECT_EQ(report.kind, SendReport::Kind::kSent) << report.error;
  ASSERT_EQ(report.recipients.size(), 3u);
  EXPECT_EQ(report.recipients[0].address, "ann@example.org");
  EXPECT_EQ(report.recipients[0].kind, SendReport::Kind::kSent);
  EXPECT_EQ(report.recipients[1].kind, SendReport::Kind::kRetry);
  EXPECT_EQ(report.recipients[1].reply, "451 4.2.1 mailbox busy");
  EXPECT_EQ(report.recipients[2].kind, SendReport::Kind::kPermanent);
  EXPECT_EQ(report.recipients[2].reply, "550 5.1.1 no such user");
}

// A send after an earlier one of the same attempt used its time (a forward's
// fallbacks) neither connects nor asks for a token: the attempt is over.
TEST_F(SubmissionSenderTest, ASendPastTheAttemptsDeadlineIsARetryWithoutConnecting) {
  FakeSmtpServer server({});
  SendReport report = SubmissionSender(Target(server.port()), tokens_)(kUser, {"ann@example.org"}, kMessage,
                                                                       std::chrono::steady_clock::now(), cancel_);
  EXPECT_EQ(report.kind, SendReport::Kind::kRetry);
  EXPECT_NE(report.error.find("ran out before this send"), std::string::npos) << report.error;
  EXPECT_TRUE(server.commands().empty());
  EXPECT_EQ(endpoint_.calls, 0);
}

TEST_F(SubmissionSenderTest, ATokenEndpointFailureIsTheOutcomeAndNothingConnects) {
  endpoint_.fail = util::Error("oauth2.http", util::RetryClass::kBackoff, "the token endpoint answered 503");
  FakeSmtpServer server({});
  SendReport report =
      SubmissionSender(Target(server.port()), tokens_)(kUser, {"ann@example.org"}, kMessage, Later(), cancel_);
  EXPECT_EQ(report.kind, SendReport::Kind::kRetry);
  EXPECT_NE(report.error.find("the token endpoint answered 503"), std::string::npos) << report.error;
  EXPECT_NE(report.error.find("smtp:ack"), std::string::npos) << report.error;
  // SendMail is synchronous: a connection would have sent EHLO before it returned.
  EXPECT_TRUE(server.commands().empty());

  endpoint_.fail = util::Error("oauth2.invalid_grant", util::RetryClass::kNeedsOperator, "refresh token revoked");
  // A new cache: the first one holds its failure for a while (FailureHold).
  tokens_ = std::make_shared<OAuth2TokenCache>("smtp:ack", oauth2_, false, endpoint_.requester());
  SendReport op =
      SubmissionSender(Target(server.port()), tokens_)(kUser, {"ann@example.org"}, kMessage, Later(), cancel_);
  EXPECT_EQ(op.kind, SendReport::Kind::kNeedsOperator);
  EXPECT_NE(op.error.find("refresh token revoked"), std::string::npos) << op.error;
  EXPECT_TRUE(server.commands().empty());
}

/// A token endpoint over HTTP on 127.0.0.1 handing out "at-http".
class HttpTokenEndpoint {
 public:
  HttpTokenEndpoint() {
    server_.Post("/token", [this](const httplib::Request&, httplib::Response& res) {
      ++requests_;
      res.set_content(R"({"access_token":"at-http","token_type":"Bearer","expires_in":3600})", "application/json");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });  // bound: requests wait in the backlog
  }
  ~HttpTokenEndpoint() {
    server_.stop();
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/token"; }
  int requests() const { return requests_; }

 private:
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  std::atomic<int> requests_{0};
};

/// Waits for the dispatcher's reports.
class Outcomes {
 public:
  std::function<void(const Report&)> Callback() {
    return [this](const Report& r) {
      std::lock_guard lock(mu_);
      reports_.push_back(r);
      cv_.notify_all();
    };
  }
  std::optional<Report> Wait(size_t n) {
    std::unique_lock lock(mu_);
    if (!cv_.wait_for(lock, std::chrono::seconds(10), [&] { return reports_.size() >= n; })) return std::nullopt;
    return reports_[n - 1];
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Report> reports_;
};

void CommitRow(const std::string& state_dir, uint32_t uid) {
  auto store = store::OpenStore({.state_dir = state_dir});
  ASSERT_TRUE(store.ok()) << store.error().ToString();
  store::OutboxItem item;
  item.event_id = "evt_" + std::to_string(uid);
  item.target = "smtp:ack";
  item.account = "support";
  item.folder = "INBOX";
  item.uidvalidity = 1;
  item.uid = uid;
  item.payload = R"({"id":"evt_)" + std::to_string(uid) +
                 R"(","type":"message.received","message":{"subject":"s"},"auto_reply_headers":{}})";
  ASSERT_TRUE((*store)->CommitMessages("support", "INBOX", {1, uid}, {item}).ok());
}

// A message refused for its size is marked, so a forward can go again
// without its original; a full mailbox (5.2.2) is not about this message's size.
TEST_F(SubmissionSenderTest, ASizeRefusalIsMarkedTooLarge) {
  auto send = [&](FakeSmtpScript script, const std::string& message) {
    FakeSmtpServer server(std::move(script));
    SendReport report =
        SubmissionSender(Target(server.port()), tokens_)(kUser, {"ann@example.org"}, message, Later(), cancel_);
    server.Join();
    return report;
  };
  FakeSmtpScript at_data;
  at_data.replies = {{".", "552 5.3.4 Message size exceeds fixed limit\r\n"}};
  SendReport big = send(at_data, kMessage);
  EXPECT_EQ(big.kind, SendReport::Kind::kPermanent) << big.error;
  EXPECT_TRUE(big.too_large);
  FakeSmtpScript full;
  full.replies = {{".", "552 5.2.2 Mailbox full\r\n"}};
  SendReport mailbox = send(full, kMessage);
  EXPECT_EQ(mailbox.kind, SendReport::Kind::kPermanent) << mailbox.error;
  EXPECT_FALSE(mailbox.too_large);
  // Over the SIZE the server announces (1000000): refused before MAIL FROM.
  SendReport over = send(FakeSmtpScript{}, "Subject: x\r\n\r\n" + std::string(1000000, 'x') + "\r\n");
  EXPECT_EQ(over.kind, SendReport::Kind::kPermanent) << over.error;
  EXPECT_TRUE(over.too_large);
}

TEST_F(SubmissionSenderTest, TheDispatcherSendsThroughTheRefreshFlowAndKeepsItsTokenAcrossAReload) {
  testsupport::TempDir dir;
  HttpTokenEndpoint endpoint;
  FakeSmtpServer first({});
  config::Config cfg;
  cfg.state_dir = dir.path();
  config::SmtpTarget t = Target(first.port());
  t.oauth2 = oauth2_;
  t.oauth2->token_url = config::HttpUrl::Parse(endpoint.url()).value();  // http:// to loopback: allowed
  t.from = {"Support", "support@example.com"};
  t.mode = config::SmtpMode::kForward;
  t.to = {"desk@example.com"};
  t.subject = "Fwd: {{message.subject}}";
  t.text = "forwarded";
  t.retry_schedule = {std::chrono::hours(1)};
  cfg.smtp.push_back(t);
  CommitRow(dir.path(), 1);

  util::MetricsCatalog metrics;
  Outcomes outcomes;
  Dispatcher dispatcher(cfg, "1", metrics);
  dispatcher.SetOnOutcome(outcomes.Callback());
  util::Status started = dispatcher.Start();
  ASSERT_TRUE(started.ok()) << started.error().message();  // was delivery.smtp_oauth2_refresh
  auto sent = outcomes.Wait(1);
  ASSERT_TRUE(sent);
  EXPECT_EQ(sent->result, OutcomeKind::kSuccess) << sent->outcome.error;
  first.Join();
  ASSERT_GE(first.commands().size(), 4u);
  EXPECT_EQ(first.commands()[3], XoauthLine("at-http"));
  EXPECT_EQ(endpoint.requests(), 1);

  // A reload that changes the server but not the oauth2 block keeps the token.
  FakeSmtpServer second({});
  cfg.smtp[0].port = static_cast<uint16_t>(second.port());
  ASSERT_TRUE(dispatcher.UpdateTargets(cfg, {"smtp:ack"}, {}).ok());
  CommitRow(dir.path(), 2);
  dispatcher.Wake();
  auto again = outcomes.Wait(2);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->result, OutcomeKind::kSuccess) << again->outcome.error;
  second.Join();
  ASSERT_GE(second.commands().size(), 4u);
  EXPECT_EQ(second.commands()[3], XoauthLine("at-http"));
  EXPECT_EQ(endpoint.requests(), 1);
  dispatcher.Stop();
}

}  // namespace
}  // namespace mailhook::delivery
