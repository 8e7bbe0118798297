#pragma once
/// MIME header values with parameters (Content-Type, Content-Disposition):
/// splitting them into a type and raw Params, and decoding one parameter's
/// value (RFC 2231 charsets and continuations, RFC 2047 words in quotes).
///
/// Pure functions, thread-safe, never fail: malformed input gives the best
/// reading (an unterminated quote runs to the end), results are valid UTF-8.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mime/part_tree.h"

namespace mailhook::mime {

/// A parsed Content-Type: lowercased type and subtype, raw params.
struct ContentType {
  std::string type;
  std::string subtype;
  std::vector<Param> params;
};

/// Parses `type/subtype; a=b; c="d"`. A missing or invalid type/subtype
/// gives text/plain (RFC 2045 5.2), params still parsed.
ContentType ParseContentType(std::string_view value);

/// A parsed Content-Disposition: lowercased type ("attachment", "inline"),
/// raw params.
struct Disposition {
  std::string type;
  std::vector<Param> params;
};

/// Parses `attachment; filename="x"`.
Disposition ParseDisposition(std::string_view value);

/// Splits `; a=b; c="d"` into Params: names lowercased and trimmed, quoted
/// values unquoted (backslash escapes undone), nothing else decoded.
std::vector<Param> ParseParams(std::string_view text);

/// The decoded value of parameter `name` (lowercase) or nullopt when absent:
///  - RFC 2231: `name*=utf-8''%E2%82%AC`, continuations `name*0*=`, `name*1=`
///    (encoded and plain pieces mixed), charset from the first piece;
///    a `name*` form wins over a plain `name`;
///  - plain values: RFC 2047 encoded words decoded (not standard inside
///    quotes, but what many senders do);
///  - raw 8-bit bytes: UTF-8 kept, else read in `fallback_charset` (the
///    part's charset) when given, else windows-1252.
std::optional<std::string> DecodeParam(const std::vector<Param>& params, std::string_view name,
                                       std::string_view fallback_charset = "");

/// The raw value of parameter `name` (no decoding), or nullopt.
std::optional<std::string> RawParam(const std::vector<Param>& params, std::string_view name);

}  // namespace mailhook::mime
