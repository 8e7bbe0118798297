// HTTPS delivery: the server certificate is verified against ca_file and the
// host name (here the IP 127.0.0.1) must match.
#include <httplib.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>

#include "delivery/webhook_target.h"
#include "temp_dir.h"

namespace mailhook::delivery {
namespace {

namespace fs = std::filesystem;

/// A throwaway CA plus two leaf certificates made with the openssl CLI.
class Certs {
 public:
  Certs() {
    const std::string& d = dir_.path();
    std::string script = "set -e; cd " + d +
                         ";"
                         "openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 "
                         "  -subj /CN=mailhook-test-ca 2>/dev/null;"
                         "for n in good:IP:127.0.0.1 wrong:DNS:other.example; do "
                         "  name=${n%%:*}; san=${n#*:};"
                         "  openssl req -newkey rsa:2048 -nodes -keyout $name.key -out $name.csr "
                         "    -subj /CN=$name 2>/dev/null;"
                         "  printf 'subjectAltName=%s\\n' $san > $name.ext;"
                         "  openssl x509 -req -in $name.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
                         "    -out $name.pem -days 2 -extfile $name.ext 2>/dev/null;"
                         "done";
    std::ofstream(d + "/make.sh") << script;
    ok_ = std::system(("sh " + d + "/make.sh").c_str()) == 0;
  }
  bool ok() const { return ok_; }
  std::string file(const std::string& name) const { return dir_ / name; }

 private:
  testsupport::TempDir dir_{"mh_tls_"};
  bool ok_ = false;
};

/// An HTTPS receiver on 127.0.0.1 answering 204.
class TlsReceiver {
 public:
  TlsReceiver(const std::string& cert, const std::string& key) : server_(cert.c_str(), key.c_str()) {
    server_.Post(".*", [](const httplib::Request&, httplib::Response& res) { res.status = 204; });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::yield();  // httplib 0.11: no ready signal
  }
  ~TlsReceiver() {
    server_.stop();
    thread_.join();
  }
  std::string url() const { return "https://127.0.0.1:" + std::to_string(port_) + "/hook"; }

 private:
  httplib::SSLServer server_;
  std::thread thread_;
  int port_ = 0;
};

Outcome Post(const std::string& url, std::optional<std::string> ca_file) {
  config::Webhook hook;
  hook.name = "tls";
  hook.url = config::HttpUrl::Parse(url).value();
  hook.ca_file = std::move(ca_file);
  hook.timeout = std::chrono::seconds(5);
  auto target = WebhookTarget::Create(hook, "1");
  if (!target.ok()) return Outcome{OutcomeKind::kPermanent, 0, {}, "create failed", false};
  store::Delivery d;
  d.item.event_id = "evt_tls";
  d.item.payload = "{}";
  return (*target)->Deliver(d, util::CancelToken::Never());
}

TEST(WebhookTlsTest, TrustedCertificateForTheHostDelivers) {
  Certs certs;
  ASSERT_TRUE(certs.ok());
  TlsReceiver receiver(certs.file("good.pem"), certs.file("good.key"));
  auto out = Post(receiver.url(), certs.file("ca.pem"));
  EXPECT_EQ(out.kind, OutcomeKind::kSuccess) << out.error;
  EXPECT_EQ(out.http_status, 204);
}

TEST(WebhookTlsTest, UntrustedCertificateIsRefused) {
  Certs certs;
  ASSERT_TRUE(certs.ok());
  TlsReceiver receiver(certs.file("good.pem"), certs.file("good.key"));
  auto out = Post(receiver.url(), std::nullopt);  // system store does not know our CA
  EXPECT_EQ(out.kind, OutcomeKind::kRetry);
  EXPECT_EQ(out.http_status, 0);
  EXPECT_NE(out.error.find("TLS certificate verification failed"), std::string::npos) << out.error;
  EXPECT_NE(out.error.find("set ca_file to the CA that signed it"), std::string::npos) << out.error;
  EXPECT_NE(out.error.find("for this webhook, with allow_insecure: true"), std::string::npos) << out.error;
}

TEST(WebhookTlsTest, CertificateForAnotherHostIsRefused) {
  Certs certs;
  ASSERT_TRUE(certs.ok());
  TlsReceiver receiver(certs.file("wrong.pem"), certs.file("wrong.key"));
  auto out = Post(receiver.url(), certs.file("ca.pem"));
  EXPECT_EQ(out.kind, OutcomeKind::kRetry);
  EXPECT_EQ(out.http_status, 0);
  EXPECT_NE(out.error.find("TLS certificate verification failed"), std::string::npos) << out.error;
  EXPECT_NE(out.error.find("the certificate is not valid for host"), std::string::npos) << out.error;
}

}  // namespace
}  // namespace mailhook::delivery
