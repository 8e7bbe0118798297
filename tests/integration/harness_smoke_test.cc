// Proves the integration harness itself: a real Dovecot starts with its own
// CA, TLS verifies against that CA (and fails for the wrong/untrusted certs),
// the test IMAP client appends and reads back, IDLE pushes EXISTS, killed
// sessions drop the connection, the receiver records and scripts responses,
// and the child-process wrapper waits on output and exit without sleeping.

#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include <gtest/gtest.h>

#include "testsupport.h"

namespace mailhook::testsupport {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

int ConnectLoopback(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

struct TlsResult {
  bool handshake_ok = false;
  long verify_result = -1;
  std::string greeting;
};

// A TLS client the way a correct product must do it: CA file, SNI, host name
// check, peer verification.
TlsResult TlsConnect(const DovecotServer& server, const std::string& name) {
  TlsResult out;
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx(SSL_CTX_new(TLS_client_method()), SSL_CTX_free);
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
  if (SSL_CTX_load_verify_locations(ctx.get(), server.ca_file().c_str(), nullptr) != 1) return out;
  int fd = ConnectLoopback(server.imaps_port());
  if (fd < 0) return out;
  std::unique_ptr<SSL, decltype(&SSL_free)> ssl(SSL_new(ctx.get()), SSL_free);
  SSL_set_fd(ssl.get(), fd);
  SSL_set_tlsext_host_name(ssl.get(), name.c_str());
  SSL_set1_host(ssl.get(), name.c_str());
  out.handshake_ok = SSL_connect(ssl.get()) == 1;
  out.verify_result = SSL_get_verify_result(ssl.get());
  if (out.handshake_ok) {
    char buf[512];
    int n = SSL_read(ssl.get(), buf, sizeof buf);
    if (n > 0) out.greeting.assign(buf, static_cast<size_t>(n));
    SSL_shutdown(ssl.get());
  }
  ERR_clear_error();
  close(fd);
  return out;
}

// Reads from fd until `needle` is in what was read, or the timeout / EOF.
bool ReadUntil(int fd, const std::string& needle, milliseconds timeout, std::string* seen) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  char buf[4096];
  while (seen->find(needle) == std::string::npos) {
    auto left = std::chrono::duration_cast<milliseconds>(deadline - std::chrono::steady_clock::now()).count();
    if (left <= 0) return false;
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left)) <= 0) continue;
    ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) return false;
    seen->append(buf, static_cast<size_t>(n));
  }
  return true;
}

bool WriteLine(int fd, const std::string& line) {
  std::string data = line + "\r\n";
  return write(fd, data.data(), data.size()) == static_cast<ssize_t>(data.size());
}

class HarnessSmokeTest : public ::testing::Test {
 protected:
  void SetUp() override { MH_ASSERT_OK(dovecot_.Start()); }

  DovecotServer dovecot_;
};

TEST_F(HarnessSmokeTest, TlsHandshakeVerifiesAgainstTheTestCa) {
  TlsResult r = TlsConnect(dovecot_, "localhost");
  EXPECT_TRUE(r.handshake_ok);
  EXPECT_EQ(r.verify_result, X509_V_OK);
  EXPECT_EQ(r.greeting.rfind("* OK", 0), 0u) << r.greeting;
  // The good certificate also names the IP, which is what configs use.
  EXPECT_TRUE(TlsConnect(dovecot_, "127.0.0.1").handshake_ok);
}

TEST_F(HarnessSmokeTest, WrongNameAndUntrustedCertificatesFailVerification) {
  MH_ASSERT_OK(dovecot_.RestartWithCert(ServerCert::kWrongName));
  TlsResult wrong = TlsConnect(dovecot_, "localhost");
  EXPECT_FALSE(wrong.handshake_ok);
  EXPECT_EQ(wrong.verify_result, X509_V_ERR_HOSTNAME_MISMATCH);

  MH_ASSERT_OK(dovecot_.RestartWithCert(ServerCert::kUntrusted));
  TlsResult untrusted = TlsConnect(dovecot_, "localhost");
  EXPECT_FALSE(untrusted.handshake_ok);
  EXPECT_EQ(untrusted.verify_result, X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT);
}

TEST_F(HarnessSmokeTest, AppendListFlagsFetchAndFolders) {
  ImapClient imap(dovecot_);
  std::string msg = SampleMessage("mixed_attachment.eml");
  MH_ASSERT_OK_AND_ASSIGN(uint32_t uid1, imap.Append("alice", "INBOX", msg));
  MH_ASSERT_OK_AND_ASSIGN(uint32_t uid2, imap.Append("alice", "INBOX", SampleMessage("plain_utf8.eml"), {"$Label1"}));
  EXPECT_LT(uid1, uid2);

  MH_ASSERT_OK_AND_ASSIGN(auto uids, imap.ListUids("alice", "INBOX"));
  EXPECT_EQ(uids, (std::vector<uint32_t>{uid1, uid2}));
  MH_ASSERT_OK_AND_ASSIGN(auto bob_uids, imap.ListUids("bob", "INBOX"));
  EXPECT_TRUE(bob_uids.empty());

  MH_ASSERT_OK_AND_ASSIGN(auto flags, imap.Flags("alice", "INBOX", uid2));
  EXPECT_NE(std::find(flags.begin(), flags.end(), "$Label1"), flags.end());
  EXPECT_EQ(std::find(flags.begin(), flags.end(), "\\Seen"), flags.end());
  MH_ASSERT_OK(imap.AddFlags("alice", "INBOX", uid2, {"\\Seen"}));
  MH_ASSERT_OK_AND_ASSIGN(flags, imap.Flags("alice", "INBOX", uid2));
  EXPECT_NE(std::find(flags.begin(), flags.end(), "\\Seen"), flags.end());
  EXPECT_FALSE(imap.Flags("alice", "INBOX", uid2 + 100).ok());

  MH_ASSERT_OK_AND_ASSIGN(std::string fetched, imap.Fetch("alice", "INBOX", uid1));
  EXPECT_EQ(fetched, ToCrlf(msg));

  MH_ASSERT_OK(imap.CreateFolder("alice", "Processed"));
  MH_ASSERT_OK_AND_ASSIGN(auto folders, imap.ListFolders("alice"));
  EXPECT_EQ(folders, (std::vector<std::string>{"INBOX", "Processed"}));

  MH_ASSERT_OK_AND_ASSIGN(FolderStatus st, imap.Status("alice", "INBOX"));
  EXPECT_EQ(st.messages, 2u);
  EXPECT_EQ(st.uidnext, uid2 + 1);
  EXPECT_NE(st.uidvalidity, 0u);

  MH_ASSERT_OK(imap.Expunge("alice", "INBOX", uid1));
  MH_ASSERT_OK_AND_ASSIGN(uids, imap.ListUids("alice", "INBOX"));
  EXPECT_EQ(uids, (std::vector<uint32_t>{uid2}));

  EXPECT_FALSE(ImapClient("127.0.0.1", dovecot_.imap_port(), {{"alice", "wrong"}}).ListUids("alice", "INBOX").ok());
}

/// A loopback relay to Dovecot that breaks the first connection on which
/// the client sends APPEND: before the command reaches the server, or after
/// the server stored the message (its tagged APPENDUID answer is dropped).
/// One connection at a time, as ImapClient makes them.
class AppendBreakingRelay {
 public:
  enum class Break { kBeforeTheServer, kAfterTheServer };
  AppendBreakingRelay(int server_port, Break mode) : server_port_(server_port), mode_(mode) {
    listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), len) == 0 && listen(listen_fd_, 8) == 0 &&
        getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
      port_ = ntohs(addr.sin_port);
    }
    thread_ = std::thread([this] { Serve(); });
  }
  ~AppendBreakingRelay() {
    stop_ = true;
    thread_.join();
    close(listen_fd_);
  }
  int port() const { return port_; }
  int broken() const { return broken_; }

 private:
  void Serve() {
    while (!stop_) {
      pollfd p{listen_fd_, POLLIN, 0};
      if (poll(&p, 1, 100) <= 0) continue;  // 100 ms: to see stop_
      int client = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (client < 0) continue;
      int server = ConnectLoopback(server_port_);
      if (server >= 0) Relay(client, server);
      close(client);
      if (server >= 0) close(server);
    }
  }
  // Copies both ways until either side closes, or the break.
  void Relay(int client, int server) {
    bool appending = false;
    char buf[65536];
    while (!stop_) {
      pollfd p[2] = {{client, POLLIN, 0}, {server, POLLIN, 0}};
      if (poll(p, 2, 100) <= 0) continue;
      for (int i = 0; i < 2; ++i) {
        if (p[i].revents == 0) continue;
        ssize_t n = read(p[i].fd, buf, sizeof buf);
        if (n <= 0) return;
        std::string_view data(buf, static_cast<size_t>(n));
        if (broken_ == 0 && i == 0 && data.find(" APPEND ") != std::string_view::npos) {
          appending = true;
          if (mode_ == Break::kBeforeTheServer) {
            ++broken_;
            return;
          }
        }
        if (appending && i == 1 && data.find("APPENDUID") != std::string_view::npos) {
          ++broken_;  // stored, but the client never hears so
          return;
        }
        if (write(p[1 - i].fd, buf, static_cast<size_t>(n)) != n) return;
      }
    }
  }

  int server_port_;
  Break mode_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> broken_{0};
  std::thread thread_;
};

// AppendRetrying (after a test kills Dovecot's session processes): an
// APPEND whose connection breaks is tried again only when the message did
// not arrive, so it is stored exactly once either way.
TEST_F(HarnessSmokeTest, AppendRetryingStoresTheMessageExactlyOnceAcrossABrokenConnection) {
  const ImapClient direct(dovecot_);
  for (auto mode : {AppendBreakingRelay::Break::kBeforeTheServer, AppendBreakingRelay::Break::kAfterTheServer}) {
    {
      // The break is real: a plain Append fails on it.
      AppendBreakingRelay relay(dovecot_.imap_port(), mode);
      ASSERT_NE(relay.port(), 0);
      ImapClient plain("127.0.0.1", relay.port(), {{"alice", dovecot_.password("alice")}});
      EXPECT_FALSE(plain.Append("alice", "INBOX", SampleMessage("plain_utf8.eml")).ok());
      EXPECT_EQ(relay.broken(), 1);
    }
    AppendBreakingRelay relay(dovecot_.imap_port(), mode);
    ASSERT_NE(relay.port(), 0);
    ImapClient imap("127.0.0.1", relay.port(), {{"alice", dovecot_.password("alice")}});
    MH_ASSERT_OK_AND_ASSIGN(auto before, direct.ListUids("alice", "INBOX"));
    MH_ASSERT_OK_AND_ASSIGN(uint32_t uid, imap.AppendRetrying("alice", "INBOX", SampleMessage("latin1_qp.eml")));
    EXPECT_EQ(relay.broken(), 1);
    MH_ASSERT_OK_AND_ASSIGN(auto after, direct.ListUids("alice", "INBOX"));
    ASSERT_EQ(after.size(), before.size() + 1) << "stored exactly once";
    EXPECT_EQ(after.back(), uid);
    MH_ASSERT_OK_AND_ASSIGN(std::string stored, direct.Fetch("alice", "INBOX", uid));
    EXPECT_EQ(stored, ToCrlf(SampleMessage("latin1_qp.eml")));
  }
}

TEST_F(HarnessSmokeTest, IdlePushesExistsAndKilledSessionsDropTheConnection) {
  int fd = ConnectLoopback(dovecot_.imap_port());
  ASSERT_GE(fd, 0);
  std::string seen;
  ASSERT_TRUE(ReadUntil(fd, "* OK", seconds(5), &seen)) << seen;
  ASSERT_TRUE(WriteLine(fd, "a1 LOGIN alice secret1"));
  ASSERT_TRUE(ReadUntil(fd, "a1 OK", seconds(5), &seen)) << seen;
  ASSERT_TRUE(WriteLine(fd, "a2 SELECT INBOX"));
  ASSERT_TRUE(ReadUntil(fd, "a2 OK", seconds(5), &seen)) << seen;
  ASSERT_TRUE(WriteLine(fd, "a3 IDLE"));
  ASSERT_TRUE(ReadUntil(fd, "+ idling", seconds(5), &seen)) << seen;

  ImapClient imap(dovecot_);
  auto start = std::chrono::steady_clock::now();
  MH_ASSERT_OK(imap.Append("alice", "INBOX", SampleMessage("plain_utf8.eml")));
  // Dovecot batches notifications (~0.5 s); inotify must work for this to be fast.
  EXPECT_TRUE(ReadUntil(fd, "* 1 EXISTS", seconds(5), &seen)) << seen;
  EXPECT_LT(std::chrono::steady_clock::now() - start, seconds(3));

  ASSERT_TRUE(dovecot_.WaitForSessions(1, seconds(5)));
  MH_ASSERT_OK_AND_ASSIGN(int killed, dovecot_.KillSessionProcesses());
  EXPECT_GE(killed, 1);
  std::string after;
  EXPECT_FALSE(ReadUntil(fd, "never", seconds(5), &after));  // EOF, not a timeout...
  char c;
  EXPECT_EQ(read(fd, &c, 1), 0);  // ...as the next read shows
  close(fd);
  EXPECT_TRUE(dovecot_.running());
}

TEST_F(HarnessSmokeTest, RestartKeepsPortsAndMail) {
  ImapClient imap(dovecot_);
  MH_ASSERT_OK_AND_ASSIGN(uint32_t uid, imap.Append("bob", "INBOX", SampleMessage("latin1_qp.eml")));
  int port = dovecot_.imaps_port();
  MH_ASSERT_OK(dovecot_.Stop());
  EXPECT_FALSE(dovecot_.running());
  EXPECT_FALSE(imap.ListUids("bob", "INBOX").ok());
  MH_ASSERT_OK(dovecot_.Restart());
  EXPECT_EQ(dovecot_.imaps_port(), port);
  MH_ASSERT_OK_AND_ASSIGN(auto uids, imap.ListUids("bob", "INBOX"));
  EXPECT_EQ(uids, (std::vector<uint32_t>{uid}));
}

TEST(WebhookReceiverTest, RecordsRequestsAndAnswersFromTheScript) {
  WebhookReceiver receiver;
  MH_ASSERT_OK(receiver.Start());
  receiver.QueueStatuses({500});
  receiver.QueueResponses({{429, {{"Retry-After", "7"}}, "slow down", milliseconds(0)}});

  httplib::Client client("127.0.0.1", receiver.port());
  httplib::Headers headers{{"webhook-id", "evt_1"}};
  auto r1 = client.Post("/hook", headers, R"({"n":1})", "application/json");
  auto r2 = client.Post("/hook", headers, R"({"n":2})", "application/json");
  auto r3 = client.Post("/hook", headers, R"({"n":3})", "application/json");
  ASSERT_TRUE(r1 && r2 && r3);
  EXPECT_EQ(r1->status, 500);
  EXPECT_EQ(r2->status, 429);
  EXPECT_EQ(r2->get_header_value("Retry-After"), "7");
  EXPECT_EQ(r3->status, 200);

  ASSERT_TRUE(receiver.WaitFor(3, seconds(5)));
  auto requests = receiver.Requests();
  ASSERT_EQ(requests.size(), 3u);
  EXPECT_EQ(requests[0].method, "POST");
  EXPECT_EQ(requests[0].path, "/hook");
  EXPECT_EQ(requests[0].Header("Webhook-Id"), "evt_1");
  EXPECT_EQ(requests[2].Json()["n"], 3);
  EXPECT_EQ(requests[1].answered_status, 429);
  EXPECT_FALSE(receiver.WaitFor(4, milliseconds(50)));
}

TEST_F(HarnessSmokeTest, HttpsReceiverUsesTheTestCa) {
  WebhookReceiver receiver;
  MH_ASSERT_OK(receiver.StartTls(dovecot_.cert_file(), dovecot_.key_file()));
  EXPECT_EQ(receiver.url().rfind("https://127.0.0.1:", 0), 0u);
  httplib::Client client(receiver.url(""));
  client.set_ca_cert_path(dovecot_.ca_file().c_str());
  client.enable_server_certificate_verification(true);
  auto r = client.Post("/hook", "{}", "application/json");
  ASSERT_TRUE(r) << httplib::to_string(r.error());
  EXPECT_EQ(r->status, 200);
  EXPECT_TRUE(receiver.WaitFor(1, seconds(5)));

  // Without the CA the same server is refused.
  httplib::Client strict(receiver.url(""));
  strict.set_ca_cert_path("/nonexistent");
  strict.enable_server_certificate_verification(true);
  EXPECT_FALSE(strict.Post("/hook", "{}", "application/json"));
  EXPECT_EQ(receiver.count(), 1u);
}

TEST(WebhookReceiverTest, DelayedResponsesProvokeClientTimeouts) {
  WebhookReceiver receiver;
  MH_ASSERT_OK(receiver.Start());
  receiver.QueueResponses({{200, {}, "late", seconds(3)}});
  httplib::Client client("127.0.0.1", receiver.port());
  client.set_read_timeout(0, 300000);
  auto r = client.Post("/hook", "{}", "application/json");
  EXPECT_FALSE(r);
  EXPECT_TRUE(receiver.WaitFor(1, seconds(5)));
}

TEST(WebhookSignatureTest, MatchesTheStandardWebhooksSpecExample) {
  // The example from the Standard Webhooks specification.
  RecordedRequest req;
  req.headers = {{"webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek"},
                 {"webhook-timestamp", "1614265330"},
                 {"webhook-signature", "v1,bogus v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="}};
  req.body = R"({"test": 2432232314})";
  EXPECT_TRUE(VerifyStandardWebhookSignature("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", req));
  req.body += " ";
  EXPECT_FALSE(VerifyStandardWebhookSignature("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", req));
}

TEST(ChildProcessTest, WaitsForOutputAndExitWithoutSleeping) {
  // A stand-in daemon: logs, then exits 3 on SIGTERM.
  MailhookProcess proc("/bin/sh");
  proc.SetArgs({"-c", "trap 'echo bye >&2; exit 3' TERM; echo ready >&2; echo out; while :; do sleep 0.05; done"});
  MH_ASSERT_OK(proc.Start());
  EXPECT_TRUE(proc.WaitForLog("ready", seconds(5)));
  size_t mark = proc.LogMark();
  EXPECT_FALSE(proc.WaitForLog("ready", milliseconds(100), mark));
  EXPECT_TRUE(proc.Running());
  MH_ASSERT_OK_AND_ASSIGN(int code, proc.Terminate());
  EXPECT_EQ(code, 3);
  EXPECT_NE(proc.Log().find("bye"), std::string::npos);
  EXPECT_EQ(proc.Stdout(), "out\n");
  EXPECT_NE(ReadFile(proc.log_path()).find("ready"), std::string::npos);

  MH_ASSERT_OK(proc.Restart());
  EXPECT_TRUE(proc.WaitForLog("ready", seconds(5)));
  proc.Kill9();
  EXPECT_FALSE(proc.Running());

  MH_ASSERT_OK_AND_ASSIGN(CommandResult r, RunCommand({"/bin/sh", "-c", "echo hi; echo err >&2; exit 4"}, seconds(5)));
  EXPECT_EQ(r.exit_code, 4);
  EXPECT_EQ(r.out, "hi\n");
  EXPECT_EQ(r.err, "err\n");
  MH_ASSERT_OK_AND_ASSIGN(r, RunCommand({"/bin/sh", "-c", "sleep 30"}, milliseconds(200)));
  EXPECT_EQ(r.exit_code, -1);
  EXPECT_FALSE(RunCommand({"/nonexistent/binary"}, seconds(1)).ok());
}

TEST(ConfigYamlTest, PointsAtTheTestServer) {
  DovecotServer dovecot;
  MH_ASSERT_OK(dovecot.Start());
  ConfigSpec spec;
  spec.state_dir = "/tmp/x";
  spec.accounts.push_back(AccountYaml(dovecot, {}));
  spec.webhooks.push_back(WebhookYaml({"hook", "http://127.0.0.1:1/hook", kTestWebhookSecret, ""}));
  std::string yaml = RenderConfig(spec);
  EXPECT_NE(yaml.find("port: " + std::to_string(dovecot.imaps_port())), std::string::npos) << yaml;
  EXPECT_NE(yaml.find("\"secret1\""), std::string::npos) << yaml;
  EXPECT_NE(yaml.find(dovecot.ca_file()), std::string::npos) << yaml;
}

}  // namespace
}  // namespace mailhook::testsupport
