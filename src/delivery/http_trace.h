#pragma once
/// The protocol trace of an HTTP request (log level trace, STYLE.md), in the
/// same shape for every HTTP client of mailhook (webhooks, the OAuth2 token
/// request):
///   http.request target=tickets method=POST url=https://h:443/hook status=200 ms=12 bytes=2048
///     headers="Content-Type: application/json, webhook-id: msg_..., Authorization: <redacted>"
/// Never a body, never a header value outside kTraceableHeaders (Authorization,
/// signatures and every configured header are shown as <redacted>), and the
/// URL without its query (tokens travel there) or user info.

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mailhook::delivery {

/// Headers whose values are shown in a trace (compared case-insensitively):
/// what mailhook itself puts there, none of it secret.
inline constexpr std::string_view kTraceableHeaders[] = {"Content-Type", "Content-Length", "User-Agent", "webhook-id",
                                                         "webhook-timestamp"};

/// True when the delivery logger is at trace: check it before building
/// anything for TraceHttpRequest, so the trace costs nothing otherwise.
bool HttpTraceOn();

/// What one request did, for its trace line.
struct HttpTraceLine {
  std::string target;  ///< the webhook's name
  std::string method;
  std::string origin;  ///< scheme://host:port
  std::string path;    ///< the request target; its query is not shown
  const std::vector<std::pair<std::string, std::string>>* headers = nullptr;
  size_t body_bytes = 0;
  std::optional<int> status;  ///< nullopt: no response (error says why)
  std::string error;
  std::chrono::milliseconds elapsed{0};
};

/// Logs `line` at trace as `http.request ...` (see above).
void TraceHttpRequest(const HttpTraceLine& line);

/// `origin` + `path` without query and fragment ("?<redacted>" when there was one).
std::string TraceableUrl(const std::string& origin, std::string_view path);

}  // namespace mailhook::delivery
