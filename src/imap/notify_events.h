#pragma once
/// notify_events: the untagged responses of an account-level connection read
/// by hand — `* STATUS` (RFC 3501 §7.2.4) and `* LIST` (§7.2.2, with RFC 5258
/// extended items and RFC 5465 §5.4 OLDNAME) — and the astring encoding of
/// mailbox names for commands. libetpan keeps only the last `* STATUS` of a
/// response (DESIGN.md), so Session reads the lines itself and hands each
/// whole response here. Pure text functions: no I/O, no libetpan.
///
/// A "response" is one untagged response as it came off the wire without
/// its final CRLF: each literal inline as `{n}` CRLF and its n bytes, the
/// line going on after them.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "imap/mailbox.h"
#include "util/result.h"

namespace mailhook::imap::notify {

/// The most bytes one untagged response may have on an account-level
/// connection (names, flags, a few numbers): a longer one is refused and the
/// session dropped. Real ones are under a kilobyte.
inline constexpr size_t kMaxResponseBytes = 64 * 1024;
/// The most events one IdleForEvents call gathers before it gives up on the
/// session (the caller then resyncs every folder): a server reports each
/// watched folder about once per 500 ms debounce, far below this.
inline constexpr size_t kMaxEventsPerWait = 10000;

/// One `* LIST` response.
struct ListEntry {
  std::vector<std::string> flags;       ///< as sent: "\\HasNoChildren", "\\NonExistent"
  std::string name;                     ///< as sent (modified UTF-7 untouched); "INBOX" in any case -> "INBOX"
  std::optional<std::string> old_name;  ///< RFC 5465 §5.4: the name before a rename
  /// Case-insensitive flag test ("\\NoSelect").
  bool HasFlag(std::string_view flag) const;
  /// False for \NoSelect and \NonExistent names: no STATUS or SELECT works on them.
  bool Selectable() const;
};

/// One `* STATUS` response.
struct StatusEntry {
  std::string name;
  FolderStatus status;  ///< items the server left out stay 0
};

/// The `* LIST` in `response`; nullopt when it is another response; an error
/// (imap.unreadable_response) when it is a LIST that does not parse.
util::Result<std::optional<ListEntry>> ParseList(std::string_view response);

/// The `* STATUS` in `response`, as ParseList.
util::Result<std::optional<StatusEntry>> ParseStatus(std::string_view response);

/// What a NOTIFY connection's untagged response says about folders:
/// STATUS -> kChanged (with its status); LIST -> kCreated, or kDeleted with
/// \NonExistent; a LIST with OLDNAME -> kDeleted(old) then the new name.
/// Other responses (`* OK Still here`, `* BYE`...) give none.
util::Result<std::vector<FolderEvent>> EventsFrom(std::string_view response);

/// `name` as an IMAP astring for a command line: a quoted string with `\`
/// and `"` escaped. nullopt for names a quoted string cannot carry (CR, LF,
/// NUL, 8-bit octets: RFC 3501 §9 QUOTED-CHAR); see LiteralPlus.
std::optional<std::string> QuoteMailbox(std::string_view name);

/// `name` as a non-synchronizing literal (RFC 7888 LITERAL+): `{n+}` CRLF
/// and the bytes, for names QuoteMailbox refuses; nullopt for CR, LF or NUL.
std::optional<std::string> LiteralPlus(std::string_view name);

/// The size of the literal (`{n}`) that ends `line`, the rest of the
/// response following it; nullopt when the line does not end with one.
/// Sizes saturate (a hostile one is refused by its reader's bound).
std::optional<uint64_t> TrailingLiteral(std::string_view line);

}  // namespace mailhook::imap::notify
