#include "mime/decode.h"

#include <iconv.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <span>
#include <vector>

#include "util/base64.h"
#include "util/strings.h"

namespace mailhook::mime {
namespace {

int HexValue(unsigned char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

void AppendUtf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";

// Length of the well-formed UTF-8 sequence at s[i], or 0 when ill-formed
// (Unicode 15, table 3-7: no overlongs, no surrogates, max U+10FFFF).
size_t Utf8SequenceLength(std::string_view s, size_t i) {
  auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char c = b(i);
  if (c < 0x80) return 1;
  size_t n = s.size() - i;
  auto cont = [&](size_t k) { return (b(k) & 0xC0) == 0x80; };
  if (c >= 0xC2 && c <= 0xDF) return (n >= 2 && cont(i + 1)) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    if (n < 3 || !cont(i + 1) || !cont(i + 2)) return 0;
    if (c == 0xE0 && b(i + 1) < 0xA0) return 0;
    if (c == 0xED && b(i + 1) > 0x9F) return 0;
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (n < 4 || !cont(i + 1) || !cont(i + 2) || !cont(i + 3)) return 0;
    if (c == 0xF0 && b(i + 1) < 0x90) return 0;
    if (c == 0xF4 && b(i + 1) > 0x8F) return 0;
    return 4;
  }
  return 0;
}

bool IsAscii(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; });
}

bool HasMultibyteSequence(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    size_t n = Utf8SequenceLength(s, i);
    if (n > 1) return true;
    i += n ? n : 1;
  }
  return false;
}

// Charsets whose ASCII-only bytes do not mean ASCII text.
bool AsciiIncompatible(std::string_view cs) {
  return cs.starts_with("utf-16") || cs.starts_with("utf-32") || cs.starts_with("ucs-") || cs == "utf-7" ||
         cs.starts_with("iso-2022") || cs == "hz-gb-2312";
}

// Runs iconv from `charset`. Returns false when iconv does not know the
// charset. `lossy`: bytes iconv rejects become U+FFFD and conversion goes on;
// otherwise the first rejected byte makes it return false.
bool IconvToUtf8(std::string_view in, const std::string& charset, bool lossy, std::string& out) {
  iconv_t cd = iconv_open("UTF-8", charset.c_str());
  // NOLINTNEXTLINE(performance-no-int-to-ptr): (iconv_t)-1 is iconv_open's documented failure value
  if (cd == reinterpret_cast<iconv_t>(-1)) return false;
  out.clear();
  std::vector<char> buf(4096);
  char* inp = const_cast<char*>(in.data());
  size_t inleft = in.size();
  bool ok = true;
  while (true) {
    char* outp = buf.data();
    size_t outleft = buf.size();
    size_t r = inleft ? iconv(cd, &inp, &inleft, &outp, &outleft) : iconv(cd, nullptr, nullptr, &outp, &outleft);
    int err = errno;
    out.append(buf.data(), outp - buf.data());
    if (r != static_cast<size_t>(-1)) {
      if (inleft == 0) {
        // Flush shift state (ISO-2022-JP) once, then stop.
        outp = buf.data();
        outleft = buf.size();
        iconv(cd, nullptr, nullptr, &outp, &outleft);
        out.append(buf.data(), outp - buf.data());
        break;
      }
      continue;
    }
    if (err == E2BIG) continue;
    // EILSEQ (bad byte) or EINVAL (truncated sequence at the end).
    if (!lossy) {
      ok = false;
      break;
    }
    out.append(kReplacement);
    ++inp;
    --inleft;
    iconv(cd, nullptr, nullptr, nullptr, nullptr);  // reset shift state
    if (inleft == 0) break;
  }
  iconv_close(cd);
  return ok;
}

// What to try after the label itself, when the label is known to lie
// (the WHATWG / Python-oracle supersets).
std::vector<std::string> Supersets(const std::string& cs) {
  if (cs == "big5") return {"big5-hkscs", "cp950"};
  if (cs == "shift_jis" || cs == "shift-jis" || cs == "sjis" || cs == "x-sjis") return {"cp932"};
  if (cs == "iso-2022-jp") return {"iso-2022-jp-3", "iso-2022-jp-2"};
  if (cs == "euc-jp") return {"eucjp-ms"};
  return {};
}

// A partial base64 quantum: 2 chars → 1 byte, 3 chars → 2 bytes, 1 char → none.
void Base64Flush(uint32_t& acc, int& n, std::string& out) {
  if (n == 2) out.push_back(static_cast<char>((acc >> 4) & 0xFF));
  if (n == 3) {
    out.push_back(static_cast<char>((acc >> 10) & 0xFF));
    out.push_back(static_cast<char>((acc >> 2) & 0xFF));
  }
  acc = 0;
  n = 0;
}

// One base64 step over `in`, carrying the partial quantum in (acc, n).
void Base64Step(std::string_view in, uint32_t& acc, int& n, std::string& out) {
  for (unsigned char c : in) {
    if (c == '=') {
      Base64Flush(acc, n, out);
      continue;
    }
    int v = util::Base64Value(static_cast<char>(c));
    if (v < 0) continue;  // RFC 2045 6.8: ignore characters outside the alphabet
    acc = (acc << 6) | static_cast<uint32_t>(v);
    if (++n == 4) {
      out.push_back(static_cast<char>((acc >> 16) & 0xFF));
      out.push_back(static_cast<char>((acc >> 8) & 0xFF));
      out.push_back(static_cast<char>(acc & 0xFF));
      acc = 0;
      n = 0;
    }
  }
}

// The charset names iconv is ever asked to open for a sender's label (after
// NormalizeCharset): the IANA names and aliases real mail uses. A sender
// picks the label, and glibc loads a conversion module for whatever name it
// is given (CVE-2024-2961 was in one of them, ISO-2022-CN-EXT): a label not
// listed here is read as unknown text, never handed to iconv.
constexpr std::string_view kIconvCharsets[] = {
    "iso-8859-2",   "iso-8859-3",   "iso-8859-4",   "iso-8859-5",   "iso-8859-6",   "iso-8859-7",    "iso-8859-8",
    "iso-8859-9",   "iso-8859-10",  "iso-8859-11",  "iso-8859-13",  "iso-8859-14",  "iso-8859-15",   "iso-8859-16",
    "windows-1250", "windows-1251", "windows-1253", "windows-1254", "windows-1255", "windows-1256",  "windows-1257",
    "windows-1258", "windows-874",  "cp874",        "tis-620",      "windows-31j",  "koi8-r",        "koi8-u",
    "koi8-ru",      "koi8-t",       "cp437",        "cp850",        "cp852",        "cp866",         "ibm850",
    "ibm852",       "ibm866",       "cp1125",       "macintosh",    "mac-cyrillic", "viscii",        "armscii-8",
    "georgian-ps",  "utf-7",        "utf-16",       "utf-16le",     "utf-16be",     "utf-32",        "utf-32le",
    "utf-32be",     "ucs-2",        "ucs-2le",      "ucs-2be",      "ucs-4",        "ucs-4le",       "ucs-4be",
    "shift_jis",    "cp932",        "euc-jp",       "eucjp-ms",     "iso-2022-jp",  "iso-2022-jp-2", "iso-2022-jp-3",
    "gb18030",      "big5",         "big5-hkscs",   "cp950",        "euc-tw",       "iso-2022-cn",   "cp949",
    "iso-2022-kr",  "johab",
};

}  // namespace

std::span<const std::string_view> IconvCharsets() { return kIconvCharsets; }

bool IsIconvCharset(std::string_view normalized) {
  return std::find(std::begin(kIconvCharsets), std::end(kIconvCharsets), normalized) != std::end(kIconvCharsets);
}

std::string DecodeBase64(std::string_view in) {
  std::string out;
  out.reserve(in.size() * 3 / 4);
  uint32_t acc = 0;
  int n = 0;
  Base64Step(in, acc, n, out);
  Base64Flush(acc, n, out);
  return out;
}

std::string DecodeQuotedPrintable(std::string_view in, bool header) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (header && c == '_') {
      out.push_back(' ');  // RFC 2047 4.2 (2)
      continue;
    }
    if (c != '=') {
      out.push_back(c);
      continue;
    }
    // Soft line break: "=" then optional trailing whitespace then a line end
    // (RFC 2045 6.7 rule 5; senders leave spaces after the "=").
    size_t j = i + 1;
    while (j < in.size() && (in[j] == ' ' || in[j] == '\t')) ++j;
    if (j < in.size() && (in[j] == '\n' || in[j] == '\r')) {
      if (in[j] == '\r' && j + 1 < in.size() && in[j + 1] == '\n') ++j;
      i = j;
      continue;
    }
    if (j == in.size() && !header) {  // "=" at the very end: a soft break
      i = j;
      continue;
    }
    int hi = i + 1 < in.size() ? HexValue(in[i + 1]) : -1;
    int lo = i + 2 < in.size() ? HexValue(in[i + 2]) : -1;
    if (hi >= 0 && lo >= 0) {
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
      continue;
    }
    out.push_back('=');  // invalid escape: keep it literally (RFC 2045 6.7 note)
  }
  return out;
}

std::string DecodeUuencode(std::string_view in) {
  size_t pos = 0;
  bool found = false;
  while (pos < in.size()) {
    size_t eol = in.find('\n', pos);
    std::string_view line = in.substr(pos, eol == std::string_view::npos ? std::string_view::npos : eol - pos);
    pos = eol == std::string_view::npos ? in.size() : eol + 1;
    if (line.starts_with("begin ")) {
      found = true;
      break;
    }
  }
  if (!found) return std::string(in);
  std::string out;
  while (pos < in.size()) {
    size_t eol = in.find('\n', pos);
    std::string_view line = in.substr(pos, eol == std::string_view::npos ? std::string_view::npos : eol - pos);
    pos = eol == std::string_view::npos ? in.size() : eol + 1;
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.remove_suffix(1);
    if (line == "end") break;
    if (line.empty()) continue;
    int len = (line[0] - 32) & 63;
    if (len == 0) continue;
    auto val = [&](size_t k) -> uint32_t { return k < line.size() ? static_cast<uint32_t>((line[k] - 32) & 63) : 0; };
    int written = 0;
    for (size_t k = 1; written < len; k += 4) {
      uint32_t v = (val(k) << 18) | (val(k + 1) << 12) | (val(k + 2) << 6) | val(k + 3);
      for (int b = 2; b >= 0 && written < len; --b, ++written) out.push_back(static_cast<char>((v >> (8 * b)) & 0xFF));
    }
  }
  return out;
}

namespace {

std::string NormalizeEncoding(std::string_view encoding) {
  std::string enc;
  for (char c : encoding) {
    if (c != ' ' && c != '\t' && c != '"') enc.push_back(util::LowerChar(c));
  }
  return enc;
}

bool IsUuencode(const std::string& enc) {
  return enc == "x-uuencode" || enc == "uuencode" || enc == "x-uue" || enc == "uue";
}

}  // namespace

std::string DecodeTransfer(std::string_view body, std::string_view encoding) {
  std::string enc = NormalizeEncoding(encoding);
  if (enc == "base64") return DecodeBase64(body);
  if (enc == "quoted-printable") return DecodeQuotedPrintable(body);
  if (IsUuencode(enc)) return DecodeUuencode(body);
  return std::string(body);
}

bool HasTransferEncoding(std::string_view encoding) {
  std::string enc = NormalizeEncoding(encoding);
  return enc == "base64" || enc == "quoted-printable" || IsUuencode(enc);
}

TransferDecoder::TransferDecoder(std::string_view encoding) {
  std::string enc = NormalizeEncoding(encoding);
  kind_ = enc == "base64"             ? Kind::kBase64
          : enc == "quoted-printable" ? Kind::kQuotedPrintable
          : IsUuencode(enc)           ? Kind::kUuencode
                                      : Kind::kIdentity;
}

void TransferDecoder::Feed(std::string_view chunk, std::string& out) {
  switch (kind_) {
    case Kind::kIdentity: out.append(chunk); return;
    case Kind::kBase64: Base64Step(chunk, acc_, n_, out); return;
    case Kind::kUuencode: held_.append(chunk); return;
    case Kind::kQuotedPrintable: {
      // Every line up to the chunk's last line feed is complete: a soft
      // break or an escape never reaches past its line's end.
      size_t eol = chunk.rfind('\n');
      if (eol == std::string_view::npos) {
        held_.append(chunk);
        return;
      }
      held_.append(chunk.substr(0, eol + 1));
      out += DecodeQuotedPrintable(held_);
      held_.assign(chunk.substr(eol + 1));
      return;
    }
  }
}

void TransferDecoder::Finish(std::string& out) {
  switch (kind_) {
    case Kind::kIdentity: break;
    case Kind::kBase64: Base64Flush(acc_, n_, out); break;
    case Kind::kQuotedPrintable: out += DecodeQuotedPrintable(held_); break;
    case Kind::kUuencode: out += DecodeUuencode(held_); break;
  }
  held_.clear();
  held_.shrink_to_fit();
}

bool IsValidUtf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    size_t n = Utf8SequenceLength(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

std::string ForceUtf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    size_t n = Utf8SequenceLength(s, i);
    if (n == 0) {
      out.append(kReplacement);
      ++i;
    } else {
      out.append(s.substr(i, n));
      i += n;
    }
  }
  return out;
}

std::string Windows1252ToUtf8(std::string_view s) {
  static constexpr std::array<uint16_t, 32> kHigh = {0x20AC, 0x0081, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,
                                                     0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0x008D, 0x017D, 0x008F,
                                                     0x0090, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
                                                     0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x009D, 0x017E, 0x0178};
  std::string out;
  out.reserve(s.size() + s.size() / 4);
  for (unsigned char c : s) {
    if (c >= 0x80 && c < 0xA0) {
      AppendUtf8(out, kHigh[c - 0x80]);
    } else {
      AppendUtf8(out, c);
    }
  }
  return out;
}

std::string NormalizeCharset(std::string_view label) {
  std::string cs;
  for (char c : label) {
    if (c != '"' && c != '\'' && c != ' ' && c != '\t' && c != '\r' && c != '\n') cs.push_back(util::LowerChar(c));
  }
  // RFC 2231 5: a language may follow the charset in encoded words ("utf-8*en").
  if (auto star = cs.find('*'); star != std::string::npos) cs.resize(star);
  if (cs.empty() || cs == "ascii" || cs == "us_ascii" || cs == "usascii" || cs == "ansi_x3.4-1968" || cs == "us") {
    return "us-ascii";
  }
  if (cs == "utf8" || cs == "utf_8" || cs == "x-utf-8" || cs == "x-utf8" || cs == "unicode-1-1-utf-8") return "utf-8";
  if (cs == "latin1" || cs == "latin-1" || cs == "iso8859-1" || cs == "iso-8859-1" || cs == "iso_8859-1" ||
      cs == "iso8859_1" || cs == "l1" || cs == "iso-latin-1" || cs == "iso_8859-1:1987") {
    return "iso-8859-1";
  }
  if (cs == "win-1252" || cs == "cp1252" || cs == "windows1252" || cs == "win1252" || cs == "x-cp1252" ||
      cs == "cp-1252" || cs == "windows-1252") {
    return "windows-1252";
  }
  if (cs.starts_with("win-125") || cs.starts_with("cp125")) return "windows-125" + cs.substr(cs.size() - 1);
  if (cs == "gb2312" || cs == "gbk" || cs == "x-gbk" || cs == "cp936" || cs == "euc-cn" || cs == "x-euc-cn" ||
      cs == "gb_2312-80" || cs == "chinese") {
    return "gb18030";
  }
  if (cs == "ks_c_5601-1987" || cs == "euc-kr" || cs == "ks_c_5601" || cs == "ksc5601" || cs == "korean" ||
      cs == "x-windows-949" || cs == "windows-949") {
    return "cp949";
  }
  if (cs.starts_with("iso8859-") || cs.starts_with("iso_8859-")) cs = "iso-8859-" + cs.substr(cs.find('-') + 1);
  if (cs.starts_with("iso8859") && cs.size() > 7) cs = "iso-8859-" + cs.substr(7);
  // RFC 1556 visual/logical Hebrew and Arabic: the same bytes as the base set.
  if (cs == "iso-8859-8-i" || cs == "iso-8859-8-e" || cs == "iso-8859-6-i" || cs == "iso-8859-6-e") cs.resize(10);
  if (cs.starts_with("iso-8859-")) return cs;
  if (cs == "x-mac-roman" || cs == "mac" || cs == "macroman") return "macintosh";
  if (cs == "x-mac-cyrillic" || cs == "maccyrillic") return "mac-cyrillic";
  if (cs == "x-sjis" || cs == "sjis" || cs == "shift-jis" || cs == "ms_kanji" || cs == "csshiftjis") return "shift_jis";
  if (cs == "ibm437" || cs == "437" || cs == "cspc8codepage437") return "cp437";
  if (cs == "x-unknown" || cs == "unknown" || cs == "x-user-defined" || cs == "8bit" || cs == "default" ||
      cs == "charset" || cs == "unknown-8bit") {
    return "unknown-8bit";
  }
  return cs;
}

std::string ToUtf8(std::string_view bytes, std::string_view charset) {
  std::string cs = NormalizeCharset(charset);
  if (IsAscii(bytes) && !AsciiIncompatible(cs)) return std::string(bytes);
  if (cs == "utf-8") {
    if (IsValidUtf8(bytes)) return std::string(bytes);
    // Declared UTF-8 but no multi-byte sequence at all: it is latin text with
    // a wrong label; reading it as windows-1252 keeps every letter.
    return HasMultibyteSequence(bytes) ? ForceUtf8(bytes) : Windows1252ToUtf8(bytes);
  }
  if (cs == "us-ascii" || cs == "unknown-8bit") {
    // 8-bit bytes under us-ascii (or no charset): RFC 6532 senders send UTF-8,
    // older ones latin1 / windows-1252.
    return IsValidUtf8(bytes) ? std::string(bytes) : Windows1252ToUtf8(bytes);
  }
  if (cs == "iso-8859-1" || cs == "windows-1252") return Windows1252ToUtf8(bytes);

  std::string out;
  if (!IsIconvCharset(cs)) return IsValidUtf8(bytes) ? std::string(bytes) : Windows1252ToUtf8(bytes);
  if (IconvToUtf8(bytes, cs, false, out)) return ForceUtf8(out);
  for (const std::string& superset : Supersets(cs)) {
    if (IconvToUtf8(bytes, superset, false, out)) return ForceUtf8(out);
  }
  if (IconvToUtf8(bytes, cs, true, out)) return ForceUtf8(out);
  // iconv does not know the label: treat like unknown-8bit.
  return IsValidUtf8(bytes) ? std::string(bytes) : Windows1252ToUtf8(bytes);
}

}  // namespace mailhook::mime
