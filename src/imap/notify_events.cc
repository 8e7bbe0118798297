#include "imap/notify_events.h"

#include <cctype>

#include "util/strings.h"

namespace mailhook::imap::notify {
namespace {

using util::Error;
using util::RetryClass;

// How deep an unknown extended item's value may nest before the response is
// called hostile (RFC 4466 tagged-ext-val; real ones are one or two levels).
constexpr int kMaxSkipDepth = 16;

bool IsAtomSpecial(unsigned char c) {
  // RFC 3501 §9 atom-specials, plus 8-bit octets (not CHARs).
  return c <= 0x20 || c >= 0x7f || c == '(' || c == ')' || c == '{' || c == '%' || c == '*' || c == '"' || c == '\\' ||
         c == ']';
}

/// Reads IMAP tokens from one response, left to right. Every reader returns
/// false (or nullopt) on a syntax error and leaves the position undefined:
/// the caller then refuses the whole response.
class Cursor {
 public:
  explicit Cursor(std::string_view text) : text_(text) {}

  bool AtEnd() const { return pos_ >= text_.size(); }
  char Peek() const { return AtEnd() ? '\0' : text_[pos_]; }
  bool Eat(char c) {
    if (Peek() != c || AtEnd()) return false;
    ++pos_;
    return true;
  }
  void SkipSpaces() {
    while (!AtEnd() && text_[pos_] == ' ') ++pos_;
  }
  /// A case-insensitive keyword followed by a space.
  bool Keyword(std::string_view word) {
    if (text_.size() - pos_ < word.size() + 1) return false;
    if (!util::EqualsIgnoreCase(text_.substr(pos_, word.size()), word) || text_[pos_ + word.size()] != ' ') {
      return false;
    }
    pos_ += word.size() + 1;
    return true;
  }
  /// ASTRING-CHARs (atom chars and ']'); `extra` allows '\\' first (flags).
  std::optional<std::string> Atom(bool allow_bracket = true) {
    size_t start = pos_;
    while (!AtEnd()) {
      unsigned char c = static_cast<unsigned char>(text_[pos_]);
      if (IsAtomSpecial(c) && !(allow_bracket && c == ']')) break;
      ++pos_;
    }
    if (pos_ == start) return std::nullopt;
    return std::string(text_.substr(start, pos_ - start));
  }
  std::optional<std::string> Quoted() {
    if (!Eat('"')) return std::nullopt;
    std::string out;
    while (!AtEnd()) {
      char c = text_[pos_++];
      if (c == '"') return out;
      if (c == '\r' || c == '\n') return std::nullopt;
      if (c == '\\') {
        if (AtEnd()) return std::nullopt;
        c = text_[pos_++];
        // RFC 3501 quoted-specials: only `"` and `\` may be escaped.
        if (c != '"' && c != '\\') return std::nullopt;
      }
      out += c;
    }
    return std::nullopt;  // unterminated
  }
  std::optional<std::string> Literal() {
    if (!Eat('{')) return std::nullopt;
    uint64_t n = 0;
    size_t digits = 0;
    while (!AtEnd() && std::isdigit(static_cast<unsigned char>(Peek()))) {
      n = n * 10 + static_cast<uint64_t>(text_[pos_++] - '0');
      if (++digits > 18) return std::nullopt;  // past any response we accept
    }
    if (digits == 0 || !Eat('}') || !Eat('\r') || !Eat('\n')) return std::nullopt;
    if (n > text_.size() - pos_) return std::nullopt;
    std::string out(text_.substr(pos_, n));
    pos_ += n;
    return out;
  }
  std::optional<std::string> AString() {
    if (Peek() == '"') return Quoted();
    if (Peek() == '{') return Literal();
    return Atom();
  }
  /// RFC 3501 mailbox: an astring; "INBOX" in any case means INBOX.
  std::optional<std::string> Mailbox() {
    auto name = AString();
    if (name && util::EqualsIgnoreCase(*name, "INBOX")) return std::string("INBOX");
    return name;
  }
  /// A 32-bit number (RFC 3501 number); false past UINT32_MAX.
  std::optional<uint32_t> Number() {
    uint64_t n = 0;
    size_t start = pos_;
    while (!AtEnd() && std::isdigit(static_cast<unsigned char>(Peek()))) {
      n = n * 10 + static_cast<uint64_t>(text_[pos_++] - '0');
      if (n > UINT32_MAX) return std::nullopt;
    }
    if (pos_ == start) return std::nullopt;
    return static_cast<uint32_t>(n);
  }
  /// Any value: atom/number, quoted, literal or a parenthesised list of them.
  bool SkipValue(int depth = 0) {
    if (depth > kMaxSkipDepth) return false;
    if (Peek() != '(') return AString().has_value();
    ++pos_;
    for (SkipSpaces(); !Eat(')'); SkipSpaces()) {
      if (AtEnd() || !SkipValue(depth + 1)) return false;
    }
    return true;
  }
  /// Nothing but spaces left.
  bool Finished() {
    SkipSpaces();
    return AtEnd();
  }

 private:
  std::string_view text_;
  size_t pos_ = 0;
};

Error Unreadable(std::string_view what, std::string_view response) {
  // The start of the response, printable only: enough to recognise it.
  std::string shown;
  for (char c : response.substr(0, 120)) shown += (c >= 0x20 && c < 0x7f) ? c : '?';
  if (response.size() > 120) shown += "...";
  return Error("imap.unreadable_response", RetryClass::kBackoff,
               "the server sent a " + std::string(what) + " response mailhook cannot read: \"" + shown +
                   "\"; the session is dropped and the account resynced");
}

bool ParseFlags(Cursor& c, std::vector<std::string>& flags) {
  if (!c.Eat('(')) return false;
  for (c.SkipSpaces(); !c.Eat(')'); c.SkipSpaces()) {
    bool system = c.Eat('\\');
    auto atom = c.Atom(false);
    if (!atom) return false;
    flags.push_back(system ? "\\" + *atom : *atom);
  }
  return true;
}

// RFC 5258 mbox-list-extended: ( tag SP value ... ); only OLDNAME is kept.
bool ParseExtended(Cursor& c, std::optional<std::string>& old_name) {
  if (!c.Eat('(')) return false;
  for (c.SkipSpaces(); !c.Eat(')'); c.SkipSpaces()) {
    auto tag = c.AString();
    if (!tag || !c.Eat(' ')) return false;
    if (util::EqualsIgnoreCase(*tag, "OLDNAME")) {
      // RFC 5465 §5.4: ("OLDNAME" ("old name")).
      if (!c.Eat('(')) return false;
      c.SkipSpaces();
      old_name = c.Mailbox();
      c.SkipSpaces();
      if (!old_name || !c.Eat(')')) return false;
    } else if (!c.SkipValue()) {
      return false;
    }
  }
  return true;
}

}  // namespace

bool ListEntry::HasFlag(std::string_view flag) const {
  for (const auto& f : flags) {
    if (util::EqualsIgnoreCase(f, flag)) return true;
  }
  return false;
}

bool ListEntry::Selectable() const { return !HasFlag("\\NoSelect") && !HasFlag("\\NonExistent"); }

util::Result<std::optional<ListEntry>> ParseList(std::string_view response) {
  Cursor c(response);
  if (!c.Eat('*') || !c.Eat(' ') || !c.Keyword("LIST")) return std::optional<ListEntry>();
  ListEntry entry;
  if (!ParseFlags(c, entry.flags) || !c.Eat(' ')) return Unreadable("LIST", response);
  // The hierarchy delimiter: one quoted character, or NIL.
  if (c.Peek() == '"') {
    auto delimiter = c.Quoted();
    if (!delimiter || delimiter->size() != 1) return Unreadable("LIST", response);
  } else if (auto nil = c.Atom(); !nil || !util::EqualsIgnoreCase(*nil, "NIL")) {
    return Unreadable("LIST", response);
  }
  if (!c.Eat(' ')) return Unreadable("LIST", response);
  auto name = c.Mailbox();
  if (!name) return Unreadable("LIST", response);
  entry.name = std::move(*name);
  if (c.Eat(' ')) {
    c.SkipSpaces();
    if (!c.AtEnd() && !ParseExtended(c, entry.old_name)) return Unreadable("LIST", response);
  }
  if (!c.Finished()) return Unreadable("LIST", response);
  return std::optional<ListEntry>(std::move(entry));
}

util::Result<std::optional<StatusEntry>> ParseStatus(std::string_view response) {
  Cursor c(response);
  if (!c.Eat('*') || !c.Eat(' ') || !c.Keyword("STATUS")) return std::optional<StatusEntry>();
  StatusEntry entry;
  auto name = c.Mailbox();
  if (!name) return Unreadable("STATUS", response);
  entry.name = std::move(*name);
  c.SkipSpaces();
  if (!c.Eat('(')) return Unreadable("STATUS", response);
  for (c.SkipSpaces(); !c.Eat(')'); c.SkipSpaces()) {
    auto item = c.Atom();
    if (!item || !c.Eat(' ')) return Unreadable("STATUS", response);
    uint32_t* field = nullptr;
    if (util::EqualsIgnoreCase(*item, "MESSAGES")) field = &entry.status.messages;
    if (util::EqualsIgnoreCase(*item, "UIDNEXT")) field = &entry.status.uidnext;
    if (util::EqualsIgnoreCase(*item, "UIDVALIDITY")) field = &entry.status.uidvalidity;
    if (field) {
      auto n = c.Number();
      if (!n) return Unreadable("STATUS", response);
      *field = *n;
    } else if (!c.SkipValue()) {  // UNSEEN, HIGHESTMODSEQ (64-bit), SIZE, MAILBOXID (...)
      return Unreadable("STATUS", response);
    }
  }
  if (!c.Finished()) return Unreadable("STATUS", response);
  return std::optional<StatusEntry>(std::move(entry));
}

util::Result<std::vector<FolderEvent>> EventsFrom(std::string_view response) {
  std::vector<FolderEvent> events;
  auto status = ParseStatus(response);
  if (!status.ok()) return status.error();
  if (status->has_value()) {
    events.push_back({FolderEvent::Kind::kChanged, (*status)->name, (*status)->status});
    return events;
  }
  auto list = ParseList(response);
  if (!list.ok()) return list.error();
  if (!list->has_value()) return events;
  ListEntry& entry = **list;
  if (entry.old_name) events.push_back({FolderEvent::Kind::kDeleted, *entry.old_name, std::nullopt});
  const bool gone = entry.HasFlag("\\NonExistent");
  events.push_back({gone ? FolderEvent::Kind::kDeleted : FolderEvent::Kind::kCreated, entry.name, std::nullopt});
  return events;
}

std::optional<std::string> QuoteMailbox(std::string_view name) {
  std::string out = "\"";
  for (char c : name) {
    const auto u = static_cast<unsigned char>(c);
    if (u == 0 || u == '\r' || u == '\n' || u >= 0x80) return std::nullopt;
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

std::optional<std::string> LiteralPlus(std::string_view name) {
  for (char c : name) {
    if (c == '\0' || c == '\r' || c == '\n') return std::nullopt;
  }
  return "{" + std::to_string(name.size()) + "+}\r\n" + std::string(name);
}

std::optional<uint64_t> TrailingLiteral(std::string_view line) {
  if (!line.ends_with('}')) return std::nullopt;
  size_t open = line.rfind('{');
  if (open == std::string_view::npos || open + 2 > line.size() - 1) return std::nullopt;
  uint64_t n = 0;
  for (size_t i = open + 1; i + 1 < line.size(); ++i) {
    if (!std::isdigit(static_cast<unsigned char>(line[i]))) return std::nullopt;
    n = n > UINT64_MAX / 100 ? UINT64_MAX / 10 : n * 10 + static_cast<uint64_t>(line[i] - '0');
  }
  return n;
}

}  // namespace mailhook::imap::notify
