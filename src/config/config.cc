// Small pieces of config.h that are not the loader: durations, defaults and
// error formatting.
#include "config/config.h"
#include "util/strings.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <charconv>

namespace mailhook::config {

bool IsLoopbackHost(std::string_view host) {
  std::string h = util::Lower(host);
  if (!h.empty() && h.back() == '.') h.pop_back();
  if (h == "localhost") return true;
  unsigned char addr[16] = {};
  if (inet_pton(AF_INET, h.c_str(), addr) == 1) return addr[0] == 127;
  static const unsigned char kLoopback6[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  return inet_pton(AF_INET6, h.c_str(), addr) == 1 && std::equal(addr, addr + 16, kLoopback6);
}

std::string ConfigError::ToString() const {
  // The GCC/compiler layout, so editors and CI annotators can jump to it.
  std::string out = file;
  if (line > 0) {
    out += ":" + std::to_string(line);
    if (column > 0) out += ":" + std::to_string(column);
  }
  return out + ": " + message;
}

std::optional<Duration> ParseDuration(const std::string& text) {
  // A sequence of <digits><unit>, units ms|s|m|h, largest first is not
  // enforced ("90s" is fine). A bare number has no unit and is rejected: "30"
  // could mean seconds or milliseconds, and guessing wrong is a silent bug.
  if (text.empty()) return std::nullopt;
  using std::chrono::hours;
  using std::chrono::milliseconds;
  using std::chrono::minutes;
  using std::chrono::seconds;
  Duration total{0};
  const char* p = text.data();
  const char* end = p + text.size();
  while (p < end) {
    uint64_t n = 0;
    auto [next, ec] = std::from_chars(p, end, n);
    if (ec != std::errc() || next == p) return std::nullopt;
    p = next;
    Duration unit;
    if (end - p >= 2 && p[0] == 'm' && p[1] == 's') {
      unit = milliseconds(1);
      p += 2;
    } else if (p < end && *p == 's') {
      unit = seconds(1);
      ++p;
    } else if (p < end && *p == 'm') {
      unit = minutes(1);
      ++p;
    } else if (p < end && *p == 'h') {
      unit = hours(1);
      ++p;
    } else {
      return std::nullopt;
    }
    // Ten years is far beyond any sane timeout and keeps the sum from overflowing.
    if (n > 10ull * 365 * 24 * 3600 * 1000 / static_cast<uint64_t>(unit.count())) return std::nullopt;
    total += unit * static_cast<int64_t>(n);
  }
  return total;
}

std::vector<std::string> InsecureSettings(const Config& config) {
  std::vector<std::string> out;
  for (const auto& a : config.accounts) {
    const std::string where = "account " + a.name + ": ";
    if (a.tls == TlsMode::kNone) out.push_back(where + "tls: none (the password and mail cross the network in clear)");
    if (!a.tls_verify) {
      out.push_back(where + "tls_verify: false (any certificate is accepted; the password can be intercepted)");
    }
    if (a.oauth2 && !a.oauth2->token_url.https() && !a.oauth2->token_url.is_loopback()) {
      out.push_back(where + "oauth2.token_url is plain http:// (the refresh token crosses the network in clear)");
    }
  }
  for (const auto& w : config.webhooks) {
    if (!w.tls_verify) {
      out.push_back("webhook " + w.name +
                    ": tls_verify: false (any certificate is accepted; events and the signature can be "
                    "intercepted)");
    }
  }
  for (const auto& t : config.smtp) {
    const std::string where = "smtp " + t.name + ": ";
    if (t.tls == TlsMode::kNone) out.push_back(where + "tls: none (the password and mail cross the network in clear)");
    if (!t.tls_verify) {
      out.push_back(where + "tls_verify: false (any certificate is accepted; the password can be intercepted)");
    }
    if (t.oauth2 && !t.oauth2->token_url.https() && !t.oauth2->token_url.is_loopback()) {
      out.push_back(where + "oauth2.token_url is plain http:// (the refresh token crosses the network in clear)");
    }
  }
  return out;
}

std::vector<Duration> DefaultRetrySchedule() {
  using std::chrono::hours;
  using std::chrono::minutes;
  using std::chrono::seconds;
  return {seconds(5), minutes(5), minutes(30), hours(2), hours(5), hours(10), hours(14), hours(20), hours(24)};
}

}  // namespace mailhook::config
