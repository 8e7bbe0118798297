#include "config/http_url.h"

#include <arpa/inet.h>

#include <cctype>

#include "config/config.h"
#include "util/strings.h"

namespace mailhook::config {
namespace {

util::Error UrlError(const std::string& what) {
  return util::Error("config.url", util::RetryClass::kNeedsOperator,
                     what + "; write e.g. https://tickets.internal/hooks/email");
}

// Splits "host[:port]" / "[v6][:port]" into the URL; an error names the fix.
util::Status ParseAuthority(std::string_view authority, std::string& host, uint16_t& port) {
  std::string_view port_text;
  if (authority.starts_with('[')) {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return UrlError("the url has an IPv6 host without its closing ']'");
    host = util::Lower(authority.substr(1, close - 1));
    in6_addr addr{};
    if (inet_pton(AF_INET6, host.c_str(), &addr) != 1) return UrlError("the url's [IPv6] host is not an IPv6 address");
    std::string_view after = authority.substr(close + 1);
    if (!after.empty() && !after.starts_with(':')) return UrlError("the url has characters after its [IPv6] host");
    if (!after.empty()) port_text = after.substr(1);
    if (after == ":") return UrlError("the url ends its host with ':' but gives no port");
  } else {
    size_t colon = authority.find(':');
    if (colon != std::string_view::npos && authority.find(':', colon + 1) != std::string_view::npos) {
      return UrlError("the url's host looks like an IPv6 address; put it in brackets, e.g. http://[::1]:8080/");
    }
    host = util::Lower(authority.substr(0, colon));
    if (colon != std::string_view::npos) {
      port_text = authority.substr(colon + 1);
      if (port_text.empty()) return UrlError("the url ends its host with ':' but gives no port");
    }
  }
  if (host.empty()) return UrlError("the url has no host");
  if (port_text.empty()) return util::Ok();
  uint32_t value = 0;
  for (char c : port_text) {
    if (c < '0' || c > '9' || value > 65535) return UrlError("the url's port is not a number from 1 to 65535");
    value = value * 10 + static_cast<uint32_t>(c - '0');
  }
  if (value == 0 || value > 65535) return UrlError("the url's port is not a number from 1 to 65535");
  port = static_cast<uint16_t>(value);
  return util::Ok();
}

}  // namespace

util::Result<HttpUrl> HttpUrl::Parse(std::string_view text) {
  for (char c : text) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) {
      return UrlError("the url contains a space or control character; percent-encode it (%20)");
    }
  }
  HttpUrl url;
  size_t scheme_end = text.find("://");
  std::string scheme = scheme_end == std::string_view::npos ? "" : util::Lower(text.substr(0, scheme_end));
  if (scheme != "http" && scheme != "https") return UrlError("the url must start with http:// or https://");
  url.https_ = scheme == "https";
  url.port_ = url.https_ ? 443 : 80;
  std::string_view rest = text.substr(scheme_end + 3);
  size_t end = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, end);
  if (authority.find('@') != std::string_view::npos) {
    return UrlError(
        "the url has a user:password@ part, which would end up in logs; remove it and "
        "send credentials with headers: (e.g. Authorization)");
  }
  if (auto st = ParseAuthority(authority, url.host_, url.port_); !st.ok()) return st.error();
  std::string_view target = end == std::string_view::npos ? "" : rest.substr(end);
  target = target.substr(0, target.find('#'));
  url.target_ = target.starts_with('/') ? std::string(target) : "/" + std::string(target);
  return url;
}

std::string HttpUrl::origin() const {
  bool v6 = host_.find(':') != std::string::npos;
  return std::string(https_ ? "https://" : "http://") + (v6 ? "[" + host_ + "]" : host_) + ":" + std::to_string(port_);
}

bool HttpUrl::is_loopback() const { return IsLoopbackHost(host_); }

}  // namespace mailhook::config
