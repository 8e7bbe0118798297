#include "webhook_receiver.h"

#include <httplib.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <cctype>
#include <sstream>

namespace mailhook::testsupport {
namespace {

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

std::string Base64Encode(const unsigned char* data, size_t n) {
  std::string out(4 * ((n + 2) / 3), '\0');
  int len = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data, static_cast<int>(n));
  out.resize(static_cast<size_t>(len));
  return out;
}

// EVP_DecodeBlock counts '=' padding as zero bytes: trim them.
std::string Base64Decode(const std::string& in) {
  std::string out(3 * (in.size() / 4) + 3, '\0');
  int len = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                            reinterpret_cast<const unsigned char*>(in.data()), static_cast<int>(in.size()));
  if (len < 0) return "";
  size_t pad = 0;
  if (!in.empty() && in.back() == '=') ++pad;
  if (in.size() > 1 && in[in.size() - 2] == '=') ++pad;
  out.resize(static_cast<size_t>(len) - pad);
  return out;
}

}  // namespace

std::string RecordedRequest::Header(const std::string& name) const {
  auto it = headers.find(Lower(name));
  return it == headers.end() ? "" : it->second;
}

nlohmann::json RecordedRequest::Json() const { return nlohmann::json::parse(body, nullptr, false); }

WebhookReceiver::WebhookReceiver() = default;

WebhookReceiver::~WebhookReceiver() { Stop(); }

util::Status WebhookReceiver::Start() {
  server_ = std::make_unique<httplib::Server>();
  return Listen();
}

util::Status WebhookReceiver::StartTls(const std::string& cert_file, const std::string& key_file) {
  auto server = std::make_unique<httplib::SSLServer>(cert_file.c_str(), key_file.c_str());
  if (!server->is_valid()) {
    return util::Error("receiver.tls", util::RetryClass::kNeedsOperator,
                       "cannot load TLS certificate " + cert_file + " / key " + key_file);
  }
  server_ = std::move(server);
  tls_ = true;
  return Listen();
}

util::Status WebhookReceiver::Listen() {
  auto handler = [this](const httplib::Request& req, httplib::Response& res) { Handle(&req, &res); };
  server_->Get(".*", handler);
  server_->Post(".*", handler);
  server_->Put(".*", handler);
  server_->Patch(".*", handler);
  server_->Delete(".*", handler);
  // A short keep-alive so Stop() does not wait long on an idle client connection.
  server_->set_keep_alive_timeout(1);
  port_ = server_->bind_to_any_port("127.0.0.1");
  if (port_ <= 0) {
    return util::Error("receiver.bind", util::RetryClass::kNeedsOperator, "cannot bind 127.0.0.1:0");
  }
  // Connections queue in the listen backlog from here on; no need to wait.
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  return util::Ok();
}

void WebhookReceiver::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) {
    server_->stop();
    thread_.join();
  }
}

std::string WebhookReceiver::url(const std::string& path) const {
  return std::string(tls_ ? "https" : "http") + "://127.0.0.1:" + std::to_string(port_) + path;
}

void WebhookReceiver::QueueResponses(const std::vector<ScriptedResponse>& responses) {
  std::lock_guard<std::mutex> lock(mu_);
  script_.insert(script_.end(), responses.begin(), responses.end());
}

void WebhookReceiver::QueueStatuses(const std::vector<int>& statuses) {
  std::vector<ScriptedResponse> responses;
  for (int s : statuses) {
    ScriptedResponse r;
    r.status = s;
    r.body = std::to_string(s);
    responses.push_back(r);
  }
  QueueResponses(responses);
}

void WebhookReceiver::SetDefaultResponse(const ScriptedResponse& response) {
  std::lock_guard<std::mutex> lock(mu_);
  default_response_ = response;
}

void WebhookReceiver::Handle(const void* request, void* response) {
  const auto& req = *static_cast<const httplib::Request*>(request);
  auto& res = *static_cast<httplib::Response*>(response);
  RecordedRequest rec;
  rec.method = req.method;
  rec.path = req.path;
  for (const auto& [k, v] : req.headers) rec.headers.emplace(Lower(k), v);
  rec.body = req.body;
  rec.received_at = std::chrono::steady_clock::now();

  ScriptedResponse answer;
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (!script_.empty()) {
      answer = script_.front();
      script_.pop_front();
    } else {
      answer = default_response_;
    }
    rec.answered_status = answer.status;
    // Recorded before the (possibly delayed) answer: the client did send it.
    requests_.push_back(rec);
    cv_.notify_all();
    if (answer.delay.count() > 0) {
      cv_.wait_for(lock, answer.delay, [&] { return stopping_; });
    }
  }
  res.status = answer.status;
  for (const auto& [k, v] : answer.headers) res.set_header(k, v);
  res.set_content(answer.body, "text/plain");
}

bool WebhookReceiver::WaitFor(size_t n, std::chrono::milliseconds timeout) const {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return requests_.size() >= n; });
}

std::vector<RecordedRequest> WebhookReceiver::Requests() const {
  std::lock_guard<std::mutex> lock(mu_);
  return requests_;
}

size_t WebhookReceiver::count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return requests_.size();
}

std::string StandardWebhookSignature(const std::string& secret, const std::string& id, const std::string& timestamp,
                                     const std::string& body) {
  std::string key = secret.rfind("whsec_", 0) == 0 ? Base64Decode(secret.substr(6)) : secret;
  std::string content = id + "." + timestamp + "." + body;
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(content.data()),
       content.size(), mac, &mac_len);
  return "v1," + Base64Encode(mac, mac_len);
}

bool VerifyStandardWebhookSignature(const std::string& secret, const RecordedRequest& request) {
  std::string id = request.Header("webhook-id");
  std::string ts = request.Header("webhook-timestamp");
  std::string sigs = request.Header("webhook-signature");
  if (id.empty() || ts.empty() || sigs.empty()) return false;
  std::string expected = StandardWebhookSignature(secret, id, ts, request.body);
  std::istringstream in(sigs);
  std::string sig;
  while (in >> sig) {
    if (sig.size() == expected.size() && CRYPTO_memcmp(sig.data(), expected.data(), sig.size()) == 0) return true;
  }
  return false;
}

}  // namespace mailhook::testsupport
