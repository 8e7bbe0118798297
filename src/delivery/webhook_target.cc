#include "delivery/webhook_target.h"

#include <arpa/inet.h>
#include <httplib.h>

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

// How often the watchdog repeats stop() on a request it has ended: a stop()
// that lands before httplib took the socket is a no-op, so it is repeated
// until the request is gone.
constexpr auto kRestopInterval = std::chrono::milliseconds(50);

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

/// What to check after a transport error, or "".
std::string TransportHint(httplib::Error err) {
  if (err == httplib::Error::SSLServerVerification) {
    return " (server certificate not trusted or wrong host name; set ca_file for a private CA)";
  }
  if (err == httplib::Error::Connection) return " (is the receiver running and reachable?)";
  return "";
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

/// Registers a request with the watchdog, and with the call's cancel token,
/// for as long as it lives, so that neither a throwing httplib call nor an
/// early return leaves a pointer or a callback behind.
class WebhookTarget::FlightGuard {
 public:
  FlightGuard(WebhookTarget& target, std::shared_ptr<httplib::Client> client, Steady::time_point deadline,
              const util::CancelToken& cancel)
      : target_(target) {
    {
      util::MutexLock lock(target_.mu_);
      id_ = target_.next_flight_++;
      target_.flights_.emplace(id_, Flight{std::move(client), deadline});
    }
    target_.cv_.SignalAll();
    // Not under mu_: a token that already fired runs the callback right here,
    // and the callback takes mu_ (lock order: the token's, then mu_).
    on_cancel_.emplace(cancel, [this] { MarkCancelled(); });
  }
  ~FlightGuard() {
    if (!done_) Finish();
  }
  FlightGuard(const FlightGuard&) = delete;
  FlightGuard& operator=(const FlightGuard&) = delete;

  /// Unregisters; returns how the watchdog saw the request end.
  Flight Finish() {
    on_cancel_.reset();  // waits for a callback running on another thread
    util::MutexLock lock(target_.mu_);
    done_ = true;
    auto node = target_.flights_.extract(id_);
    return node.empty() ? Flight{} : std::move(node.mapped());
  }

 private:
  /// The token fired: the watchdog shuts the socket down (and repeats it
  /// until the request is gone).
  void MarkCancelled() {
    {
      util::MutexLock lock(target_.mu_);
      auto it = target_.flights_.find(id_);
      if (it == target_.flights_.end()) return;
      it->second.cancelled = true;
    }
    target_.cv_.SignalAll();
  }

  WebhookTarget& target_;
  uint64_t id_ = 0;
  bool done_ = false;
  std::optional<util::CancelToken::Registration> on_cancel_;
};

WebhookTarget::WebhookTarget(config::Webhook webhook, Resolved resolved, std::string user_agent)
    : webhook_(std::move(webhook)),
      resolved_(std::move(resolved)),
      origin_(webhook_.url.origin()),
      user_agent_(std::move(user_agent)),
      redact_(SecretsToRedact(resolved_.headers, resolved_.secrets)) {
  watchdog_ = std::thread([this] { Watch(); });
}

WebhookTarget::~WebhookTarget() {
  {
    util::MutexLock lock(mu_);
    shutdown_ = true;
  }
  cv_.SignalAll();
  watchdog_.join();
}

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

std::shared_ptr<httplib::Client> WebhookTarget::TakeClient() {
  {
    util::MutexLock lock(mu_);
    if (!idle_.empty()) {
      auto client = std::move(idle_.back());
      idle_.pop_back();
      return client;
    }
  }
  auto client = std::make_shared<httplib::Client>(origin_);
  auto timeout = webhook_.timeout;
  client->set_connection_timeout(timeout);
  client->set_read_timeout(timeout);
  client->set_write_timeout(timeout);
  client->set_keep_alive(true);
  // Small JSON posts on a kept-alive connection otherwise stall ~40 ms on
  // Nagle + delayed ACK.
  client->set_tcp_nodelay(true);
  // A redirect would re-send a signed event to a URL nobody configured.
  client->set_follow_location(false);
  // A gzip body of a few KB can inflate to gigabytes; we only ever read the
  // first bytes of a response, so keep them as sent. (httplib 0.11 sends no
  // Accept-Encoding, so a receiver has no reason to compress.)
  client->set_decompress(false);
  if (webhook_.url.https()) {
    client->enable_server_certificate_verification(webhook_.tls_verify);
    if (webhook_.ca_file) client->set_ca_cert_path(*webhook_.ca_file);
  }
  return client;
}

void WebhookTarget::ReturnClient(std::shared_ptr<httplib::Client> client) {
  util::MutexLock lock(mu_);
  // A pool as large as the target's concurrency is enough; drop extras.
  if (idle_.size() < static_cast<size_t>(std::max(webhook_.concurrency, 1))) {
    idle_.push_back(std::move(client));
  }
}

size_t WebhookTarget::InFlightCount() const {
  util::MutexLock lock(mu_);
  return flights_.size();
}

void WebhookTarget::Watch() {
  mu_.Lock();  // not a MutexLock: released around stop() below
  while (!shutdown_) {
    auto now = Steady::now();
    auto next = now + std::chrono::hours(1);
    std::vector<std::shared_ptr<httplib::Client>> to_stop;
    for (auto& [id, flight] : flights_) {
      if (!flight.cancelled && now >= flight.deadline) flight.expired = true;
      if (flight.cancelled || flight.expired) {
        to_stop.push_back(flight.client);
        next = std::min(next, now + kRestopInterval);
      } else {
        next = std::min(next, flight.deadline);
      }
    }
    if (!to_stop.empty()) {
      // stop() takes httplib's socket mutex, which a connecting request holds:
      // never call it under mu_. The shared_ptr keeps each client alive.
      mu_.Unlock();
      // Shuts the socket down under httplib's socket mutex: the request in
      // flight fails at once with a read/write error.
      for (auto& client : to_stop) client->stop();
      to_stop.clear();
      mu_.Lock();
    }
    cv_.WaitUntil(mu_, next);
  }
  mu_.Unlock();
}

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
    // httplib may throw (e.g. std::bad_alloc, regex); never let it reach the worker loop.
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
  httplib::Request req;
  req.method = "POST";
  req.path = webhook_.url.target();
  for (const auto& [name, value] : headers) req.headers.emplace(name, value);
  req.headers.emplace("Content-Type", "application/json");
  // What Client::Post does with a content provider, plus a response body
  // receiver (Post has none): httplib hands out slices of the stored payload,
  // so the body is never copied into the request.
  req.content_length_ = body.size();
  req.is_chunked_content_provider_ = false;
  req.content_provider_ = [this, &body](size_t offset, size_t length, httplib::DataSink& sink) {
    if (body_fault_) body_fault_();
    constexpr size_t kSlice = 1 << 20;
    return sink.write(body.data() + offset, std::min({length, kSlice, body.size() - offset}));
  };
  std::string received;
  bool capped = false;
  req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
    size_t room = kMaxResponseBodyBytes - received.size();
    received.append(data, std::min(n, room));
    // Returning false stops httplib reading: the rest is never received.
    if (n >= room) capped = true;
    return !capped;
  };

  auto client = TakeClient();
  httplib::Response res;
  httplib::Error err = httplib::Error::Success;
  const bool trace = HttpTraceOn();  // http_trace.h: nothing is built otherwise
  const Steady::time_point started = trace ? Steady::now() : Steady::time_point();
  FlightGuard guard(*this, client, Steady::now() + webhook_.timeout, cancel);
  // A token that fired since Deliver looked marked the flight cancelled
  // already: nothing is sent.
  bool ok = !cancel.cancelled() && client->send(req, res, err);
  Flight flight = guard.Finish();
  // Why no answer was read ("" when one was).
  const std::string failed = flight.cancelled ? "abandoned: shutting down"
                             : flight.expired ? "timed out"
                             : !ok && !capped ? httplib::to_string(err)
                                              : "";
  if (trace) TraceAttempt(req.path, headers, body.size(), failed, res.status, started);

  if (flight.cancelled) {
    out.cancelled = true;
    out.error = "POST " + origin_ + " abandoned: shutting down";
    return out;
  }
  if (flight.expired) {
    out.error = "POST " + origin_ + " timed out: no complete response within " +
                std::to_string(webhook_.timeout.count()) +
                " ms (the webhook's timeout, for the whole attempt; raise it if the receiver "
                "is slow but alive)";
    return out;
  }
  if (!ok && !capped) {
    // Timeouts, refused connections, TLS failures: the contract retries all
    // of them. The connection is dropped rather than pooled.
    out.error = "POST " + origin_ + " failed: " + failed + TransportHint(err);
    return out;
  }
  out.http_status = res.status;
  out.kind = ClassifyStatus(res.status);
  if (out.kind != OutcomeKind::kSuccess) {
    out.error = "HTTP " + std::to_string(res.status);
    if (res.status >= 300 && res.status < 400) {
      out.error += " redirect (not followed: configure the final URL)";
    }
    if (!received.empty()) out.error += ": " + RedactedExcerpt(received, redact, capped);
    if (res.has_header("Retry-After")) {
      out.retry_after = ParseRetryAfter(res.get_header_value("Retry-After"), std::chrono::system_clock::now());
    }
  }
  // A capped response left unread bytes on the connection; httplib closed it.
  ReturnClient(std::move(client));
  return out;
}

}  // namespace mailhook::delivery
