#include "http/request_head.h"

#include "util/strings.h"

#include <algorithm>
#include <cctype>

namespace mailhook::http {
namespace {

using Kind = HeadParse::Kind;

HeadParse Fail(int status, std::string cause) {
  HeadParse p;
  p.kind = Kind::kError;
  p.status = status;
  p.cause = std::move(cause);
  return p;
}

// RFC 9110 §5.6.2 tchar.
bool IsToken(std::string_view s) {
  if (s.empty()) return false;
  return std::all_of(s.begin(), s.end(), [](unsigned char c) {
    return std::isalnum(c) || std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
  });
}

// RFC 9112 §3: method SP request-target SP HTTP-version.
bool ParseRequestLine(std::string_view line, RequestHead* head, HeadParse* error) {
  size_t sp1 = line.find(' ');
  size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos) {
    *error = Fail(400, "malformed request line");
    return false;
  }
  std::string_view method = line.substr(0, sp1);
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string_view version = line.substr(sp2 + 1);
  bool target_ok = !target.empty() &&
                   std::none_of(target.begin(), target.end(), [](unsigned char c) { return c <= 0x20 || c == 0x7f; });
  if (!IsToken(method) || !target_ok) {
    *error = Fail(400, "malformed request line");
    return false;
  }
  if (version != "HTTP/1.1" && version != "HTTP/1.0") {
    *error = version.substr(0, 5) == "HTTP/" ? Fail(505, "only HTTP/1.0 and HTTP/1.1 are served")
                                             : Fail(400, "malformed request line");
    return false;
  }
  head->method = std::string(method);
  head->target = std::string(target);
  head->path = std::string(target.substr(0, target.find('?')));
  head->http10 = version == "HTTP/1.0";
  head->keep_alive = !head->http10;
  return true;
}

// RFC 9112 §6.3: a Content-Length list must agree; anything else is an
// unrecoverable framing error (and a request-smuggling vector).
bool ApplyContentLength(std::string_view value, RequestHead* head, bool* seen) {
  size_t start = 0;
  while (start <= value.size()) {
    size_t comma = value.find(',', start);
    if (comma == std::string_view::npos) comma = value.size();
    std::string_view v = util::TrimOws(value.substr(start, comma - start));
    if (v.empty() || v.size() > 18 ||
        !std::all_of(v.begin(), v.end(), [](unsigned char c) { return std::isdigit(c); })) {
      return false;
    }
    uint64_t n = std::stoull(std::string(v));
    if (*seen && n != head->content_length) return false;
    head->content_length = n;
    *seen = true;
    start = comma + 1;
  }
  return true;
}

bool ParseField(std::string_view line, RequestHead* head, bool* length_seen, HeadParse* error) {
  if (line.front() == ' ' || line.front() == '\t') {
    *error = Fail(400, "obsolete line folding in header field");  // RFC 9112 §5.2
    return false;
  }
  size_t colon = line.find(':');
  if (colon == std::string_view::npos || !IsToken(line.substr(0, colon))) {
    *error = Fail(400, "malformed header field");  // no space before ':' (RFC 9112 §5.1)
    return false;
  }
  std::string_view value = util::TrimOws(line.substr(colon + 1));
  if (std::any_of(value.begin(), value.end(), [](char c) { return c == '\r' || c == '\0'; })) {
    *error = Fail(400, "control character in header field");
    return false;
  }
  std::string name = util::Lower(line.substr(0, colon));
  if (name == "content-length" && !ApplyContentLength(value, head, length_seen)) {
    *error = Fail(400, "invalid or conflicting Content-Length");
    return false;
  }
  if (name == "transfer-encoding") head->has_transfer_encoding = true;
  if (name == "connection") {
    if (util::ListHasToken(value, "close")) head->keep_alive = false;
    if (head->http10 && util::ListHasToken(value, "keep-alive")) head->keep_alive = true;
  }
  head->fields.emplace_back(std::move(name), std::string(value));
  return true;
}

HeadParse ParseComplete(std::string_view head_text, size_t head_bytes) {
  HeadParse result;
  RequestHead& head = result.head;
  bool length_seen = false;
  bool first = true;
  size_t start = 0;
  while (start < head_text.size()) {
    size_t nl = head_text.find('\n', start);
    std::string_view line = head_text.substr(start, nl - start);
    start = nl + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) break;  // the blank line that ends the head
    if (first) {
      if (!ParseRequestLine(line, &head, &result)) return result;
      first = false;
    } else if (!ParseField(line, &head, &length_seen, &result)) {
      return result;
    }
  }
  if (first) return Fail(400, "empty request");
  if (length_seen && head.has_transfer_encoding) {
    return Fail(400, "both Content-Length and Transfer-Encoding");  // RFC 9112 §6.1
  }
  result.kind = Kind::kComplete;
  result.head_bytes = head_bytes;
  return result;
}

}  // namespace

std::optional<std::string> RequestHead::Field(std::string_view lower_name) const {
  for (const auto& [name, value] : fields) {
    if (name == lower_name) return value;
  }
  return std::nullopt;
}

HeadParse ParseRequestHead(std::string_view buf, HeadScan* scan, const HeadLimits& limits) {
  // The head ends at the first empty line ("\n\n" or "\n\r\n"; RFC 9112 §2.2
  // lets a server accept a bare LF). Lines are counted as they are passed so a
  // flood of short fields is refused before max_bytes is reached.
  size_t i = scan->scanned;
  for (; i < buf.size(); ++i) {
    if (buf[i] != '\n') continue;
    size_t end = 0;
    if (i + 1 < buf.size() && buf[i + 1] == '\n') {
      end = i + 2;
    } else if (i + 2 < buf.size() && buf[i + 1] == '\r' && buf[i + 2] == '\n') {
      end = i + 3;
    } else if (i + 2 >= buf.size() && (i + 1 == buf.size() || buf[i + 1] == '\r')) {
      break;  // cannot tell yet: look at this newline again when more arrives
    }
    if (end != 0) {
      if (end > limits.max_bytes) return Fail(431, "request head over the size limit");
      return ParseComplete(buf.substr(0, end), end);
    }
    if (++scan->lines > limits.max_fields + 1) return Fail(431, "too many header fields");
  }
  scan->scanned = i;
  if (buf.size() > limits.max_bytes) return Fail(431, "request head over the size limit");
  return HeadParse{};
}

}  // namespace mailhook::http
