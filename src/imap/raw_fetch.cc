#include "imap/raw_fetch.h"

#include <cctype>
#include <string>

namespace mailhook::imap::rawfetch {
namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Digits at `at` as a number no larger than `max`; nullopt when there are
// none or the number is too big (a hostile server's 30-digit "size").
std::optional<uint64_t> Number(std::string_view text, size_t at, uint64_t max, size_t* end) {
  uint64_t v = 0;
  size_t i = at;
  for (; i < text.size() && IsDigit(text[i]); ++i) {
    v = v * 10 + static_cast<uint64_t>(text[i] - '0');
    if (v > max) return std::nullopt;
  }
  if (i == at) return std::nullopt;
  *end = i;
  return v;
}

bool SameUpper(std::string_view text, size_t at, std::string_view word) {
  if (at + word.size() > text.size()) return false;
  for (size_t i = 0; i < word.size(); ++i) {
    if (std::toupper(static_cast<unsigned char>(text[at + i])) != word[i]) return false;
  }
  return true;
}

}  // namespace

std::optional<uint32_t> FetchNumber(std::string_view line) {
  if (!line.starts_with("* ")) return std::nullopt;
  size_t end = 0;
  auto n = Number(line, 2, UINT32_MAX, &end);
  if (!n || !SameUpper(line, end, " FETCH ")) return std::nullopt;
  return static_cast<uint32_t>(*n);
}

std::optional<uint32_t> UidItem(std::string_view text) {
  for (size_t at = 0; (at = ItemValue(text, "UID")) != std::string_view::npos;) {
    size_t end = 0;
    auto n = Number(text, at, UINT32_MAX, &end);
    if (n && (end == text.size() || text[end] == ' ' || text[end] == ')')) return static_cast<uint32_t>(*n);
    text = text.substr(at);  // "UID x": look further
  }
  return std::nullopt;
}

size_t ItemValue(std::string_view text, std::string_view item) {
  for (size_t at = 0; at + item.size() < text.size(); ++at) {
    if (at > 0 && text[at - 1] != '(' && text[at - 1] != ' ') continue;
    if (SameUpper(text, at, item) && text[at + item.size()] == ' ') return at + item.size() + 1;
  }
  return std::string_view::npos;
}

std::optional<uint64_t> TrailingLiteral(std::string_view line) {
  if (!line.ends_with('}')) return std::nullopt;
  size_t open = line.rfind('{');
  if (open == std::string_view::npos) return std::nullopt;
  // A hostile size is still a literal: it saturates, and the reader refuses
  // it by its budget.
  uint64_t n = 0;
  size_t i = open + 1;
  for (; i < line.size() && IsDigit(line[i]); ++i) {
    n = n > UINT64_MAX / 100 ? UINT64_MAX / 10 : n * 10 + static_cast<uint64_t>(line[i] - '0');
  }
  if (i == open + 1 || i != line.size() - 1) return std::nullopt;
  return n;
}

std::optional<std::string> LeadingQuoted(std::string_view text) {
  if (!text.starts_with('"')) return std::nullopt;
  std::string out;
  for (size_t i = 1; i < text.size(); ++i) {
    if (text[i] == '"') return out;
    if (text[i] == '\\' && i + 1 < text.size()) ++i;
    out += text[i];
  }
  return std::nullopt;  // unterminated
}

}  // namespace mailhook::imap::rawfetch
