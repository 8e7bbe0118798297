#include "mime/mail_builder.h"

#include <algorithm>
#include <ctime>
#include <utility>

#include "mime/decode.h"
#include "mime/extractor.h"
#include "mime/idna.h"
#include "util/base64.h"

namespace mailhook::mime {
namespace {

// RFC 5322 2.1.1: lines MUST be at most 998 octets and SHOULD be at most 78.
constexpr size_t kMaxLine = 998;
constexpr size_t kFoldAt = 78;
// UTF-8 bytes per encoded word: 39 bytes are 52 base64 characters, a
// 64-character word, so "Subject: " or a continuation space plus one word
// stays under 78 (RFC 2047 2: a word is at most 75 characters).
constexpr size_t kEncodedWordBytes = 39;
// RFC 5321 4.5.3.1.3: a path is at most 256 octets with its angle brackets.
constexpr size_t kMaxAddress = 254;
// A message id of more is not one a mail system made; leaving it out keeps
// the header line under 998 octets.
constexpr size_t kMaxMessageId = 250;

util::Error Fail(std::string code, std::string message) {
  return util::Error(std::move(code), util::RetryClass::kNeedsOperator, std::move(message));
}

bool AllAscii(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; });
}

// RFC 5322 3.2.3 atext.
bool IsAtextChar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-/=?^_`{|}~").find(c) != std::string_view::npos;
}

// Header text taken from an event or a template: invalid UTF-8 replaced, and
// every control (CR and LF above all: header injection) made a space.
std::string CleanHeaderText(std::string_view s) {
  std::string out = ForceUtf8(s);
  for (char& c : out) {
    const auto b = static_cast<unsigned char>(c);
    if (b < 0x20 || b == 0x7f) c = ' ';
  }
  return out;
}

// A piece of a header value that is never broken, with the white space
// before it: folding (RFC 5322 2.2.3) puts a CRLF before that white space.
struct FoldToken {
  std::string space = " ";
  std::string text;
};

// "Name: value" with CRLF, folded before a token that would pass 78 octets.
std::string FoldHeader(std::string_view name, const std::vector<FoldToken>& tokens) {
  std::string out(name);
  out += ':';
  size_t column = out.size();
  bool line_has_token = false;
  for (const FoldToken& t : tokens) {
    if (line_has_token && column + t.space.size() + t.text.size() > kFoldAt) {
      out += "\r\n";
      column = 0;
    }
    out += t.space;
    out += t.text;
    column += t.space.size() + t.text.size();
    line_has_token = true;
  }
  out += "\r\n";
  return out;
}

// RFC 2047 B words in UTF-8, each at most kEncodedWordBytes of text and never
// ending inside a character (RFC 2047 5: each word must decode on its own).
// Decoders drop the white space between adjacent words (RFC 2047 6.2).
std::vector<FoldToken> EncodedWords(std::string_view utf8) {
  std::vector<FoldToken> words;
  while (!utf8.empty()) {
    size_t n = std::min(kEncodedWordBytes, utf8.size());
    while (n > 0 && n < utf8.size() && (static_cast<unsigned char>(utf8[n]) & 0xC0) == 0x80) --n;
    if (n == 0) n = std::min(kEncodedWordBytes, utf8.size());  // not UTF-8 after all: cut anywhere
    words.push_back({" ", "=?UTF-8?B?" + util::Base64Encode(utf8.substr(0, n)) + "?="});
    utf8.remove_prefix(n);
  }
  return words;
}

// Unstructured text (Subject): the words as written when it is plain ASCII
// that folds, else encoded words. "=?" is encoded too, so that no text is
// read back as an encoded word it never was.
std::vector<FoldToken> UnstructuredTokens(std::string_view raw) {
  const std::string text = CleanHeaderText(raw);
  std::vector<FoldToken> tokens;
  bool encode = !AllAscii(text) || text.find("=?") != std::string::npos;
  size_t i = 0;
  while (!encode && i < text.size()) {
    const size_t word = text.find_first_not_of(' ', i);
    if (word == std::string::npos) break;  // trailing spaces are dropped, as readers trim them
    size_t end = text.find(' ', word);
    if (end == std::string::npos) end = text.size();
    if (end - word > kFoldAt - 2) encode = true;  // a word that cannot fold within 78
    tokens.push_back({i == 0 ? " " : text.substr(i, word - i), text.substr(word, end - word)});
    i = end;
  }
  if (encode) return EncodedWords(text);
  return tokens;
}

// A display name (RFC 5322 3.2.5 phrase): atoms as they are, a quoted string
// for other short ASCII, encoded words for the rest.
std::vector<FoldToken> PhraseTokens(std::string_view raw) {
  std::string name = CleanHeaderText(raw);
  const auto b = name.find_first_not_of(' ');
  if (b == std::string::npos) return {};
  name = name.substr(b, name.find_last_not_of(' ') - b + 1);
  if (!AllAscii(name) || name.find("=?") != std::string::npos || name.size() > 60) return EncodedWords(name);
  bool atoms = name.find("  ") == std::string::npos;
  for (char c : name) atoms = atoms && (c == ' ' || IsAtextChar(c));
  std::vector<FoldToken> tokens;
  if (atoms) {
    size_t i = 0;
    while (i < name.size()) {
      size_t end = name.find(' ', i);
      if (end == std::string::npos) end = name.size();
      tokens.push_back({" ", name.substr(i, end - i)});
      i = end + 1;
    }
    return tokens;
  }
  std::string quoted = "\"";
  for (char c : name) {
    if (c == '"' || c == '\\') quoted += '\\';
    quoted += c;
  }
  quoted += '"';
  return {{" ", quoted}};
}

util::Result<std::vector<FoldToken>> AddressListTokens(const std::vector<MailAddress>& list) {
  std::vector<FoldToken> tokens;
  for (size_t i = 0; i < list.size(); ++i) {
    auto address = EnvelopeAddress(list[i].address);
    if (!address) return address.error();
    std::vector<FoldToken> name = PhraseTokens(list[i].name);
    const std::string sep = i + 1 < list.size() ? "," : "";
    tokens.insert(tokens.end(), name.begin(), name.end());
    tokens.push_back({" ", name.empty() ? *address + sep : "<" + *address + ">" + sep});
  }
  return tokens;
}

// RFC 5322 3.6.4 msg-id, loosely: <...> of printable ASCII. The "@" is not
// required: old mailers wrote ids without one, and a reply to them should
// still thread.
bool IsMessageId(std::string_view id) {
  if (id.size() < 3 || id.size() > kMaxMessageId || id.front() != '<' || id.back() != '>') return false;
  const std::string_view inner = id.substr(1, id.size() - 2);
  return std::all_of(inner.begin(), inner.end(), [](char c) { return c > 0x20 && c < 0x7f && c != '<' && c != '>'; });
}

// CRLF for every CRLF, bare CR and bare LF (RFC 5322 2.3: CR and LF only
// together), with a line break at the end.
std::string NormalizeLineEnds(std::string_view s) {
  std::string out;
  out.reserve(s.size() + s.size() / 32 + 2);
  size_t i = 0;
  while (i < s.size()) {
    const size_t brk = s.find_first_of("\r\n", i);
    if (brk == std::string_view::npos) {
      out.append(s.substr(i));
      break;
    }
    out.append(s.substr(i, brk - i));
    out += "\r\n";
    i = brk + (s[brk] == '\r' && brk + 1 < s.size() && s[brk + 1] == '\n' ? 2 : 1);
  }
  if (out.size() < 2 || out.compare(out.size() - 2, 2, "\r\n") != 0) out += "\r\n";
  return out;
}

// Calls f(line) for each line of CRLF-terminated text, without the CRLF.
template <typename F>
void ForEachLine(std::string_view text, F f) {
  size_t i = 0;
  while (i < text.size()) {
    size_t end = text.find("\r\n", i);
    if (end == std::string_view::npos) end = text.size();
    f(text.substr(i, end - i));
    i = end + 2;
  }
}

// 7bit needs nothing of a reader: printable ASCII (and tab), lines of at
// most 78, no white space at a line end (some relays strip it) and no line
// starting "From " (mbox stores escape it as ">From ").
bool FitsSevenBit(std::string_view text) {
  bool fits = true;
  ForEachLine(text, [&](std::string_view line) {
    if (line.size() > kFoldAt || line.starts_with("From ")) fits = false;
    if (!line.empty() && (line.back() == ' ' || line.back() == '\t')) fits = false;
    for (char c : line) {
      const auto b = static_cast<unsigned char>(c);
      if (b >= 0x7f || (b < 0x20 && c != '\t')) fits = false;
    }
  });
  return fits;
}

bool QpLiteral(unsigned char c) { return c >= 33 && c <= 126 && c != '='; }

// RFC 2045 6.7: encoded lines of at most 76 characters with soft breaks,
// white space at a line end encoded, and an "F" that starts a line as =46 so
// no line starts "From ". `text` is CRLF-normalized and ends with CRLF.
std::string QuotedPrintable(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  ForEachLine(text, [&](std::string_view line) {
    size_t column = 0;
    for (size_t i = 0; i < line.size(); ++i) {
      const auto c = static_cast<unsigned char>(line[i]);
      const bool last = i + 1 == line.size();
      const bool from = column == 0 && line.substr(i).starts_with("From ");
      char piece[4] = {static_cast<char>(c), 0, 0, 0};
      if (from || !(QpLiteral(c) || ((c == ' ' || c == '\t') && !last))) {
        piece[0] = '=';
        piece[1] = kHex[c >> 4];
        piece[2] = kHex[c & 15];
      }
      const size_t n = piece[1] ? 3 : 1;
      // The last piece of a line may use column 76; any other leaves room for "=".
      if (column + n > (last ? 76 : 75)) {
        out += "=\r\n";
        column = 0;
        if (c == 'F' && line.substr(i).starts_with("From ")) {
          out += "=46";
          column = 3;
          continue;
        }
      }
      out.append(piece, n);
      column += n;
    }
    out += "\r\n";
  });
  return out;
}

// Base64 in lines of 76 characters (RFC 2045 6.8), ending with CRLF.
std::string Base64Lines(std::string_view bytes) {
  const std::string b64 = util::Base64Encode(bytes);
  std::string out;
  for (size_t i = 0; i < b64.size(); i += 76) {
    out.append(b64, i, 76);
    out += "\r\n";
  }
  return out;
}

// A MIME entity: header lines (each with CRLF) and a body ending with CRLF.
struct Entity {
  std::string headers;
  std::string body;
};

// A text/plain or text/html body. Quoted-printable costs 3 octets per byte
// to escape, base64 4 per 3: base64 when escapes are over a sixth of the
// text (Cyrillic, CJK), so neither is ever more than about a third larger.
Entity TextEntity(std::string_view subtype, std::string_view raw) {
  // Event text is valid UTF-8 already; checking is cheaper than rebuilding.
  const std::string text = NormalizeLineEnds(IsValidUtf8(raw) ? raw : ForceUtf8(raw));
  Entity e;
  e.headers = "Content-Type: text/" + std::string(subtype) + "; charset=utf-8\r\n";
  if (FitsSevenBit(text)) {
    e.headers += "Content-Transfer-Encoding: 7bit\r\n";
    e.body = text;
    return e;
  }
  const size_t escaped =
      std::count_if(text.begin(), text.end(), [](char c) { return static_cast<unsigned char>(c) >= 0x80; });
  if (escaped * 6 > text.size()) {
    e.headers += "Content-Transfer-Encoding: base64\r\n";
    e.body = Base64Lines(text);
  } else {
    e.headers += "Content-Transfer-Encoding: quoted-printable\r\n";
    e.body = QuotedPrintable(text);
  }
  return e;
}

// The original message of a forward, as message/rfc822 (RFC 2046 5.2.1:
// only 7bit, 8bit or binary). binary would need BINARYMIME (RFC 3030) and
// CHUNKING, which we do not assume; so an original that 8bit cannot carry
// (a line over 998 octets, a NUL) is refused and the caller forwards inline.
util::Result<Entity> AttachedEntity(std::string_view raw) {
  Entity e;
  e.body = NormalizeLineEnds(raw);
  bool eight_bit = false, unsafe = false;
  ForEachLine(e.body, [&](std::string_view line) {
    if (line.size() > kMaxLine) unsafe = true;
    for (char c : line) {
      if (c == '\0') unsafe = true;
      if (static_cast<unsigned char>(c) >= 0x80) eight_bit = true;
    }
  });
  if (unsafe) {
    return Fail("mail.attach_unsafe",
                "the original message has a line over 998 octets or a NUL byte, which message/rfc822 cannot carry "
                "(RFC 2046 5.2.1 forbids base64 there); forward it inline instead");
  }
  e.headers = "Content-Type: message/rfc822\r\nContent-Disposition: attachment\r\nContent-Transfer-Encoding: ";
  e.headers += eight_bit ? "8bit\r\n" : "7bit\r\n";
  return e;
}

// An original message/rfc822 cannot carry, as a file: base64 has no line or
// byte limits (RFC 2045 6.8), so any bytes arrive exactly as they were, and
// a mail client still opens original.eml as a message.
Entity OriginalFileEntity(std::string_view raw) {
  Entity e;
  e.headers =
      "Content-Type: application/octet-stream; name=\"original.eml\"\r\n"
      "Content-Disposition: attachment; filename=\"original.eml\"\r\nContent-Transfer-Encoding: base64\r\n";
  e.body = Base64Lines(raw);
  return e;
}

// A multipart entity. The boundary starts "=_", which quoted-printable and
// base64 bodies cannot contain; it derives from the Message-ID (same mail,
// same bytes) and is changed in the unlikely case a 7bit or attached body
// holds it.
Entity Multipart(std::string_view subtype, const std::vector<Entity>& parts, std::string_view seed) {
  std::string boundary;
  for (int n = 0;; ++n) {
    boundary = "=_mailhook_" +
               Sha256Hex(std::string(seed) + "/" + std::string(subtype) + "/" + std::to_string(n)).substr(0, 24);
    const bool clash = std::any_of(parts.begin(), parts.end(),
                                   [&](const Entity& p) { return p.body.find("--" + boundary) != std::string::npos; });
    if (!clash) break;
  }
  Entity e;
  e.headers = "Content-Type: multipart/" + std::string(subtype) + ";\r\n boundary=\"" + boundary + "\"\r\n";
  for (const Entity& p : parts) {
    // The CRLF before a delimiter belongs to the delimiter (RFC 2046 5.1.1),
    // so the part keeps its own final line break.
    e.body += "--" + boundary + "\r\n" + p.headers + "\r\n" + p.body + "\r\n";
  }
  e.body += "--" + boundary + "--\r\n";
  return e;
}

util::Result<Entity> BodyEntity(const OutgoingMail& mail) {
  if (!mail.text && !mail.html) return Fail("mail.no_body", "the mail has neither a text nor an html body");
  Entity body;
  if (mail.text && mail.html) {
    body = Multipart("alternative", {TextEntity("plain", *mail.text), TextEntity("html", *mail.html)}, mail.message_id);
  } else {
    body = mail.text ? TextEntity("plain", *mail.text) : TextEntity("html", *mail.html);
  }
  if (!mail.attached_message) return body;
  if (mail.original_as_file)
    return Multipart("mixed", {body, OriginalFileEntity(*mail.attached_message)}, mail.message_id);
  auto attached = AttachedEntity(*mail.attached_message);
  if (!attached && mail.unsafe_original_as_file && attached.error().code() == "mail.attach_unsafe") {
    attached = OriginalFileEntity(*mail.attached_message);
  }
  if (!attached) return attached.error();
  return Multipart("mixed", {body, *attached}, mail.message_id);
}

// In-Reply-To, References, Auto-Submitted: only well-formed values are
// written; an id that is not one is left out rather than mangled.
std::string ThreadingHeaders(const OutgoingMail& mail) {
  std::string out;
  if (IsMessageId(mail.in_reply_to)) out += FoldHeader("In-Reply-To", {{" ", mail.in_reply_to}});
  std::vector<FoldToken> refs;
  for (const std::string& id : mail.references) {
    if (IsMessageId(id)) refs.push_back({" ", id});
  }
  if (!refs.empty()) out += FoldHeader("References", refs);
  std::string auto_submitted = mail.auto_submitted;
  const bool token = !auto_submitted.empty() && std::all_of(auto_submitted.begin(), auto_submitted.end(),
                                                            [](char c) { return IsAtextChar(c) || c == '.'; });
  if (!token) auto_submitted = "auto-generated";
  // RFC 3834 5; X-Auto-Response-Suppress asks Exchange not to answer us
  // with its own auto-replies (the other half of loop protection).
  out += "Auto-Submitted: " + auto_submitted + "\r\nX-Auto-Response-Suppress: All\r\n";
  return out;
}

}  // namespace

util::Result<std::string> EnvelopeAddress(std::string_view address) {
  auto bad = [&](std::string_view why) {
    return Fail("mail.bad_address", "\"" + CleanHeaderText(address.substr(0, 100)) + "\" is not a mail address (" +
                                        std::string(why) + "); write it as local@domain");
  };
  for (char c : address) {
    const auto b = static_cast<unsigned char>(c);
    if (b <= 0x20 || b == 0x7f || c == '<' || c == '>' || c == ',' || c == ';') {
      return bad("white space, a control, or one of < > , ;");
    }
  }
  const size_t at = address.rfind('@');
  if (at == std::string_view::npos || at == 0 || at + 1 == address.size()) return bad("no local@domain");
  const std::string_view local = address.substr(0, at), domain = address.substr(at + 1);
  const bool quoted = local.size() >= 2 && local.front() == '"' && local.back() == '"';
  if (!AllAscii(local)) return bad("a non-ASCII local part needs SMTPUTF8, which is not used");
  if (!quoted) {
    if (!std::all_of(local.begin(), local.end(), [](char c) { return IsAtextChar(c) || c == '.'; })) {
      return bad("the local part has characters that need quoting");
    }
    if (local.front() == '.' || local.back() == '.' || local.find("..") != std::string_view::npos) {
      return bad("the local part has an empty dot-separated piece");
    }
  }
  std::string ascii_domain(domain);
  if (!AllAscii(domain)) {
    auto ascii = DomainToAscii(domain);
    if (!ascii && ascii.error().code() == "mail.bad_idn") return bad(ascii.error().message());
    if (!ascii) return ascii.error();  // libidn2 cannot be loaded: not the address's fault
    ascii_domain = std::move(*ascii);
  } else if (!(domain.front() == '[' && domain.back() == ']')) {
    const bool ok = std::all_of(domain.begin(), domain.end(), [](char c) {
      return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
             c == '_';
    });
    if (!ok || domain.front() == '.' || domain.back() == '.' || domain.find("..") != std::string_view::npos) {
      return bad("the domain is not a host name");
    }
  }
  std::string result = std::string(local) + "@" + ascii_domain;
  if (result.size() > kMaxAddress) return bad("over 254 octets");
  return result;
}

ReplyThreading ThreadReply(const std::optional<std::string>& message_id, const std::vector<std::string>& references,
                           const std::vector<std::string>& in_reply_to) {
  ReplyThreading t;
  if (!message_id || !IsMessageId(*message_id)) return t;
  t.in_reply_to = *message_id;
  std::vector<std::string> refs;
  for (const std::string& id : references.empty() && in_reply_to.size() == 1 ? in_reply_to : references) {
    if (IsMessageId(id)) refs.push_back(id);
  }
  refs.push_back(*message_id);
  if (refs.size() > kMaxReferences) refs.erase(refs.begin() + 1, refs.end() - (kMaxReferences - 1));
  t.references = std::move(refs);
  return t;
}

std::string ReplySubject(std::string_view subject) {
  size_t i = 0;
  while (i < subject.size() && (subject[i] == ' ' || subject[i] == '\t')) ++i;
  const std::string_view rest = subject.substr(i);
  if (rest.size() >= 3 && (rest[0] == 'R' || rest[0] == 'r') && (rest[1] == 'E' || rest[1] == 'e') && rest[2] == ':') {
    return std::string(subject);
  }
  return "Re: " + std::string(subject);
}

bool NeedsEightBitMime(std::string_view message) { return !AllAscii(message); }

std::string MakeMessageId(std::string_view seed, std::string_view domain) {
  std::string host = "mailhook.invalid";
  auto checked = EnvelopeAddress("x@" + std::string(domain));
  if (checked && checked->find('[') == std::string::npos) host = checked->substr(2);
  return "<" + Sha256Hex(seed).substr(0, 32) + ".mailhook@" + host + ">";
}

std::string FormatRfc5322Date(std::chrono::system_clock::time_point t) {
  static constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  const std::time_t secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s, %02d %s %04d %02d:%02d:%02d +0000", kDays[tm.tm_wday], tm.tm_mday,
                kMonths[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
  return buf;
}

util::Result<std::string> BuildMessage(const OutgoingMail& mail) {
  if (mail.to.empty()) return Fail("mail.no_recipient", "the mail has no To address");
  if (!IsMessageId(mail.message_id)) {
    return Fail("mail.bad_message_id", "the Message-ID must be <left@right> of printable ASCII (MakeMessageId)");
  }
  auto from = AddressListTokens({mail.from});
  if (!from) return from.error();
  auto to = AddressListTokens(mail.to);
  if (!to) return to.error();
  auto cc = AddressListTokens(mail.cc);
  if (!cc) return cc.error();
  auto body = BodyEntity(mail);
  if (!body) return body.error();

  std::string out = "Date: " + FormatRfc5322Date(mail.date) + "\r\n";
  out += FoldHeader("From", *from);
  out += FoldHeader("To", *to);
  if (!cc->empty()) out += FoldHeader("Cc", *cc);
  out += FoldHeader("Subject", UnstructuredTokens(mail.subject));
  out += "Message-ID: " + mail.message_id + "\r\n";
  out += ThreadingHeaders(mail);
  out += "MIME-Version: 1.0\r\n";
  out += body->headers;
  out += "\r\n";
  out += body->body;
  return out;
}

}  // namespace mailhook::mime
