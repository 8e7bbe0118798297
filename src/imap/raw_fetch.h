#pragma once
/// Pieces of FETCH responses read by hand (RFC 3501 §7.4.2), for the items
/// libetpan 1.9 cannot parse (BINARY and BINARY.SIZE, RFC 3516). Pure text
/// functions: Session reads the lines and literals and keeps the state.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace mailhook::imap::rawfetch {

/// "* 12 FETCH (..." -> 12; nullopt for any other line.
std::optional<uint32_t> FetchNumber(std::string_view line);

/// The value of the item "UID n" in `text`, matched as a whole item: "UID 7"
/// is not read from "UID 71", "XUID 7" or "UID 7x". nullopt when absent or
/// out of range.
std::optional<uint32_t> UidItem(std::string_view text);

/// Where the value of `item` (e.g. "BINARY[1]") starts in `text`, the item
/// matched whole (after "(" or " ", followed by one space); npos when absent.
size_t ItemValue(std::string_view text, std::string_view item);

/// The size announced by a literal ("{n}" or literal8 "~{n}") that ends
/// `line`; nullopt when the line does not end with one.
std::optional<uint64_t> TrailingLiteral(std::string_view line);

/// The contents of the quoted string at the start of `text` (RFC 3501 §4.3,
/// backslash escapes undone); nullopt when `text` does not start with one.
std::optional<std::string> LeadingQuoted(std::string_view text);

}  // namespace mailhook::imap::rawfetch
