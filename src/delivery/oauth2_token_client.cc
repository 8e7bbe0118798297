#include "delivery/oauth2_token_client.h"

#include <poll.h>

#include <climits>
#include <cstdint>
#include <nlohmann/json.hpp>

#include "delivery/http_trace.h"
#include "delivery/webhook_target.h"
#include "http/client.h"
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

/// The request's trace line (http_trace.h): `status`, else `error`.
void TraceTokenRequest(const TokenRequest& r, const http::ClientRequest& req, std::optional<int> status,
                       const std::string& error, std::chrono::steady_clock::time_point started) {
  HttpTraceLine line;
  line.target = "oauth2:" + r.account;
  line.method = "POST";
  line.origin = r.token_url.origin();
  line.path = req.target;
  line.headers = &req.headers;
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
  http::ClientOrigin origin = http::ClientOrigin::Of(url);
  origin.ca_file = r.ca_file;  // always verified: no opt-out (owner) to offer
  http::ClientRequest req;
  req.target = url.target();
  // One request per connection: Connection: close lets the endpoint free it at once.
  req.headers = {{"Accept", "application/json"},
                 {"Content-Type", "application/x-www-form-urlencoded"},
                 {"User-Agent", "mailhook"},
                 {"Connection", "close"}};
  const std::string body = FormBody(r);
  req.body = body;
  // Redirects are not followed: the refresh token is never re-sent elsewhere.
  const auto started = std::chrono::steady_clock::now();
  const auto deadline = started + r.timeout;
  util::Result<http::ClientResponse> res = Error("oauth2.token_request", RetryClass::kBackoff, "not sent");
  try {
    auto connection = http::ClientConnection::Open(origin, deadline, r.stop_fd);
    res = connection ? (*connection)->Exchange(req, deadline, r.stop_fd, kMaxTokenResponseBytes)
                     : util::Result<http::ClientResponse>(connection.error());
  } catch (const std::exception& e) {  // out of memory: the account's session retries
    res = Error("oauth2.token_request", RetryClass::kBackoff, std::string("internal error: ") + e.what());
  }
  if (HttpTraceOn()) {
    TraceTokenRequest(r, req, res ? std::optional<int>(res->status) : std::nullopt, res ? "" : res.error().message(),
                      started);
  }
  if (!res && res.error().code() == "http.stopped") return stopped();
  if (res && res->body_capped) {
    return Error("oauth2.token_request", RetryClass::kBackoff,
                 Where(r) + " sent more than " + std::to_string(kMaxTokenResponseBytes) +
                     " bytes; not a token answer. Check token_url");
  }
  if (!res) {
    return Error("oauth2.token_request", RetryClass::kBackoff,
                 "no answer from " + Where(r) + ": " + res.error().message() + "; retried with backoff");
  }
  if (res->status != 200) return ErrorAnswer(r, res->status, res->body, false);
  return GrantFrom(r, res->body);
}

}  // namespace mailhook::delivery
