#include "mime/params.h"

#include <cctype>
#include <map>

#include "mime/decode.h"
#include "mime/header.h"
#include "util/strings.h"

namespace mailhook::mime {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// RFC 2231 4: %XX octets; a '%' not followed by two hex digits is kept.
std::string PercentDecode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%') {
      int hi = i + 1 < s.size() ? HexValue(s[i + 1]) : -1;
      int lo = i + 2 < s.size() ? HexValue(s[i + 2]) : -1;
      if (hi >= 0 && lo >= 0) {
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
        continue;
      }
    }
    out.push_back(s[i]);
  }
  return out;
}

std::string DecodePlain(std::string_view value, std::string_view fallback_charset) {
  if (value.find("=?") != std::string_view::npos) return DecodeHeaderText(value);
  if (IsValidUtf8(value)) return std::string(value);
  return ToUtf8(value, fallback_charset.empty() ? "unknown-8bit" : fallback_charset);
}

}  // namespace

std::vector<Param> ParseParams(std::string_view text) {
  std::vector<Param> out;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && (util::IsSpace(text[i]) || text[i] == ';')) ++i;
    size_t name_begin = i;
    while (i < text.size() && text[i] != '=' && text[i] != ';') ++i;
    std::string name = util::Lower(util::Trim(text.substr(name_begin, i - name_begin)));
    if (i >= text.size() || text[i] == ';') {
      continue;  // a parameter without a value carries nothing
    }
    ++i;  // '='
    while (i < text.size() && util::IsSpace(text[i])) ++i;
    std::string value;
    if (i < text.size() && text[i] == '"') {
      ++i;
      while (i < text.size() && text[i] != '"') {
        if (text[i] == '\\' && i + 1 < text.size()) ++i;
        value.push_back(text[i++]);
      }
      ++i;
      // Skip anything after the closing quote up to the next ';'.
      while (i < text.size() && text[i] != ';') ++i;
    } else {
      size_t b = i;
      while (i < text.size() && text[i] != ';') ++i;
      value = std::string(util::Trim(text.substr(b, i - b)));
    }
    if (!name.empty()) out.push_back({name, value});
  }
  return out;
}

ContentType ParseContentType(std::string_view value) {
  ContentType ct{"text", "plain", {}};
  size_t semi = value.find(';');
  std::string_view main = util::Trim(value.substr(0, semi));
  std::string_view rest = semi == std::string_view::npos ? std::string_view() : value.substr(semi + 1);
  // "multipart/mixed boundary=x" (the ';' forgotten): the first word is the
  // type, the rest still holds parameters.
  if (size_t sp = main.find_first_of(" \t\r\n");
      sp != std::string_view::npos && main.find('=') != std::string_view::npos) {
    rest = value.substr(static_cast<size_t>(main.data() - value.data()) + sp);
    main = main.substr(0, sp);
  }
  ct.params = ParseParams(rest);
  size_t slash = main.find('/');
  if (slash == std::string_view::npos) return ct;
  std::string type = util::Lower(util::Trim(main.substr(0, slash)));
  std::string subtype = util::Lower(util::Trim(main.substr(slash + 1)));
  auto token = [](const std::string& s) {
    if (s.empty()) return false;
    for (char c : s) {
      if (util::IsSpace(c) || c == '/' || c == '"' || c == '(' || c == ')' || c == '<' || c == '>' || c == '@' ||
          c == ',')
        return false;
    }
    return true;
  };
  if (!token(type) || !token(subtype)) return ct;
  ct.type = type;
  ct.subtype = subtype;
  return ct;
}

Disposition ParseDisposition(std::string_view value) {
  Disposition d;
  size_t semi = value.find(';');
  d.type = util::Lower(util::Trim(value.substr(0, semi)));
  if (semi != std::string_view::npos) d.params = ParseParams(value.substr(semi + 1));
  return d;
}

std::optional<std::string> RawParam(const std::vector<Param>& params, std::string_view name) {
  for (const Param& p : params) {
    if (p.name == name) return p.value;
  }
  return std::nullopt;
}

std::optional<std::string> DecodeParam(const std::vector<Param>& params, std::string_view name,
                                       std::string_view fallback_charset) {
  // RFC 2231 3 and 4: name*N or name*N* pieces, name* for a single encoded one.
  struct Piece {
    std::string value;
    bool encoded;
  };
  std::map<int, Piece> pieces;
  std::optional<std::string> plain;
  for (const Param& p : params) {
    std::string_view n = util::Trim(p.name);
    if (n == name) {
      if (!plain) plain = p.value;
      continue;
    }
    if (!n.starts_with(name) || n.size() <= name.size() || n[name.size()] != '*') continue;
    std::string_view rest = n.substr(name.size() + 1);
    bool encoded = false;
    if (rest.ends_with("*")) {
      encoded = true;
      rest.remove_suffix(1);
    }
    int index = 0;
    if (rest.empty()) {
      encoded = true;  // "name*": one encoded piece
    } else {
      if (rest.size() > 4) continue;
      for (char c : rest) {
        if (!std::isdigit(static_cast<unsigned char>(c))) index = -1;
      }
      if (index < 0) continue;  // "name*x": not ours
      index = std::stoi(std::string(rest));
    }
    pieces.emplace(index, Piece{p.value, encoded});
  }
  if (pieces.empty()) {
    if (!plain) return std::nullopt;
    return DecodePlain(*plain, fallback_charset);
  }
  std::string charset;
  std::string bytes;
  bool first = true;
  for (auto& [index, piece] : pieces) {
    std::string_view v = piece.value;
    if (first && piece.encoded) {
      // charset'language'value (RFC 2231 4); the quotes may be missing.
      size_t q1 = v.find('\'');
      size_t q2 = q1 == std::string_view::npos ? q1 : v.find('\'', q1 + 1);
      if (q2 != std::string_view::npos) {
        charset = std::string(v.substr(0, q1));
        v.remove_prefix(q2 + 1);
      }
    }
    first = false;
    bytes += piece.encoded ? PercentDecode(v) : std::string(v);
  }
  if (charset.empty()) {
    // No charset: RFC 2047 words in plain pieces happen too.
    return DecodePlain(bytes, fallback_charset);
  }
  return ToUtf8(bytes, charset);
}

}  // namespace mailhook::mime
