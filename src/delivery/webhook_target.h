#pragma once
/// WebhookTarget: HTTP POST of an event to one configured webhook, signed per
/// Standard Webhooks (delivery/signing.h).
///
/// HTTPS verifies the server certificate against the system store (or the
/// webhook's ca_file) and checks the host name; redirects are not followed (a 3xx
/// is a permanent failure); keep-alive connections are pooled and reused.
/// Custom headers from the config are sent but never logged.
///
/// A receiver is not trusted to be well-behaved: its response body is read up
/// to kMaxResponseBodyBytes and then the connection is dropped, it is never
/// decompressed, and the whole attempt (connect, send, headers, body) ends at
/// the webhook's `timeout`, however slowly the receiver trickles bytes. What
/// is kept of an error body (dead letters, logs) is a short, printable excerpt
/// with every configured header value, secret and signature redacted.
///
/// Thread-safe: Deliver may run on several threads at once (each takes its own
/// pooled connection). Never throws. A request ends at its deadline or when
/// the call's cancel token fires, from inside its own waits (http/client.h):
/// no thread watches over it.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/config.h"
#include "delivery/signing.h"
#include "delivery/target.h"
#include "http/client.h"
#include "util/mutex.h"
#include "util/result.h"
#include "util/thread_annotations.h"

namespace mailhook::delivery {

/// Bytes of a receiver's response body read at most; the rest is not read.
inline constexpr size_t kMaxResponseBodyBytes = 64 * 1024;
/// Characters of a response body kept in an error message.
inline constexpr size_t kMaxErrorExcerptChars = 200;

/// A short printable excerpt of `body` with every occurrence of each of
/// `secrets` replaced by "<redacted>"; `truncated` says `body` was cut, so a
/// secret's first bytes may end it (they are dropped too).
std::string RedactedExcerpt(std::string_view body, const std::vector<std::string>& secrets, bool truncated = false,
                            size_t max_chars = kMaxErrorExcerptChars);

/// One webhook from the config.
class WebhookTarget : public Target {
 public:
  /// Resolves the signing secrets and header values (runs any *_command) and
  /// checks the keys decode; `version` goes into the User-Agent. Logs a
  /// warning for an insecure target (http:// off the host, tls_verify: false).
  static util::Result<std::unique_ptr<WebhookTarget>> Create(const config::Webhook& webhook,
                                                             const std::string& version);
  ~WebhookTarget() override;

  Outcome Deliver(const store::Delivery& delivery, const util::CancelToken& cancel) override;

  const std::string& name() const { return webhook_.name; }

  /// Requests in flight now; tests check none stays behind.
  size_t InFlightCount() const;
  /// Fault injection for tests: runs before the request is sent (may throw,
  /// as a failing allocation would).
  void SetBodyFaultForTest(std::function<void()> fault) { body_fault_ = std::move(fault); }

 private:
  class InFlight;

  /// The webhook's secrets, resolved once by Create.
  struct Resolved {
    std::vector<util::Secret> secrets;                          // signing secrets, as given (redaction)
    std::vector<SigningKey> keys;                               // their decoded key bytes (signing)
    std::vector<std::pair<std::string, util::Secret>> headers;  // configured headers
  };

  WebhookTarget(config::Webhook webhook, Resolved resolved, std::string user_agent);
  /// A pooled connection still open, or a new one (opened by `deadline`).
  util::Result<std::unique_ptr<http::ClientConnection>> TakeConnection(std::chrono::steady_clock::time_point deadline,
                                                                       int stop_fd) EXCLUDES(mu_);
  void ReturnConnection(std::unique_ptr<http::ClientConnection> connection) EXCLUDES(mu_);
  /// One POST under the whole-attempt deadline; `redact` adds this request's
  /// signature to the values kept out of error excerpts.
  Outcome Send(const std::string& body, const std::vector<std::pair<std::string, std::string>>& headers,
               const std::vector<std::string>& redact, const util::CancelToken& cancel);
  /// The attempt's trace line (http_trace.h): `status`, or `failed` (why no
  /// answer was read) when not empty.
  void TraceAttempt(const std::string& path, const std::vector<std::pair<std::string, std::string>>& headers,
                    size_t body_bytes, const std::string& failed, int status,
                    std::chrono::steady_clock::time_point started) const;

  const config::Webhook webhook_;
  const Resolved resolved_;
  const std::string origin_;  // webhook_.url.origin(): scheme, host, port; no path
  const std::string user_agent_;
  std::vector<std::string> redact_;  // header values and secrets, longest first; fixed
  std::function<void()> body_fault_;

  mutable util::Mutex mu_;
  std::vector<std::unique_ptr<http::ClientConnection>> idle_ GUARDED_BY(mu_);
  std::atomic<size_t> in_flight_{0};  // InFlightCount, for tests
};

}  // namespace mailhook::delivery
