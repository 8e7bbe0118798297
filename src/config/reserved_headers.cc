#include "config/reserved_headers.h"
#include "util/strings.h"

#include <algorithm>
#include <cctype>

namespace mailhook::config {

bool IsReservedHeader(std::string_view name) {
  // A user value would forge or break the signature (webhook-*), the body's
  // framing or the connection's (content-*, host, connection and the other
  // hop-by-hop fields) or who we say we are (user-agent).
  static constexpr std::string_view kReserved[] = {
      "webhook-id", "webhook-timestamp", "webhook-signature", "content-type", "content-length", "host",
      "user-agent", "connection",        "transfer-encoding", "te",           "trailer",        "upgrade",
      "expect",     "keep-alive"};
  return std::any_of(std::begin(kReserved), std::end(kReserved),
                     [&](std::string_view r) { return util::EqualsIgnoreCase(r, name); });
}

}  // namespace mailhook::config
