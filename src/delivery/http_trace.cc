#include "delivery/http_trace.h"

#include <algorithm>
#include <cctype>

#include "util/known_secrets.h"
#include "util/log.h"

namespace mailhook::delivery {
namespace {

bool Traceable(std::string_view name) {
  for (std::string_view ok : kTraceableHeaders) {
    if (ok.size() == name.size() && std::equal(ok.begin(), ok.end(), name.begin(), [](char a, char b) {
          return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
        })) {
      return true;
    }
  }
  return false;
}

// A value shown in a key="..." field: printable, no quotes, bounded.
std::string Shown(std::string_view in, size_t max_len = 200) {
  std::string out(in.substr(0, max_len));
  for (char& c : out) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) c = '?';
    if (c == '"' || c == '\\') c = '\'';
  }
  return out;
}

}  // namespace

bool HttpTraceOn() { return util::Log(util::Area::kDelivery).should_log(spdlog::level::trace); }

std::string TraceableUrl(const std::string& origin, std::string_view path) {
  const size_t query = path.find_first_of("?#");
  std::string out = origin + std::string(path.substr(0, query));
  if (query != std::string_view::npos) out += "?<redacted>";
  return out;
}

void TraceHttpRequest(const HttpTraceLine& line) {
  spdlog::logger& log = util::Log(util::Area::kDelivery);
  if (!log.should_log(spdlog::level::trace)) return;
  std::string headers;
  if (line.headers) {
    for (const auto& [name, value] : *line.headers) {
      if (!headers.empty()) headers += ", ";
      headers += name + ": " + (Traceable(name) ? value : std::string("<redacted>"));
    }
  }
  // The allowlist shows only values mailhook made; known secrets are cut
  // all the same, should one ever be configured into a URL path.
  const std::string url = util::RedactKnownSecrets(TraceableUrl(line.origin, line.path));
  headers = util::RedactKnownSecrets(headers);
  const std::string status = line.status ? std::to_string(*line.status) : std::string("-");
  if (line.error.empty()) {
    log.trace("http.request target={} method={} url={} status={} ms={} bytes={} headers=\"{}\"", line.target,
              line.method, Shown(url, 400), status, line.elapsed.count(), line.body_bytes, Shown(headers, 1000));
  } else {
    log.trace("http.request target={} method={} url={} status={} ms={} bytes={} headers=\"{}\" error=\"{}\"",
              line.target, line.method, Shown(url, 400), status, line.elapsed.count(), line.body_bytes,
              Shown(headers, 1000), Shown(util::RedactKnownSecrets(line.error)));
  }
}

}  // namespace mailhook::delivery
