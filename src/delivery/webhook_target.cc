#include "delivery/webhook_target.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <optional>
#include <set>

#include "config/reserved_headers.h"
#include "delivery/http_trace.h"
#include "delivery/signing.h"
#include "util/log.h"
#include "util/strings.h"

namespace mailhook::delivery {
namespace {

using Steady = std::chrono::steady_clock;
using util::Error;
using util::Result;
using util::RetryClass;

// The values a receiver must not get us to store or log by echoing them:
// each configured header value (and the credentials after an auth scheme such
// as "Bearer "), each signing secret and its key part.
std::vector<std::string> SecretsToRedact(const std::vector<std::pair<std::string, util::Secret>>& headers,
                                         const std::vector<util::Secret>& secrets) {
  std::vector<std::string> out;
  for (const auto& [name, value] : headers) {
    const std::string& v = value.reveal();
    out.push_back(v);
    if (auto space = v.find(' '); space != std::string::npos) out.push_back(v.substr(space + 1));
  }
  for (const auto& secret : secrets) {
    out.push_back(secret.reveal());
    if (secret.reveal().rfind("whsec_", 0) == 0) out.push_back(secret.reveal().substr(6));
  }
  return out;
}

// Each signature of a webhook-signature value ("v1,<b64> v1,<b64>") and its MAC.
void AddSignatures(const std::string& header, std::vector<std::string>& out) {
  out.push_back(header);
  size_t start = 0;
  while (start < header.size()) {
    size_t end = std::min(header.find(' ', start), header.size());
    std::string sig = header.substr(start, end - start);
    out.push_back(sig);
    if (auto comma = sig.find(','); comma != std::string::npos) out.push_back(sig.substr(comma + 1));
    start = end + 1;
  }
}

}  // namespace

std::string RedactedExcerpt(std::string_view body, const std::vector<std::string>& secrets, bool truncated,
                            size_t max_chars) {
  std::string text(body);
  size_t longest = 0;
  for (const auto& s : secrets) longest = std::max(longest, s.size());
  // A body cut by the size cap may end in the first bytes of a secret, which
  // no whole-secret match would find: drop as many bytes as could hold one.
  if (truncated && longest > 1) text.resize(text.size() - std::min(text.size(), longest - 1));
  std::vector<std::string> sorted;
  for (const auto& s : secrets) {
    if (!s.empty()) sorted.push_back(s);
  }
  // Longest first, so a value that contains another is replaced whole.
  std::sort(sorted.begin(), sorted.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  for (const auto& secret : sorted) {
    for (size_t at = text.find(secret); at != std::string::npos; at = text.find(secret, at)) {
      text.replace(at, secret.size(), "<redacted>");
      at += 10;
    }
  }
  std::string out;
  for (char c : text) {
    if (out.size() >= max_chars) {
      out += "...";
      break;
    }
    auto u = static_cast<unsigned char>(c);
    // Printable ASCII only: no control sequences or broken UTF-8 in logs.
    out += (u < 0x20 || u == 0x7f) ? ' ' : (u >= 0x80 ? '?' : c);
  }
  return out;
}

/// Counts a request as in flight for as long as it lives, so that neither a
/// throw nor an early return leaves it counted.
class WebhookTarget::InFlight {
 public:
  explicit InFlight(WebhookTarget& target) : target_(target) { ++target_.in_flight_; }
  ~InFlight() { --target_.in_flight_; }
  InFlight(const InFlight&) = delete;
  InFlight& operator=(const InFlight&) = delete;

 private:
  WebhookTarget& target_;
};

WebhookTarget::WebhookTarget(config::Webhook webhook, Resolved resolved, std::string user_agent)
    : webhook_(std::move(webhook)),
      resolved_(std::move(resolved)),
      origin_(webhook_.url.origin()),
      user_agent_(std::move(user_agent)),
      redact_(SecretsToRedact(resolved_.headers, resolved_.secrets)) {}

WebhookTarget::~WebhookTarget() = default;

Result<std::unique_ptr<WebhookTarget>> WebhookTarget::Create(const config::Webhook& webhook,
                                                             const std::string& version) {
  auto fail = [&](const Error& e) { return e.WithMessage("webhooks." + webhook.name + ": " + e.message()); };
  const config::HttpUrl& url = webhook.url;  // validated by the loader
  if (url.empty()) {
    return fail(Error("webhook.url", RetryClass::kNeedsOperator, "no url (a config not made by the loader)"));
  }
  // Resolved here, once per start-up: a *_command runs now, not when the
  // config is read (so `check` and `deadletters` run nothing).
  Resolved resolved;
  for (const auto& ref : webhook.secrets) {
    auto secret = ref.Resolve();
    if (!secret.ok()) return fail(secret.error());
    auto key = DecodeSigningKey(*secret);  // once: every signature reuses the bytes
    if (!key.ok()) return fail(key.error());
    resolved.keys.push_back(std::move(*key));
    resolved.secrets.push_back(std::move(*secret));
  }
  for (const auto& [name, ref] : webhook.headers) {
    if (config::IsReservedHeader(name)) continue;  // the loader refuses these
    auto value = ref.Resolve();
    if (!value.ok()) return fail(value.error());
    resolved.headers.emplace_back(name, std::move(*value));
  }
  spdlog::logger* log = &util::Log(util::Area::kDelivery);
  bool plain_remote = !url.https() && !url.is_loopback();
  if ((plain_remote || (url.https() && !webhook.tls_verify)) && !webhook.allow_insecure) {
    return fail(Error("webhook.insecure", RetryClass::kNeedsOperator,
                      plain_remote ? "http:// to a host other than loopback sends events and "
                                     "headers in clear text; use https:// or set "
                                     "allow_insecure: true"
                                   : "tls_verify: false accepts any server; set ca_file for a "
                                     "private CA, or allow_insecure: true"));
  }
  // Said once at start-up, as for accounts with tls: none: whoever reads the
  // log should see that this target's traffic can be read or redirected.
  if (plain_remote) {
    log->warn("delivery.insecure webhook={} cause=plain_http host={}", webhook.name, url.host());
  } else if (url.https() && !webhook.tls_verify) {
    log->warn("delivery.insecure webhook={} cause=tls_verify_off host={}", webhook.name, url.host());
  }
  return std::unique_ptr<WebhookTarget>(new WebhookTarget(webhook, std::move(resolved), "mailhook/" + version));
}

Result<std::unique_ptr<http::ClientConnection>> WebhookTarget::TakeConnection(Steady::time_point deadline,
                                                                              int stop_fd) {
  for (;;) {
    std::unique_ptr<http::ClientConnection> pooled;
    {
      util::MutexLock lock(mu_);
      if (idle_.empty()) break;
      pooled = std::move(idle_.back());
      idle_.pop_back();
    }
    // One the receiver closed while it was idle is dropped, not tried.
    if (pooled->Reusable()) return pooled;
  }
  http::ClientOrigin origin = http::ClientOrigin::Of(webhook_.url);
  origin.tls_verify = webhook_.tls_verify;
  origin.ca_file = webhook_.ca_file;
  origin.owner = "webhook, with allow_insecure: true";
  return http::ClientConnection::Open(origin, deadline, stop_fd);
}

void WebhookTarget::ReturnConnection(std::unique_ptr<http::ClientConnection> connection) {
  if (!connection->Reusable()) return;
  util::MutexLock lock(mu_);
  // A pool as large as the target's concurrency is enough; drop extras.
  if (idle_.size() < static_cast<size_t>(std::max(webhook_.concurrency, 1))) idle_.push_back(std::move(connection));
}

size_t WebhookTarget::InFlightCount() const { return in_flight_; }

Outcome WebhookTarget::Deliver(const store::Delivery& delivery, const util::CancelToken& cancel) {
  Outcome out;
  if (cancel.cancelled()) {
    out.cancelled = true;
    out.error = "POST " + origin_ + " not sent: shutting down";
    return out;
  }
  try {
    const auto& event_id = delivery.item.event_id;
    const auto& body = delivery.item.payload;
    int64_t timestamp =
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
    std::vector<std::pair<std::string, std::string>> headers;
    for (const auto& [name, value] : resolved_.headers) {
      headers.emplace_back(name, value.reveal());
    }
    headers.emplace_back("User-Agent", user_agent_);
    headers.emplace_back("webhook-id", event_id);
    headers.emplace_back("webhook-timestamp", std::to_string(timestamp));
    std::vector<std::string> redact = redact_;
    if (!resolved_.keys.empty()) {
      auto sig = SignatureHeader(resolved_.keys, event_id, timestamp, body);
      if (!sig.ok()) {
        out.kind = OutcomeKind::kPermanent;
        out.error = sig.error().message();
        return out;
      }
      AddSignatures(*sig, redact);
      headers.emplace_back("webhook-signature", *sig);
    }
    return Send(body, headers, redact, cancel);
  } catch (const std::exception& e) {
    // A failing allocation (or the test fault) must never reach the worker loop.
    out.kind = OutcomeKind::kRetry;
    out.error = std::string("internal error: ") + e.what();
  }
  return out;
}

void WebhookTarget::TraceAttempt(const std::string& path,
                                 const std::vector<std::pair<std::string, std::string>>& headers, size_t body_bytes,
                                 const std::string& failed, int status, Steady::time_point started) const {
  HttpTraceLine line;
  line.target = webhook_.name;
  line.method = "POST";
  line.origin = origin_;
  line.path = path;
  line.headers = &headers;
  line.body_bytes = body_bytes;
  if (failed.empty()) {
    line.status = status;
  } else {
    line.error = failed;
  }
  line.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(Steady::now() - started);
  TraceHttpRequest(line);
}

Outcome WebhookTarget::Send(const std::string& body, const std::vector<std::pair<std::string, std::string>>& headers,
                            const std::vector<std::string>& redact, const util::CancelToken& cancel) {
  Outcome out;
  http::ClientRequest req;
  req.target = webhook_.url.target();
  req.headers = headers;
  req.headers.emplace_back("Content-Type", "application/json");
  req.body = body;
  InFlight in_flight(*this);
  if (body_fault_) body_fault_();
  const bool trace = HttpTraceOn();  // http_trace.h: nothing is built otherwise
  const Steady::time_point started = Steady::now();
  const Steady::time_point deadline = started + webhook_.timeout;
  auto connection = TakeConnection(deadline, cancel.fd());
  auto res = connection ? (*connection)->Exchange(req, deadline, cancel.fd(), kMaxResponseBodyBytes)
                        : Result<http::ClientResponse>(connection.error());
  if (trace)
    TraceAttempt(req.target, headers, body.size(), res ? "" : res.error().message(), res ? res->status : 0, started);
  if (!res && (res.error().code() == "http.stopped" || cancel.cancelled())) {
    out.cancelled = true;
    out.error = "POST " + origin_ + " abandoned: shutting down";
    return out;
  }
  if (!res && res.error().code() == "http.timeout") {
    out.error = "POST " + origin_ + " timed out: no complete response within " +
                std::to_string(webhook_.timeout.count()) +
                " ms (the webhook's timeout, for the whole attempt; raise it if the receiver "
                "is slow but alive)";
    return out;
  }
  if (!res) {
    // Refused connections, TLS failures, broken answers: the contract retries
    // all of them. The connection is dropped rather than pooled.
    out.error = "POST " + origin_ + " failed: " + res.error().message();
    return out;
  }
  out.http_status = res->status;
  out.kind = ClassifyStatus(res->status);
  if (out.kind != OutcomeKind::kSuccess) {
    out.error = "HTTP " + std::to_string(res->status);
    if (res->status >= 300 && res->status < 400) {
      out.error += " redirect (not followed: configure the final URL)";
    }
    if (!res->body.empty()) out.error += ": " + RedactedExcerpt(res->body, redact, res->body_capped);
    if (const std::string* retry_after = res->Header("Retry-After")) {
      out.retry_after = ParseRetryAfter(*retry_after, std::chrono::system_clock::now());
    }
  }
  // Pooled only when the answer was read whole on a kept-alive connection.
  ReturnConnection(std::move(*connection));
  return out;
}

}  // namespace mailhook::delivery
