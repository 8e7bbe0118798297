#include "delivery/oauth2_token_client.h"

#include <httplib.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <thread>

#include "delivery/http_trace.h"
#include "delivery/webhook_target.h"
#include "util/log.h"

namespace mailhook::delivery {
namespace {

using util::Error;
using util::RetryClass;

// A positive expires_in, cut to kMaxExpiresIn (a huge one would overflow the
// steady clock when the renewal time is computed).
std::optional<std::chrono::seconds> Lifetime(int64_t n) {
  if (n <= 0) return std::nullopt;
  return std::chrono::seconds(std::min<int64_t>(n, kMaxExpiresIn.count()));
}

bool Readable(int fd, int timeout_ms) {
  pollfd p{fd, POLLIN, 0};
  return poll(&p, 1, timeout_ms) > 0;
}

/// Ends `client`'s request when `stop_fd` fires: stop() shuts its socket, and
/// is repeated every 50 ms because one that lands before httplib took the
/// socket is a no-op. Nothing when stop_fd is -1.
class StopWatch {
 public:
  StopWatch(httplib::Client& client, int stop_fd) {
    if (stop_fd < 0) return;
    done_ = eventfd(0, EFD_CLOEXEC);
    if (done_ < 0) return;  // no watch: the request still ends by its timeouts
    thread_ = std::thread([this, &client, stop_fd] {
      pollfd fds[2] = {{stop_fd, POLLIN, 0}, {done_, POLLIN, 0}};
      while (poll(fds, 2, -1) < 0 && errno == EINTR) {
      }
      if (fds[1].revents != 0) return;
      stopped_ = true;
      do client.stop();
      while (!Readable(done_, 50));
    });
  }
  ~StopWatch() {
    if (done_ < 0) return;
    const uint64_t one = 1;
    ssize_t n = write(done_, &one, sizeof one);
    (void)n;
    if (thread_.joinable()) thread_.join();
    close(done_);
  }
  StopWatch(const StopWatch&) = delete;
  StopWatch& operator=(const StopWatch&) = delete;
  bool stopped() const { return stopped_; }

 private:
  int done_ = -1;
  std::atomic<bool> stopped_{false};
  std::thread thread_;
};

std::string FormBody(const TokenRequest& r) {
  std::string body = "grant_type=refresh_token&refresh_token=" + FormEncode(r.refresh_token.reveal()) +
                     "&client_id=" + FormEncode(r.client_id);
  if (!r.client_secret.empty()) body += "&client_secret=" + FormEncode(r.client_secret.reveal());
  if (!r.scope.empty()) body += "&scope=" + FormEncode(r.scope);
  return body;
}

std::string Where(const TokenRequest& r) {
  return "the token endpoint " + r.token_url.origin() + " (account \"" + r.account + "\")";
}

// An error answer (RFC 6749 §5.2: {"error": "...", "error_description": "..."}).
Error ErrorAnswer(const TokenRequest& r, int status, const std::string& body, bool capped) {
  std::string code, description;
  try {
    auto j = nlohmann::json::parse(body);
    if (j.is_object() && j.contains("error") && j["error"].is_string()) code = j["error"].get<std::string>();
    if (j.is_object() && j.contains("error_description") && j["error_description"].is_string()) {
      description = j["error_description"].get<std::string>();
    }
  } catch (const std::exception&) {
    description = body;  // not JSON: an excerpt
  }
  const std::vector<std::string> secrets = {r.refresh_token.reveal(), r.client_secret.reveal()};
  const std::string said = "HTTP " + std::to_string(status) + (code.empty() ? "" : " " + code) +
                           (description.empty() ? "" : ": " + RedactedExcerpt(description, secrets, capped, 200));
  if (code == "invalid_grant") {
    return Error("oauth2.invalid_grant", RetryClass::kNeedsOperator,
                 "the refresh token was refused by " + Where(r) + " (" + said +
                     "): it expired or was revoked (password change, consent withdrawn, unused for months). "
                     "Sign in again to get a new refresh token and put it in refresh_token_file "
                     "(or refresh_token / refresh_token_command); mailhook retries by itself");
  }
  if (status == 429 || status >= 500 || status < 400) {
    return Error("oauth2.token_request", RetryClass::kBackoff,
                 "no access token from " + Where(r) + " (" + said + "); retried with backoff");
  }
  return Error("oauth2.invalid_client", RetryClass::kNeedsOperator,
               "the token request was refused by " + Where(r) + " (" + said +
                   "). Check client_id, client_secret and scope against the app registration");
}

util::Result<TokenGrant> GrantFrom(const TokenRequest& r, const std::string& body) {
  auto bad = [&](const std::string& what) {
    return Error("oauth2.token_request", RetryClass::kBackoff,
                 Where(r) + " answered 200 without a usable token (" + what + "); retried with backoff");
  };
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(body);
  } catch (const std::exception&) {
    return bad("not JSON");
  }
  if (!j.is_object() || !j.contains("access_token") || !j["access_token"].is_string() ||
      j["access_token"].get<std::string>().empty()) {
    return bad("no access_token");
  }
  TokenGrant g;
  g.access_token = util::Secret(j["access_token"].get<std::string>());
  // Some servers send expires_in as a string ("3599").
  if (j.contains("expires_in")) {
    const auto& e = j["expires_in"];
    if (e.is_number_unsigned()) {
      g.expires_in = Lifetime(static_cast<int64_t>(std::min<uint64_t>(e.get<uint64_t>(), INT64_MAX)));
    } else if (e.is_number_integer()) {
      g.expires_in = Lifetime(e.get<int64_t>());
    }
    if (e.is_string()) {
      try {
        g.expires_in = Lifetime(std::stoll(e.get<std::string>()));
      } catch (const std::out_of_range&) {
        if (e.get<std::string>().find('-') == std::string::npos) g.expires_in = kMaxExpiresIn;
      } catch (const std::exception&) {
      }
    }
  }
  if (j.contains("refresh_token") && j["refresh_token"].is_string() && !j["refresh_token"].get<std::string>().empty()) {
    g.refresh_token = util::Secret(j["refresh_token"].get<std::string>());
  }
  return g;
}

}  // namespace

std::string FormEncode(const std::string& value) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : value) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

namespace {

/// Timeouts, no redirects (never re-send the refresh token elsewhere), TLS verified.
void Configure(httplib::Client& client, const TokenRequest& r) {
  client.set_connection_timeout(r.timeout);
  client.set_read_timeout(r.timeout);
  client.set_write_timeout(r.timeout);
  client.set_follow_location(false);
  client.set_decompress(false);
  if (r.token_url.https()) {
    client.enable_server_certificate_verification(true);
    if (r.ca_file) client.set_ca_cert_path(*r.ca_file);
  }
}

/// The request's trace line (http_trace.h): `status`, else `error`.
void TraceTokenRequest(const TokenRequest& r, const httplib::Request& req, std::optional<int> status,
                       const std::string& error, std::chrono::steady_clock::time_point started) {
  HttpTraceLine line;
  line.target = "oauth2:" + r.account;
  line.method = "POST";
  line.origin = r.token_url.origin();
  line.path = req.path;
  const std::vector<std::pair<std::string, std::string>> headers(req.headers.begin(), req.headers.end());
  line.headers = &headers;
  line.body_bytes = req.body.size();
  if (status) {
    line.status = *status;
  } else {
    line.error = error;
  }
  line.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
  TraceHttpRequest(line);
}

}  // namespace

util::Result<TokenGrant> RequestAccessToken(const TokenRequest& r) {
  const config::HttpUrl& url = r.token_url;
  if (url.empty()) return Error("oauth2.config", RetryClass::kNeedsOperator, "no token_url for " + r.account);
  if (!url.https() && !url.is_loopback() && !r.allow_insecure) {
    return Error("oauth2.insecure", RetryClass::kNeedsOperator,
                 "token_url of account \"" + r.account +
                     "\" is plain http:// to a host other than loopback, which sends the refresh token in clear "
                     "text; use https:// or set allow_insecure: true");
  }
  auto stopped = [&] {
    return Error("oauth2.stopped", RetryClass::kBackoff, "token request to " + Where(r) + " ended: stopping");
  };
  if (r.stop_fd >= 0 && Readable(r.stop_fd, 0)) return stopped();
  httplib::Client client(url.origin());
  Configure(client, r);
  httplib::Request req;
  req.method = "POST";
  req.path = url.target();
  req.headers.emplace("Accept", "application/json");
  req.headers.emplace("Content-Type", "application/x-www-form-urlencoded");
  req.body = FormBody(r);
  std::string received;
  bool capped = false;
  req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
    const size_t room = kMaxTokenResponseBytes - received.size();
    received.append(data, std::min(n, room));
    if (n >= room) capped = true;
    return !capped;  // false: httplib stops reading
  };
  httplib::Response res;
  httplib::Error err = httplib::Error::Success;
  bool ok = false;
  bool was_stopped = false;
  const auto started = std::chrono::steady_clock::now();
  {
    StopWatch watch(client, r.stop_fd);
    try {
      ok = client.send(req, res, err);
    } catch (const std::exception&) {  // httplib may throw (bad_alloc, regex)
      err = httplib::Error::Unknown;
    }
    was_stopped = watch.stopped();
  }
  if (HttpTraceOn()) {
    TraceTokenRequest(r, req, ok ? std::optional<int>(res.status) : std::nullopt,
                      was_stopped ? "stopped" : httplib::to_string(err), started);
  }
  if (was_stopped && !ok) return stopped();
  if (capped) {
    return Error("oauth2.token_request", RetryClass::kBackoff,
                 Where(r) + " sent more than " + std::to_string(kMaxTokenResponseBytes) +
                     " bytes; not a token answer. Check token_url");
  }
  if (!ok) {
    std::string hint = err == httplib::Error::SSLServerVerification
                           ? " (server certificate not trusted or wrong host name)"
                           : (err == httplib::Error::Connection ? " (is the host reachable?)" : "");
    return Error("oauth2.token_request", RetryClass::kBackoff,
                 "no answer from " + Where(r) + ": " + httplib::to_string(err) + hint + "; retried with backoff");
  }
  if (res.status != 200) return ErrorAnswer(r, res.status, received, capped);
  return GrantFrom(r, received);
}

}  // namespace mailhook::delivery
