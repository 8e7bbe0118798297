#include "delivery/webhook_target.h"

#include <httplib.h>

#include <algorithm>
#include <cctype>

#include "delivery/signing.h"
#include "util/log.h"

namespace mailhook::delivery {
namespace {

using util::Error;
using util::Result;
using util::RetryClass;

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// Headers we set ourselves; a config header of the same name would either
// duplicate them or forge the signature, so it is dropped (with a warning).
bool IsReserved(const std::string& name) {
  static const std::set<std::string> kReserved = {
      "content-type", "content-length", "user-agent", "host",
      "webhook-id",   "webhook-timestamp", "webhook-signature", "connection"};
  return kReserved.count(Lower(name)) > 0;
}

// Receivers put useful hints in error bodies; a short printable excerpt is
// enough for the log and the dead-letter record.
std::string Excerpt(const std::string& body) {
  std::string out;
  for (char c : body.substr(0, 200)) {
    out += (static_cast<unsigned char>(c) < 0x20) ? ' ' : c;
  }
  return out;
}

}  // namespace

Result<ParsedUrl> ParseUrl(const std::string& url) {
  ParsedUrl out;
  std::string rest;
  if (url.rfind("https://", 0) == 0) {
    out.https = true;
    rest = url.substr(8);
  } else if (url.rfind("http://", 0) == 0) {
    rest = url.substr(7);
  } else {
    return Error("webhook.url", RetryClass::kNeedsOperator,
                 "webhook url must start with http:// or https://");
  }
  size_t slash = rest.find_first_of("/?#");
  std::string authority = rest.substr(0, slash);
  out.path = slash == std::string::npos ? "/" : rest.substr(slash);
  if (auto hash = out.path.find('#'); hash != std::string::npos) out.path.resize(hash);
  if (out.path.empty() || out.path[0] != '/') out.path = "/" + out.path;
  if (authority.empty() || authority.find('@') != std::string::npos) {
    return Error("webhook.url", RetryClass::kNeedsOperator,
                 "webhook url needs a host and no user:password@ part (use headers: for "
                 "credentials)");
  }
  out.origin = (out.https ? "https://" : "http://") + authority;
  return out;
}

WebhookTarget::WebhookTarget(config::Webhook webhook, ParsedUrl url, std::string user_agent)
    : webhook_(std::move(webhook)), url_(std::move(url)), user_agent_(std::move(user_agent)) {}

WebhookTarget::~WebhookTarget() = default;

Result<std::unique_ptr<WebhookTarget>> WebhookTarget::Create(const config::Webhook& webhook,
                                                             const std::string& version) {
  auto url = ParseUrl(webhook.url);
  if (!url.ok()) {
    return Error(url.error().code(), url.error().retry(),
                 "webhooks." + webhook.name + ": " + url.error().message());
  }
  for (const auto& secret : webhook.secrets) {
    if (auto key = DecodeSecret(secret); !key.ok()) {
      return Error(key.error().code(), key.error().retry(),
                   "webhooks." + webhook.name + ": " + key.error().message());
    }
  }
  for (const auto& [name, value] : webhook.headers) {
    if (IsReserved(name)) {
      util::Logger("delivery")
          ->warn("delivery.header_ignored webhook={} header={} cause=reserved", webhook.name,
                 name);
    }
  }
  return std::unique_ptr<WebhookTarget>(
      new WebhookTarget(webhook, std::move(url).value(), "mailhook/" + version));
}

std::unique_ptr<httplib::Client> WebhookTarget::TakeClient() {
  {
    std::lock_guard lock(mu_);
    if (!idle_.empty()) {
      auto client = std::move(idle_.back());
      idle_.pop_back();
      return client;
    }
  }
  auto client = std::make_unique<httplib::Client>(url_.origin);
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
  if (url_.https) {
    client->enable_server_certificate_verification(webhook_.tls_verify);
    if (webhook_.ca_file) client->set_ca_cert_path(*webhook_.ca_file);
  }
  return client;
}

void WebhookTarget::ReturnClient(std::unique_ptr<httplib::Client> client) {
  std::lock_guard lock(mu_);
  // A pool as large as the worker count is enough; drop extras.
  if (idle_.size() < 8) idle_.push_back(std::move(client));
}

void WebhookTarget::Cancel() {
  std::lock_guard lock(mu_);
  for (auto* client : in_flight_) {
    cancelled_.insert(client);
    // Shuts the socket down under httplib's socket mutex: the request in
    // flight fails at once with a read/write error.
    client->stop();
  }
}

Outcome WebhookTarget::Deliver(const store::Delivery& delivery) {
  Outcome out;
  try {
    const auto& event_id = delivery.item.event_id;
    const auto& body = delivery.item.payload;
    int64_t timestamp = std::chrono::duration_cast<std::chrono::seconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
    httplib::Headers headers;
    for (const auto& [name, value] : webhook_.headers) {
      if (!IsReserved(name)) headers.emplace(name, value.reveal());
    }
    headers.emplace("User-Agent", user_agent_);
    headers.emplace("webhook-id", event_id);
    headers.emplace("webhook-timestamp", std::to_string(timestamp));
    if (!webhook_.secrets.empty()) {
      auto sig = SignatureHeader(webhook_.secrets, event_id, timestamp, body);
      if (!sig.ok()) {
        out.kind = OutcomeKind::kPermanent;
        out.error = sig.error().message();
        return out;
      }
      headers.emplace("webhook-signature", *sig);
    }

    auto client = TakeClient();
    httplib::Client* raw = client.get();
    {
      std::lock_guard lock(mu_);
      in_flight_.insert(raw);
    }
    // A content provider hands httplib slices of the stored payload: the
    // string overload would copy the whole body into the request first.
    auto res = client->Post(
        url_.path, headers, body.size(),
        [&body](size_t offset, size_t length, httplib::DataSink& sink) {
          constexpr size_t kSlice = 1 << 20;
          return sink.write(body.data() + offset, std::min({length, kSlice, body.size() - offset}));
        },
        "application/json");
    bool cancelled = false;
    {
      std::lock_guard lock(mu_);
      in_flight_.erase(raw);
      cancelled = cancelled_.erase(raw) > 0;
    }
    if (!res) {
      // Timeouts, refused connections, TLS failures: the contract retries all
      // of them. The connection is dropped rather than pooled.
      out.kind = OutcomeKind::kRetry;
      out.cancelled = cancelled;
      auto err = res.error();
      out.error = "POST " + url_.origin + " failed: " + httplib::to_string(err);
      if (err == httplib::Error::SSLServerVerification) {
        out.error += " (server certificate not trusted or wrong host name; set ca_file for a "
                     "private CA)";
      } else if (err == httplib::Error::Connection) {
        out.error += " (is the receiver running and reachable?)";
      }
      return out;
    }
    out.http_status = res->status;
    out.kind = ClassifyStatus(res->status);
    if (out.kind != OutcomeKind::kSuccess) {
      out.error = "HTTP " + std::to_string(res->status);
      if (res->status >= 300 && res->status < 400) {
        out.error += " redirect (not followed: configure the final URL)";
      }
      if (!res->body.empty()) out.error += ": " + Excerpt(res->body);
      if (res->has_header("Retry-After")) {
        out.retry_after =
            ParseRetryAfter(res->get_header_value("Retry-After"), std::chrono::system_clock::now());
      }
    }
    if (!cancelled) ReturnClient(std::move(client));
  } catch (const std::exception& e) {
    // httplib may throw (e.g. std::bad_alloc, regex); never let it reach the worker loop.
    out.kind = OutcomeKind::kRetry;
    out.error = std::string("internal error: ") + e.what();
  }
  return out;
}

}  // namespace mailhook::delivery
