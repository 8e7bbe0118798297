#include "pgstore/pg_url.h"

#include <algorithm>
#include <cctype>

namespace mailhook::pgstore {
namespace {

constexpr std::string_view kRedacted = "<redacted>";

struct Span {
  size_t begin = std::string_view::npos;
  size_t end = std::string_view::npos;
  bool found() const { return begin != std::string_view::npos && end > begin; }
};

// The password of a URI's user info. The authority ends at the last '@'
// before the query: an unencoded '@' or '/' inside the password (people write
// them) then still counts as password, so redaction errs towards hiding more.
Span UserInfoPassword(std::string_view url) {
  const size_t scheme = url.find("://");
  if (scheme == std::string_view::npos) return {};
  const size_t start = scheme + 3;
  const size_t query = std::min(url.find('?', start), url.size());
  const size_t at = url.substr(0, query).rfind('@');
  if (at == std::string_view::npos || at < start) return {};
  const size_t colon = url.substr(0, at).find(':', start);
  if (colon == std::string_view::npos) return {};
  return {colon + 1, at};
}

// Every `password=` and `sslpassword=` (a client key's passphrase) value: in
// a URI query (ends at '&') or a key/value string (ends at white space; a
// quoted value at the closing quote).
std::vector<Span> KeywordPasswords(std::string_view url) {
  std::vector<Span> spans;
  for (std::string_view key : {std::string_view("password="), std::string_view("sslpassword=")}) {
    for (size_t pos = url.find(key); pos != std::string_view::npos; pos = url.find(key, pos + 1)) {
      if (pos > 0 && (std::isalnum(static_cast<unsigned char>(url[pos - 1])) || url[pos - 1] == '_')) continue;
      const size_t begin = pos + key.size();
      size_t end = begin;
      if (begin < url.size() && url[begin] == '\'') {
        end = url.find('\'', begin + 1);
        end = end == std::string_view::npos ? url.size() : end + 1;
      } else {
        while (end < url.size() && url[end] != '&' && !std::isspace(static_cast<unsigned char>(url[end]))) ++end;
      }
      spans.push_back({begin, end});
    }
  }
  return spans;
}

std::vector<Span> PasswordSpans(std::string_view url) {
  std::vector<Span> spans = KeywordPasswords(url);
  if (Span info = UserInfoPassword(url); info.found()) spans.push_back(info);
  spans.erase(std::remove_if(spans.begin(), spans.end(), [](const Span& s) { return !s.found(); }), spans.end());
  std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) { return a.begin < b.begin; });
  return spans;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string PercentDecoded(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && HexValue(s[i + 1]) >= 0 && HexValue(s[i + 2]) >= 0) {
      out.push_back(static_cast<char>(HexValue(s[i + 1]) * 16 + HexValue(s[i + 2])));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

}  // namespace

std::string RedactUrl(std::string_view url) {
  std::string out;
  size_t copied = 0;
  for (const Span& span : PasswordSpans(url)) {
    if (span.begin < copied) continue;  // overlapping spans: the first one hid it
    out.append(url.substr(copied, span.begin - copied));
    out.append(kRedacted);
    copied = span.end;
  }
  out.append(url.substr(copied));
  return out;
}

std::vector<std::string> PasswordsIn(std::string_view url) {
  std::vector<std::string> out;
  for (const Span& span : PasswordSpans(url)) {
    std::string_view raw = url.substr(span.begin, span.end - span.begin);
    if (raw.size() >= 2 && raw.front() == '\'' && raw.back() == '\'') raw = raw.substr(1, raw.size() - 2);
    if (raw.empty()) continue;
    out.emplace_back(raw);
    if (std::string decoded = PercentDecoded(raw); decoded != raw && !decoded.empty()) out.push_back(decoded);
  }
  return out;
}

std::string RedactPasswordsOf(std::string_view url, std::string text) {
  std::vector<std::string> passwords = PasswordsIn(url);
  // Longest first: a decoded password may contain the raw one or the reverse.
  std::sort(passwords.begin(), passwords.end(), [](const auto& a, const auto& b) { return a.size() > b.size(); });
  for (const std::string& pw : passwords) {
    for (size_t pos = text.find(pw); pos != std::string::npos; pos = text.find(pw, pos + kRedacted.size())) {
      text.replace(pos, pw.size(), kRedacted);
    }
  }
  return text;
}

}  // namespace mailhook::pgstore
