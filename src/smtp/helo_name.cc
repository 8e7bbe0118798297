#include "smtp/helo_name.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>

#include "util/strings.h"

namespace mailhook::smtp {
namespace {

/// A dotted LDH name (RFC 1123 §2.1): labels of 1-63 letters, digits and
/// hyphens, no hyphen at either end, at most 253 bytes, a top label that is
/// not all digits (so no IPv4 address passes), and not a localhost name.
bool UsableName(std::string_view name) {
  if (name.empty() || name.size() > 253 || name.find('.') == std::string_view::npos) return false;
  const std::string lower = util::Lower(name);
  if (lower == "localhost" || lower.starts_with("localhost.") || lower.ends_with(".localdomain") ||
      lower.ends_with(".localhost"))
    return false;
  size_t at = 0;
  std::string_view label;
  while (at <= name.size()) {
    size_t dot = name.find('.', at);
    if (dot == std::string_view::npos) dot = name.size();
    label = name.substr(at, dot - at);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') return false;
    for (char c : label) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-') return false;
    }
    at = dot + 1;
  }
  return !std::all_of(label.begin(), label.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::string LookUpFqdn() {
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0) return "";
  if (UsableName(host)) return host;
  addrinfo hints{};
  hints.ai_flags = AI_CANONNAME;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (getaddrinfo(host, nullptr, &hints, &res) != 0) return "";
  std::string canon = res && res->ai_canonname && UsableName(res->ai_canonname) ? res->ai_canonname : "";
  freeaddrinfo(res);
  return canon;
}

}  // namespace

std::string ChooseHeloName(std::string_view host_fqdn) {
  return UsableName(host_fqdn) ? std::string(host_fqdn) : std::string();
}

const std::string& HostFqdn() {
  static const std::string fqdn = LookUpFqdn();
  return fqdn;
}

std::string HeloName() { return ChooseHeloName(HostFqdn()); }

std::string LocalAddressLiteral(int fd) {
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  if (fd < 0 || getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return "";
  char text[INET6_ADDRSTRLEN] = {};
  if (addr.ss_family == AF_INET) {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(&addr);
    if (!inet_ntop(AF_INET, &v4->sin_addr, text, sizeof text)) return "";
    return "[" + std::string(text) + "]";
  }
  if (addr.ss_family == AF_INET6) {
    const auto* v6 = reinterpret_cast<const sockaddr_in6*>(&addr);
    if (IN6_IS_ADDR_V4MAPPED(&v6->sin6_addr)) {
      if (!inet_ntop(AF_INET, &v6->sin6_addr.s6_addr[12], text, sizeof text)) return "";
      return "[" + std::string(text) + "]";
    }
    if (!inet_ntop(AF_INET6, &v6->sin6_addr, text, sizeof text)) return "";
    return "[IPv6:" + std::string(text) + "]";  // RFC 5321 §4.1.3
  }
  return "";
}

}  // namespace mailhook::smtp
