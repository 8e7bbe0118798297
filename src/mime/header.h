#pragma once
/// RFC 5322 header parsing for the Extractor and the local MIME parser:
/// header blocks into fields, RFC 2047 encoded words, address lists,
/// message-id lists and dates.
///
/// All functions are pure and thread-safe. None fails: malformed input gives
/// the best reading a mail client would make (an unparsable date is nullopt,
/// a broken encoded word is kept as written), and every returned string is
/// valid UTF-8.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mime/message.h"

namespace mailhook::mime {

/// One header field: the name as sent and the unfolded value (line breaks
/// before continuation whitespace removed, leading whitespace trimmed, raw
/// 8-bit bytes kept as they are).
struct HeaderField {
  std::string name;
  std::string value;
};

/// Splits a header block (up to, not including, the empty line; LF or CRLF)
/// into fields in order. Lines that are neither a field nor a continuation
/// are skipped; parsing stops at the first empty line.
std::vector<HeaderField> ParseHeaderBlock(std::string_view block);

/// The value of the first field named `name` (case-insensitive), or nullopt.
std::optional<std::string> FirstHeader(const std::vector<HeaderField>& fields, std::string_view name);

/// The values of every field named `name` (case-insensitive), in order.
std::vector<std::string> AllHeaders(const std::vector<HeaderField>& fields, std::string_view name);

/// Decodes unstructured header text to UTF-8 (RFC 2047 encoded words B and
/// Q, whitespace between adjacent encoded words dropped per RFC 2047 6.2,
/// multi-byte characters split across adjacent words rejoined, broken words
/// kept as written; raw 8-bit text per RFC 6532 kept when it is UTF-8, else
/// read as windows-1252).
std::string DecodeHeaderText(std::string_view raw);

/// Parses an address-list (RFC 5322 3.4): display names (decoded), quoted
/// strings, comments (ignored), groups (flattened, the group name dropped:
/// `undisclosed-recipients:;` gives nothing), angle addresses, bare
/// addresses. The local part is re-quoted only when it needs quotes.
std::vector<Address> ParseAddressList(std::string_view raw);

/// Every `<...>` token in the text (In-Reply-To, References, Message-ID),
/// brackets kept, whitespace inside removed.
std::vector<std::string> ParseMessageIds(std::string_view raw);

/// The Message-ID: the first `<...>` token, else the trimmed raw value
/// (nullopt when empty).
std::optional<std::string> ParseMessageId(std::string_view raw);

/// Parses an RFC 5322 date (with obsolete forms: two-digit years, named and
/// military zones, missing seconds or weekday) into RFC 3339 UTC
/// "2026-11-26T06:59:58Z". A missing or unknown zone is taken as UTC
/// (RFC 5322 4.3). Unparsable → nullopt.
std::optional<std::string> ParseDate(std::string_view raw);

/// Formats seconds since the Unix epoch as RFC 3339 UTC.
std::string FormatRfc3339(int64_t unix_seconds);

}  // namespace mailhook::mime
