#pragma once
/// WebhookReceiver: a real HTTP server (cpp-httplib) on 127.0.0.1:<free port>
/// that records every request and answers from a programmable sequence of
/// responses (e.g. 500, 500, 200; or 429 with Retry-After), so tests can
/// drive retries and outages of a webhook consumer. Tests wait on requests
/// with WaitFor (condition variable + timeout), never by sleeping.

#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "util/result.h"

namespace httplib {
class Server;
}

namespace mailhook::testsupport {

/// One request as received. Header names are lower-cased.
struct RecordedRequest {
  std::string method;
  std::string path;
  std::multimap<std::string, std::string> headers;
  std::string body;
  std::chrono::steady_clock::time_point received_at;
  int answered_status = 0;  ///< the status this request got

  /// First value of a header (name case-insensitive); empty if absent.
  std::string Header(const std::string& name) const;
  /// The body parsed as JSON; discarded (is_discarded()) if it is not JSON.
  nlohmann::json Json() const;
};

/// One scripted answer.
struct ScriptedResponse {
  int status = 200;
  std::map<std::string, std::string> headers;  ///< e.g. {"Retry-After", "2"}
  std::string body = "ok";
  std::chrono::milliseconds delay{0};  ///< answer this late (to provoke client timeouts)
};

/// The receiver. All methods are thread-safe. Requests are answered with the
/// scripted responses in order; once those are used up, with the default
/// response (200 unless changed).
class WebhookReceiver {
 public:
  WebhookReceiver();
  ~WebhookReceiver();
  WebhookReceiver(const WebhookReceiver&) = delete;
  WebhookReceiver& operator=(const WebhookReceiver&) = delete;

  /// Binds 127.0.0.1:0 and starts serving. Fails if it cannot bind.
  util::Status Start();
  /// The same over HTTPS with this certificate and key (PEM files), e.g.
  /// DovecotServer::cert_file()/key_file(), which the test CA signed.
  util::Status StartTls(const std::string& cert_file, const std::string& key_file);
  /// Stops serving (pending delayed responses are cut short); idempotent.
  void Stop();

  int port() const { return port_; }
  /// "http(s)://127.0.0.1:<port><path>".
  std::string url(const std::string& path = "/hook") const;

  /// Queues answers for the next requests, after any still queued.
  void QueueResponses(const std::vector<ScriptedResponse>& responses);
  /// Shorthand: queue answers with just these statuses.
  void QueueStatuses(const std::vector<int>& statuses);
  void SetDefaultResponse(const ScriptedResponse& response);

  /// Waits until at least `n` requests have been recorded in total.
  bool WaitFor(size_t n, std::chrono::milliseconds timeout) const;
  /// Everything recorded so far, in arrival order.
  std::vector<RecordedRequest> Requests() const;
  size_t count() const;

 private:
  void Handle(const void* request, void* response);
  util::Status Listen();

  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
  bool tls_ = false;

  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  std::vector<RecordedRequest> requests_;  // guarded by mu_
  std::deque<ScriptedResponse> script_;    // guarded by mu_
  ScriptedResponse default_response_;      // guarded by mu_
  bool stopping_ = false;                  // guarded by mu_
};

/// Verifies a Standard Webhooks signature independently of the product:
/// secret "whsec_<base64 key>", header webhook-signature holds one or more
/// "v1,<base64 HMAC-SHA256(key, id + "." + timestamp + "." + body)>".
/// Returns true if any v1 signature matches.
bool VerifyStandardWebhookSignature(const std::string& secret, const RecordedRequest& request);

/// The v1 signature the spec prescribes, for tests that build requests.
std::string StandardWebhookSignature(const std::string& secret, const std::string& id, const std::string& timestamp,
                                     const std::string& body);

}  // namespace mailhook::testsupport
