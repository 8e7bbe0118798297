// The OAuth2 token client against a token endpoint on loopback (cpp-httplib's
// server): what it sends, what it makes of each kind of answer, and that no
// secret reaches an error text.
#include "delivery/oauth2_token_client.h"

#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "log_capture.h"

namespace mailhook::delivery {
namespace {

/// A token endpoint on 127.0.0.1 answering with `handler`.
class TokenServer {
 public:
  explicit TokenServer(httplib::Server::Handler handler) {
    server_.Post("/oauth/token", std::move(handler));
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    // Bound before listening: connections wait in the backlog until it runs.
  }
  ~TokenServer() {
    server_.stop();
    thread_.join();
  }
  TokenRequest Request() const {
    TokenRequest r;
    r.token_url = config::HttpUrl::Parse("http://127.0.0.1:" + std::to_string(port_) + "/oauth/token?x=1").value();
    r.client_id = "client-1";
    r.client_secret = util::Secret("cs&secret=1");
    r.refresh_token = util::Secret("1//refresh+token");
    r.scope = "https://mail.google.com/";
    r.timeout = std::chrono::seconds(5);
    r.account = "gmail";
    return r;
  }

 private:
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
};

TEST(OAuth2TokenClientTest, SendsTheRefreshGrantAndReadsTheAnswer) {
  httplib::Params seen;
  std::string content_type;
  TokenServer server([&](const httplib::Request& req, httplib::Response& res) {
    seen = req.params;
    content_type = req.get_header_value("Content-Type");
    res.set_content(R"({"access_token":"ya29.A","expires_in":3599,"refresh_token":"1//rotated","token_type":"Bearer"})",
                    "application/json");
  });
  auto grant = RequestAccessToken(server.Request());
  ASSERT_TRUE(grant.ok()) << grant.error().ToString();
  EXPECT_EQ(grant->access_token.reveal(), "ya29.A");
  ASSERT_TRUE(grant->expires_in);
  EXPECT_EQ(grant->expires_in->count(), 3599);
  ASSERT_TRUE(grant->refresh_token);
  EXPECT_EQ(grant->refresh_token->reveal(), "1//rotated");
  EXPECT_EQ(content_type, "application/x-www-form-urlencoded");
  auto one = [&](const std::string& k) {
    auto it = seen.find(k);
    return it == seen.end() ? std::string("<absent>") : it->second;
  };
  // The values come back intact through the form encoding (+, &, = and /).
  EXPECT_EQ(one("grant_type"), "refresh_token");
  EXPECT_EQ(one("refresh_token"), "1//refresh+token");
  EXPECT_EQ(one("client_id"), "client-1");
  EXPECT_EQ(one("client_secret"), "cs&secret=1");
  EXPECT_EQ(one("scope"), "https://mail.google.com/");
  EXPECT_EQ(one("x"), "1");  // the query of token_url is kept
}

// At trace: one line per request with the URL without its query and the
// status; never the body (refresh token, client secret) or the answer.
TEST(OAuth2TokenClientTest, TraceLogsTheRequestLineOnly) {
  TokenServer server([](const httplib::Request&, httplib::Response& res) {
    res.set_content(R"({"access_token":"ya29.secret-access","expires_in":60})", "application/json");
  });
  testsupport::LogCapture logs({"delivery"});
  TokenRequest request = server.Request();
  ASSERT_TRUE(RequestAccessToken(request).ok());
  const std::string text = logs.Text();
  EXPECT_NE(text.find("http.request target=oauth2:gmail method=POST url=" + request.token_url.origin() +
                      "/oauth/token?<redacted> status=200 ms="),
            std::string::npos)
      << text;
  for (const char* secret : {"1//refresh", "cs&secret", "ya29.secret-access", "x=1"}) {
    EXPECT_EQ(text.find(secret), std::string::npos) << secret << " in " << text;
  }
}

TEST(OAuth2TokenClientTest, InvalidGrantIsAnOperatorErrorWithoutTheSecrets) {
  TokenServer server([](const httplib::Request& req, httplib::Response& res) {
    res.status = 400;
    // A server echoing what it got must not get it into our logs.
    res.set_content(R"({"error":"invalid_grant","error_description":"Token has been expired or revoked: )" +
                        req.get_param_value("refresh_token") + " " + req.get_param_value("client_secret") + "\"}",
                    "application/json");
  });
  auto grant = RequestAccessToken(server.Request());
  ASSERT_FALSE(grant.ok());
  EXPECT_EQ(grant.error().code(), "oauth2.invalid_grant");
  EXPECT_TRUE(grant.error().NeedsOperator());
  const std::string& m = grant.error().message();
  EXPECT_NE(m.find("expired or was revoked"), std::string::npos) << m;
  EXPECT_NE(m.find("Sign in again"), std::string::npos) << m;
  EXPECT_NE(m.find("Token has been expired or revoked"), std::string::npos) << m;
  EXPECT_EQ(m.find("1//refresh+token"), std::string::npos) << m;
  EXPECT_EQ(m.find("cs&secret=1"), std::string::npos) << m;
}

TEST(OAuth2TokenClientTest, ClassifiesOtherAnswers) {
  std::atomic<int> status{500};
  std::atomic<bool> huge{false};
  TokenServer server([&](const httplib::Request&, httplib::Response& res) {
    res.status = status.load();
    if (huge) {
      res.set_content(std::string(kMaxTokenResponseBytes + 1000, 'x'), "application/json");
    } else if (res.status == 401) {
      res.set_content(R"({"error":"invalid_client"})", "application/json");
    } else {
      res.set_content(R"({"token_type":"Bearer"})", "application/json");
    }
  });
  auto server_error = RequestAccessToken(server.Request());
  ASSERT_FALSE(server_error.ok());
  EXPECT_EQ(server_error.error().code(), "oauth2.token_request");
  EXPECT_FALSE(server_error.error().NeedsOperator());
  status = 401;
  auto client = RequestAccessToken(server.Request());
  ASSERT_FALSE(client.ok());
  EXPECT_EQ(client.error().code(), "oauth2.invalid_client");
  EXPECT_TRUE(client.error().NeedsOperator());
  EXPECT_NE(client.error().message().find("client_id, client_secret"), std::string::npos);
  status = 200;
  auto no_token = RequestAccessToken(server.Request());
  ASSERT_FALSE(no_token.ok());
  EXPECT_NE(no_token.error().message().find("no access_token"), std::string::npos);
  huge = true;
  auto too_long = RequestAccessToken(server.Request());
  ASSERT_FALSE(too_long.ok());
  EXPECT_NE(too_long.error().message().find("more than 65536 bytes"), std::string::npos) << too_long.error().message();
}

/// A loopback port bound and closed again: connections to it are refused.
int ClosedLoopbackPort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

TEST(OAuth2TokenClientTest, RefusesPlainHttpBeyondLoopbackAndReportsNoAnswer) {
  TokenRequest r;
  r.token_url = config::HttpUrl::Parse("http://192.0.2.1/token").value();  // TEST-NET: never contacted
  r.client_id = "c";
  r.refresh_token = util::Secret("r");
  auto refused = RequestAccessToken(r);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code(), "oauth2.insecure");
  // Nothing listens on this port (bound, then closed): a network error, retried.
  int port = ClosedLoopbackPort();
  r.token_url = config::HttpUrl::Parse("http://127.0.0.1:" + std::to_string(port) + "/token").value();
  auto down = RequestAccessToken(r);
  ASSERT_FALSE(down.ok());
  EXPECT_EQ(down.error().code(), "oauth2.token_request");
  EXPECT_FALSE(down.error().NeedsOperator());
}

// A token endpoint that accepts the connection and never answers: the
// account's stop ends the request at once, not after its 20 s timeouts.
TEST(OAuth2TokenClientTest, StopEndsARequestInFlight) {
  int listener = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(listener, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(listen(listener, 4), 0);  // never accepted: the kernel completes the handshake
  socklen_t len = sizeof addr;
  ASSERT_EQ(getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  int stop = eventfd(0, EFD_CLOEXEC);
  ASSERT_GE(stop, 0);
  TokenRequest r;
  r.token_url = config::HttpUrl::Parse("http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port)) + "/t").value();
  r.client_id = "c";
  r.refresh_token = util::Secret("rt");
  r.account = "gmail";
  r.timeout = std::chrono::seconds(20);
  r.stop_fd = stop;
  std::atomic<bool> done{false};
  util::Result<TokenGrant> result = util::Error("unset", util::RetryClass::kBackoff, "");
  const auto started = std::chrono::steady_clock::now();
  std::thread caller([&] {
    result = RequestAccessToken(r);
    done = true;
  });
  // In flight: the connection is waiting in the listener's backlog.
  pollfd p{listener, POLLIN, 0};
  ASSERT_EQ(poll(&p, 1, 5000), 1);
  EXPECT_FALSE(done.load());
  const uint64_t one = 1;
  ASSERT_EQ(write(stop, &one, sizeof one), static_cast<ssize_t>(sizeof one));
  caller.join();
  const auto took = std::chrono::steady_clock::now() - started;
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code(), "oauth2.stopped");
  EXPECT_LT(took, std::chrono::seconds(5));
  // Already stopped: no request at all.
  auto again = RequestAccessToken(r);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code(), "oauth2.stopped");
  close(stop);
  close(listener);
}

// No answer: the trace says why (not status=0) and how long it took.
TEST(OAuth2TokenClientTest, TraceOfAFailedRequestSaysWhy) {
  int s = socket(AF_INET, SOCK_STREAM, 0);  // bound, not listening: refused
  ASSERT_GE(s, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  socklen_t len = sizeof addr;
  ASSERT_EQ(getsockname(s, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  TokenRequest r;
  r.token_url = config::HttpUrl::Parse("http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port)) + "/t").value();
  r.client_id = "c";
  r.refresh_token = util::Secret("rt");
  r.account = "gmail";
  testsupport::LogCapture logs({"delivery"});
  ASSERT_FALSE(RequestAccessToken(r).ok());
  close(s);
  const std::string text = logs.Text();
  EXPECT_NE(text.find("http.request target=oauth2:gmail method=POST"), std::string::npos) << text;
  EXPECT_NE(text.find("status=- ms="), std::string::npos) << text;
  EXPECT_NE(text.find("error=\""), std::string::npos) << text;
  EXPECT_EQ(text.find("status=0"), std::string::npos) << text;
}

// expires_in is cut to a day: a huge one must not overflow the renewal time.
TEST(OAuth2TokenClientTest, ExpiresInIsClamped) {
  std::string answer;
  TokenServer server(
      [&](const httplib::Request&, httplib::Response& res) { res.set_content(answer, "application/json"); });
  const std::vector<std::pair<std::string, std::optional<std::chrono::seconds>>> cases = {
      {"9223372036854775807", kMaxExpiresIn},         {"18446744073709551615", kMaxExpiresIn},
      {"\"99999999999999999999999\"", kMaxExpiresIn}, {"-5", std::nullopt},
      {"\"-99999999999999999999999\"", std::nullopt}, {"3599", std::chrono::seconds(3599)},
  };
  for (const auto& [value, want] : cases) {
    answer = R"({"access_token":"a","expires_in":)" + value + "}";
    auto grant = RequestAccessToken(server.Request());
    ASSERT_TRUE(grant.ok()) << value;
    EXPECT_EQ(grant->expires_in, want) << value;
  }
}

TEST(OAuth2TokenClientTest, FormEncodeKeepsUnreservedOnly) {
  EXPECT_EQ(FormEncode("aZ09-._~"), "aZ09-._~");
  EXPECT_EQ(FormEncode("a b+c&d=e/f"), "a%20b%2Bc%26d%3De%2Ff");
}

}  // namespace
}  // namespace mailhook::delivery
