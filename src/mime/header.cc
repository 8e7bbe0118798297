#include "mime/header.h"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstdio>

#include "mime/decode.h"
#include "util/strings.h"

namespace mailhook::mime {
namespace {

bool IsWsp(char c) { return c == ' ' || c == '\t'; }
// Text outside encoded words: RFC 6532 allows raw UTF-8; anything else is
// most likely latin1 from an old client.
std::string RawText(std::string_view s) { return IsValidUtf8(s) ? std::string(s) : Windows1252ToUtf8(s); }

// Sorted positions of a character class in a header value, so that "the
// next one at or after i" is a binary search: a value full of unclosed
// "=?cs?B?" starts would otherwise be scanned to its end once per start
// (quadratic on a hostile 1 MB header).
class Positions {
 public:
  Positions(std::string_view s, bool (*match)(std::string_view, size_t)) {
    for (size_t i = 0; i < s.size(); ++i) {
      if (match(s, i)) at_.push_back(i);
    }
  }
  /// The first position >= i, or npos.
  size_t Next(size_t i) const {
    auto it = std::lower_bound(at_.begin(), at_.end(), i);
    return it == at_.end() ? std::string_view::npos : *it;
  }

 private:
  std::vector<size_t> at_;
};

// Where encoded words can end ("?=") and what they may not contain (RFC
// 2047 5: no white space inside a word), for one header value.
struct WordIndex {
  explicit WordIndex(std::string_view s)
      : closes(s, [](std::string_view v, size_t i) { return v[i] == '?' && i + 1 < v.size() && v[i + 1] == '='; }),
        spaces(s, [](std::string_view v, size_t i) { return util::IsSpace(v[i]); }) {}
  Positions closes;
  Positions spaces;
};

// One RFC 2047 encoded word starting at s[pos] ("=?cs?X?text?="). On success
// sets charset, decoded bytes and the end position. Cost: the charset's
// length (it ends at the next '=', which the next "=?" start has) plus two
// index lookups, plus the decoding of a word that is taken.
bool ParseEncodedWord(std::string_view s, const WordIndex& index, size_t pos, std::string& charset, std::string& bytes,
                      size_t& end) {
  if (s.substr(pos, 2) != "=?") return false;
  size_t q1 = pos + 2;
  while (q1 < s.size() && s[q1] != '?') {
    if (util::IsSpace(s[q1]) || s[q1] == '=') return false;
    ++q1;
  }
  if (q1 == s.size() || q1 == pos + 2) return false;
  std::string_view cs = s.substr(pos + 2, q1 - pos - 2);
  if (q1 + 2 >= s.size() || s[q1 + 2] != '?') return false;
  char enc = static_cast<char>(std::toupper(static_cast<unsigned char>(s[q1 + 1])));
  if (enc != 'B' && enc != 'Q') return false;
  size_t text_begin = q1 + 3;
  size_t close = index.closes.Next(text_begin);
  if (close == std::string_view::npos) return false;
  if (index.spaces.Next(text_begin) < close) return false;  // RFC 2047 5: no white space inside a word
  std::string_view text = s.substr(text_begin, close - text_begin);
  charset = std::string(cs);
  bytes = enc == 'B' ? DecodeBase64(text) : DecodeQuotedPrintable(text, /*header=*/true);
  end = close + 2;
  return true;
}

// Folding leaves CR/LF only in broken input; a header value is one line.
std::string StripLineBreaks(std::string s) {
  s.erase(std::remove_if(s.begin(), s.end(), [](char c) { return c == '\r' || c == '\n'; }), s.end());
  return s;
}

// --- address tokens (RFC 5322 3.2-3.4) ---

enum class Tok { kAtom, kQuoted, kComment, kAngle, kComma, kColon, kSemicolon };

struct Token {
  Tok kind;
  std::string text;  // atom text, unescaped quoted content, angle content
  bool space_before = false;
};

std::vector<Token> Tokenize(std::string_view s) {
  std::vector<Token> out;
  bool space = false;
  size_t i = 0;
  while (i < s.size()) {
    char c = s[i];
    if (util::IsSpace(c)) {
      space = true;
      ++i;
      continue;
    }
    Token t{Tok::kAtom, "", space};
    space = false;
    if (c == '"') {
      t.kind = Tok::kQuoted;
      ++i;
      while (i < s.size() && s[i] != '"') {
        if (s[i] == '\\' && i + 1 < s.size()) ++i;
        if (s[i] == '\r' || s[i] == '\n') {
          ++i;
          continue;
        }
        t.text.push_back(s[i++]);
      }
      ++i;
    } else if (c == '(') {
      t.kind = Tok::kComment;
      int depth = 0;
      while (i < s.size()) {
        char d = s[i++];
        if (d == '\\' && i < s.size()) {
          t.text.push_back(s[i++]);
        } else if (d == '(') {
          if (++depth > 1) t.text.push_back(d);
        } else if (d == ')') {
          if (--depth == 0) break;
          t.text.push_back(d);
        } else {
          t.text.push_back(d);
        }
      }
      space = true;
    } else if (c == '<') {
      t.kind = Tok::kAngle;
      size_t close = s.find('>', i + 1);
      if (close == std::string_view::npos) close = s.size();
      // Quoted strings inside an angle address may hold '>'; rare enough that
      // a plain search is the better trade against unbalanced input.
      t.text = std::string(s.substr(i + 1, close - i - 1));
      i = close + 1;
    } else if (c == ',') {
      t.kind = Tok::kComma;
      ++i;
    } else if (c == ':') {
      t.kind = Tok::kColon;
      ++i;
    } else if (c == ';') {
      t.kind = Tok::kSemicolon;
      ++i;
    } else {
      while (i < s.size() && !util::IsSpace(s[i]) && s[i] != '"' && s[i] != '(' && s[i] != '<' && s[i] != ',' &&
             s[i] != ':' && s[i] != ';' && s[i] != '>') {
        if (s[i] == '[') {  // domain literal: keep whole
          size_t close = s.find(']', i);
          if (close == std::string_view::npos) close = s.size() - 1;
          t.text.append(s.substr(i, close - i + 1));
          i = close + 1;
          continue;
        }
        t.text.push_back(s[i++]);
      }
      if (t.text.empty()) {  // a stray '>'
        ++i;
        continue;
      }
    }
    out.push_back(std::move(t));
  }
  return out;
}

bool IsAtext(char c) {
  if (std::isalnum(static_cast<unsigned char>(c)) || static_cast<unsigned char>(c) >= 0x80) return true;
  return std::string_view("!#$%&'*+-/=?^_`{|}~").find(c) != std::string_view::npos;
}

bool IsDotAtom(std::string_view s) {
  if (s.empty() || s.front() == '.' || s.back() == '.') return false;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '.') {
      if (s[i - 1] == '.') return false;
    } else if (!IsAtext(s[i])) {
      return false;
    }
  }
  return true;
}

// addr-spec from tokens: local "@" domain, comments and whitespace dropped.
std::string AddrSpec(const std::vector<Token>& toks) {
  std::string all;
  for (const Token& t : toks) {
    if (t.kind == Tok::kAtom || t.kind == Tok::kQuoted) all += t.text;
  }
  // Obsolete source route "@a,@b:addr" (RFC 5322 4.4) arrives split by the
  // tokenizer; only the part after the last ':' is kept by the caller.
  size_t at = all.rfind('@');
  std::string local = at == std::string::npos ? all : all.substr(0, at);
  std::string domain = at == std::string::npos ? "" : all.substr(at + 1);
  if (!local.empty() && !IsDotAtom(local)) {
    std::string quoted = "\"";
    for (char c : local) {
      if (c == '"' || c == '\\') quoted.push_back('\\');
      quoted.push_back(c);
    }
    local = quoted + "\"";
  }
  return at == std::string::npos ? local : local + "@" + domain;
}

std::string Phrase(const std::vector<Token>& toks) {
  std::string out;
  for (const Token& t : toks) {
    if (t.kind != Tok::kAtom && t.kind != Tok::kQuoted) continue;
    if (!out.empty() && t.space_before) out.push_back(' ');
    out += t.text;
  }
  return DecodeHeaderText(out);
}

void FinishMailbox(std::vector<Token>& toks, std::vector<Address>& out) {
  if (toks.empty()) return;
  Address a;
  size_t angle = toks.size();
  for (size_t i = 0; i < toks.size(); ++i) {
    if (toks[i].kind == Tok::kAngle) {
      angle = i;
      break;
    }
  }
  if (angle < toks.size()) {
    std::string_view inner = toks[angle].text;
    if (size_t colon = inner.rfind(':'); colon != std::string_view::npos && inner.starts_with("@")) {
      inner.remove_prefix(colon + 1);  // obsolete route
    }
    a.address = RawText(AddrSpec(Tokenize(inner)));
    a.name = Phrase(std::vector<Token>(toks.begin(), toks.begin() + static_cast<std::ptrdiff_t>(angle)));
  } else {
    // Raw 8-bit in an address (RFC 6532) is UTF-8 when it is, else read as
    // windows-1252 like any raw header text: the result is always UTF-8.
    a.address = RawText(AddrSpec(toks));
  }
  toks.clear();
  a.name = std::string(util::Trim(a.name));
  if (a.address.empty() && a.name.empty()) return;
  out.push_back(std::move(a));
}

// --- dates ---

int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  // Howard Hinnant's algorithm: days since 1970-01-01 in the proleptic
  // Gregorian calendar.
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

int MonthIndex(std::string_view tok) {
  static constexpr std::string_view kMonths[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                                 "jul", "aug", "sep", "oct", "nov", "dec"};
  if (tok.size() < 3) return 0;
  std::string l = util::Lower(tok.substr(0, 3));
  for (int i = 0; i < 12; ++i) {
    if (l == kMonths[i]) return i + 1;
  }
  return 0;
}

// RFC 5322 4.3 obsolete zones. Military letters and unknown names are
// "-0000" (no information), which we read as UTC.
std::optional<int> NamedZoneMinutes(std::string_view name) {
  std::string l = util::Lower(name);
  if (l == "ut" || l == "utc" || l == "gmt" || l == "z") return 0;
  if (l == "edt") return -4 * 60;
  if (l == "est" || l == "cdt") return -5 * 60;
  if (l == "cst" || l == "mdt") return -6 * 60;
  if (l == "mst" || l == "pdt") return -7 * 60;
  if (l == "pst") return -8 * 60;
  if (l == "ast") return -4 * 60;
  if (l == "adt") return -3 * 60;
  return std::nullopt;
}

bool AllDigits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

// Comments (RFC 5322 3.2.2) carry no date information: "(PDT)".
// Obsolete syntax allows CFWS around the ':' of the time (RFC 5322 4.3):
// white space next to a ':' is dropped as the text is copied (erasing it in
// place was quadratic on a value of many spaces). Commas become spaces.
std::string DateText(std::string_view raw) {
  std::string text;
  int depth = 0;
  bool after_colon = false;
  for (char c : raw) {
    if (c == '(') {
      ++depth;
    } else if (c == ')' && depth > 0) {
      --depth;
    } else if (depth == 0) {
      const char m = c == ',' ? ' ' : c;
      if (m == ':') {
        while (!text.empty() && util::IsSpace(text.back())) text.pop_back();
        text.push_back(m);
        after_colon = true;
      } else if (!(after_colon && util::IsSpace(m))) {
        text.push_back(m);
        after_colon = false;
      }
    }
  }
  return text;
}

/// The white-space separated words of a Date value, comments dropped.
std::vector<std::string> DateTokens(std::string_view raw) {
  const std::string text = DateText(raw);
  std::vector<std::string> toks;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && util::IsSpace(text[i])) ++i;
    size_t b = i;
    while (i < text.size() && !util::IsSpace(text[i])) ++i;
    if (i > b) toks.push_back(text.substr(b, i - b));
  }
  return toks;
}

/// The pieces of a date found so far; -1 / 0: not yet seen.
struct DateFields {
  int day = -1, month = 0, hour = -1, minute = 0, second = 0;
  int64_t year = -1;
  int zone = 0;  ///< minutes east of UTC
  bool have_zone = false;
};

// "12-Jan-2005" and "2005/01/12" style pieces are not RFC 5322; only the
// dash form shows up in old mail. False: `tok` is not one.
bool ReadDashedDate(const std::string& tok, DateFields& f) {
  if (!(tok.find('-') != std::string::npos && tok.find('-') > 0 && f.month == 0 &&
        MonthIndex(tok.substr(tok.find('-') + 1)))) {
    return false;
  }
  std::string a = tok.substr(0, tok.find('-'));
  std::string rest = tok.substr(tok.find('-') + 1);
  std::string m = rest.substr(0, rest.find('-'));
  std::string y = rest.find('-') == std::string::npos ? "" : rest.substr(rest.find('-') + 1);
  // A day has at most 2 digits (RFC 5322 3.3); longer would overflow stoi.
  if (AllDigits(a) && a.size() <= 2) f.day = std::stoi(a);
  f.month = MonthIndex(m);
  if (AllDigits(y) && y.size() <= 4) f.year = std::stoll(y);
  return true;
}

/// "+0100", "-0000" or "+01:00" after the time; anything else is ignored.
void ReadNumericZone(const std::string& tok, DateFields& f) {
  std::string digits;
  for (char c : tok.substr(1)) {
    if (c != ':') digits.push_back(c);
  }
  if (AllDigits(digits) && digits.size() == 4 && f.hour >= 0) {
    int v = std::stoi(digits);
    f.zone = (v / 100) * 60 + v % 100;
    if (tok[0] == '-') f.zone = -f.zone;
    f.have_zone = true;
  }
}

/// "10:00:00" or "10:00"; a zone glued on ("10:00:00+0100" without the
/// space) is left in `glued_zone`, to be read as the next token.
void ReadTime(const std::string& tok, DateFields& f, std::string& glued_zone) {
  int h = 0, mi = 0, s = 0;
  char tail[8] = {0};
  int n = std::sscanf(tok.c_str(), "%d:%d:%d%7s", &h, &mi, &s, tail);
  if (n >= 2 && h >= 0 && h <= 24 && mi >= 0 && mi < 60 && s >= 0 && s <= 60) {
    f.hour = h;
    f.minute = mi;
    f.second = n >= 3 ? s : 0;
    std::string rest = tail;
    if (!rest.empty() && (rest[0] == '+' || rest[0] == '-')) glued_zone = rest;
  }
}

/// A bare number: the day, else the year.
void ReadNumber(const std::string& tok, DateFields& f) {
  if (f.day < 0 && tok.size() <= 2) {
    f.day = std::stoi(tok);
  } else if (f.year < 0 && tok.size() <= 4) {
    f.year = std::stoll(tok);
  }
}

/// Reads one word of a date into `f`, whatever its place; words that fit
/// nowhere (a weekday, say) are skipped.
void ReadDateToken(const std::string& tok, DateFields& f, std::string& glued_zone) {
  if (ReadDashedDate(tok, f)) return;
  if ((tok[0] == '+' || tok[0] == '-') && tok.size() >= 3) {
    ReadNumericZone(tok, f);
    return;
  }
  if (tok.find(':') != std::string::npos && f.hour < 0) {
    ReadTime(tok, f, glued_zone);
    return;
  }
  if (AllDigits(tok)) {
    ReadNumber(tok, f);
    return;
  }
  if (int m = MonthIndex(tok); m && f.month == 0 && tok.size() <= 9) {
    f.month = m;
    return;
  }
  if (f.hour >= 0 && !f.have_zone) {
    if (auto z = NamedZoneMinutes(tok)) {
      f.zone = *z;
      f.have_zone = true;
    }
  }
}

/// Checks and normalises the fields; nullopt when a piece is missing or out of range.
std::optional<std::string> DateToRfc3339(DateFields f) {
  if (f.day < 1 || f.day > 31 || f.month == 0 || f.year < 0 || f.hour < 0) return std::nullopt;
  // RFC 5322 4.3 obsolete years; the cut-off follows Python's email.utils.
  if (f.year < 100)
    f.year += f.year > 68 ? 1900 : 2000;
  else if (f.year < 1000)
    f.year += 1900;
  if (f.hour == 24) {
    if (f.minute != 0 || f.second != 0) return std::nullopt;
  }
  if (f.second == 60) f.second = 59;
  int64_t t = DaysFromCivil(f.year, static_cast<unsigned>(f.month), static_cast<unsigned>(f.day)) * 86400 +
              int64_t{f.hour} * 3600 + int64_t{f.minute} * 60 + f.second - static_cast<int64_t>(f.zone) * 60;
  return FormatRfc3339(t);
}

}  // namespace

std::vector<HeaderField> ParseHeaderBlock(std::string_view block) {
  std::vector<HeaderField> out;
  size_t pos = 0;
  bool last_valid = false;
  while (pos < block.size()) {
    size_t eol = block.find('\n', pos);
    size_t next = eol == std::string_view::npos ? block.size() : eol + 1;
    std::string_view line = block.substr(pos, next - pos);
    pos = next;
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
    if (line.empty()) break;  // end of the header block
    if (IsWsp(line.front())) {
      // RFC 5322 2.2.3: unfolding removes the CRLF, keeps the WSP.
      if (last_valid) out.back().value.append(line);
      continue;
    }
    size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) {
      last_valid = false;  // "From " mbox lines and garbage
      continue;
    }
    std::string_view name = line.substr(0, colon);
    while (!name.empty() && IsWsp(name.back())) name.remove_suffix(1);
    if (name.find(' ') != std::string_view::npos) {
      last_valid = false;
      continue;
    }
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && IsWsp(value.front())) value.remove_prefix(1);
    out.push_back({std::string(name), std::string(value)});
    last_valid = true;
  }
  return out;
}

std::optional<std::string> FirstHeader(const std::vector<HeaderField>& fields, std::string_view name) {
  for (const HeaderField& f : fields) {
    if (util::EqualsIgnoreCase(f.name, name)) return f.value;
  }
  return std::nullopt;
}

std::vector<std::string> AllHeaders(const std::vector<HeaderField>& fields, std::string_view name) {
  std::vector<std::string> out;
  for (const HeaderField& f : fields) {
    if (util::EqualsIgnoreCase(f.name, name)) out.push_back(f.value);
  }
  return out;
}

std::string DecodeHeaderText(std::string_view raw) {
  std::string out;
  std::string pending;          // decoded bytes of adjacent encoded words
  std::string pending_charset;  // their charset
  auto flush = [&] {
    if (!pending.empty()) out += ToUtf8(pending, pending_charset);
    pending.clear();
  };
  if (raw.find("=?") == std::string_view::npos) return StripLineBreaks(RawText(raw));
  const WordIndex index(raw);
  size_t i = 0;
  size_t literal_begin = 0;
  bool last_was_word = false;
  while (i < raw.size()) {
    size_t start = raw.find("=?", i);
    if (start == std::string_view::npos) break;
    std::string cs, bytes;
    size_t end = 0;
    if (!ParseEncodedWord(raw, index, start, cs, bytes, end)) {
      i = start + 2;
      continue;
    }
    std::string_view between = raw.substr(literal_begin, start - literal_begin);
    bool only_space = util::Trim(between).empty();
    if (!(last_was_word && only_space)) {
      // RFC 2047 6.2: whitespace between adjacent encoded words is dropped;
      // any other text ends the run.
      flush();
      out += RawText(between);
    }
    std::string norm = NormalizeCharset(cs);
    if (norm != pending_charset) flush();
    pending_charset = norm;
    pending += bytes;
    last_was_word = true;
    i = end;
    literal_begin = end;
  }
  flush();
  out += RawText(raw.substr(literal_begin));
  return StripLineBreaks(std::move(out));
}

std::vector<Address> ParseAddressList(std::string_view raw) {
  std::vector<Address> out;
  std::vector<Token> cur;
  for (Token& t : Tokenize(raw)) {
    switch (t.kind) {
      case Tok::kComma:
      case Tok::kSemicolon: FinishMailbox(cur, out); break;
      case Tok::kColon:
        cur.clear();  // group display name (RFC 5322 3.4): dropped
        break;
      default: cur.push_back(std::move(t));
    }
  }
  FinishMailbox(cur, out);
  return out;
}

std::vector<std::string> ParseMessageIds(std::string_view raw) {
  // One pass: an id runs from the last '<' before a '>' to that '>' ("<a <b>"
  // gives "<b>"); a '>' without an open '<' is text. (Searching for the '>'
  // again from every '<' was quadratic on "<<<<...".)
  std::vector<std::string> out;
  size_t open = std::string_view::npos;
  for (size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] == '<') {
      open = i;
      continue;
    }
    if (raw[i] != '>' || open == std::string_view::npos) continue;
    // Obsolete msg-id syntax (RFC 5322 4.5.4) allows CFWS between the parts.
    std::string id;
    int depth = 0;
    for (char c : raw.substr(open + 1, i - open - 1)) {
      if (c == '(')
        ++depth;
      else if (c == ')' && depth > 0)
        --depth;
      else if (depth == 0 && !util::IsSpace(c))
        id.push_back(c);
    }
    if (!id.empty()) out.push_back(ForceUtf8("<" + id + ">"));
    open = std::string_view::npos;
  }
  return out;
}

std::optional<std::string> ParseMessageId(std::string_view raw) {
  std::vector<std::string> ids = ParseMessageIds(raw);
  if (!ids.empty()) return ids.front();
  std::string_view t = util::Trim(raw);
  if (t.empty()) return std::nullopt;
  return ForceUtf8(t);
}

std::string FormatRfc3339(int64_t t) {
  int64_t days = t >= 0 ? t / 86400 : (t - 86399) / 86400;
  int64_t secs = t - days * 86400;
  // civil_from_days (Hinnant)
  int64_t z = days + 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t y = static_cast<int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;
  y += m <= 2;
  char buf[40];
  std::snprintf(buf, sizeof buf, "%04lld-%02u-%02uT%02d:%02d:%02dZ", static_cast<long long>(y), m, d,
                static_cast<int>(secs / 3600), static_cast<int>(secs / 60 % 60), static_cast<int>(secs % 60));
  return buf;
}

std::optional<std::string> ParseDate(std::string_view raw) {
  std::vector<std::string> toks = DateTokens(raw);
  DateFields f;
  for (size_t k = 0; k < toks.size(); ++k) {
    std::string tok = toks[k];
    std::string glued_zone;
    ReadDateToken(tok, f, glued_zone);
    if (!glued_zone.empty()) toks.insert(toks.begin() + static_cast<std::ptrdiff_t>(k) + 1, glued_zone);
  }
  return DateToRfc3339(f);
}

}  // namespace mailhook::mime
