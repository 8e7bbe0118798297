#pragma once
/// Small ASCII string helpers shared by every area: case folding and trimming
/// for protocol text (MIME headers, IMAP atoms, HTTP fields, config values).
/// They treat bytes ≥ 0x80 as opaque: no locale, no Unicode case folding.

#include <string>
#include <string_view>

namespace mailhook::util {

/// SP, HT, CR or LF: the white space of RFC 5322 folding and of config text.
constexpr bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

/// ASCII lower case of one byte.
constexpr char LowerChar(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

/// ASCII lower case of `s`.
std::string Lower(std::string_view s);

/// ASCII upper case of `s`.
std::string Upper(std::string_view s);

/// `s` without leading and trailing IsSpace() bytes.
std::string_view Trim(std::string_view s);

/// `s` without leading and trailing SP / HT: HTTP's optional white space
/// (RFC 9110 section 5.6.3), where CR and LF are never part of a field value.
std::string_view TrimOws(std::string_view s);

/// ASCII case-insensitive equality.
bool EqualsIgnoreCase(std::string_view a, std::string_view b);

/// True when the comma-separated list `list` (an HTTP field such as
/// Connection) has `token` as one of its members, ignoring case and OWS.
bool ListHasToken(std::string_view list, std::string_view token);

/// ASCII case-insensitive prefix test.
bool StartsWithIgnoreCase(std::string_view s, std::string_view prefix);

}  // namespace mailhook::util
