#pragma once
/// Decoders for MIME bodies: Content-Transfer-Encodings (base64,
/// quoted-printable, uuencode) and charset conversion to UTF-8.
///
/// All functions are pure, thread-safe and never fail: bad input is decoded
/// as far as it goes (tolerant, like mail clients), and text never leaves
/// these functions as invalid UTF-8 (undecodable bytes become U+FFFD or are
/// read as windows-1252; text is never dropped).

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace mailhook::mime {

/// Base64 (RFC 2045 6.8). Characters outside the alphabet (line breaks,
/// spaces, garbage) are skipped; '=' ends a quantum; a trailing partial
/// quantum of 2 or 3 characters still yields its bytes (bad padding).
std::string DecodeBase64(std::string_view in);

/// Quoted-printable (RFC 2045 6.7): soft line breaks ("=" at end of line,
/// also with trailing whitespace), upper- or lowercase hex, invalid escapes
/// kept literally. `header` = the RFC 2047 Q variant ("_" is a space).
std::string DecodeQuotedPrintable(std::string_view in, bool header = false);

/// uuencode ("begin MODE NAME" ... "end"); text before "begin" is ignored.
/// Without a "begin" line the input is returned unchanged.
std::string DecodeUuencode(std::string_view in);

/// Undoes a Content-Transfer-Encoding (lowercased or not). 7bit, 8bit,
/// binary, unknown or empty: the bytes as they are.
std::string DecodeTransfer(std::string_view body, std::string_view encoding);

/// True when `encoding` is one DecodeTransfer undoes (base64,
/// quoted-printable, uuencode); false for 7bit, 8bit, binary, unknown, empty.
bool HasTransferEncoding(std::string_view encoding);

/// Undoes a Content-Transfer-Encoding piece by piece, for bodies too large to
/// hold twice: feeding a body in chunks of any size gives exactly the bytes
/// DecodeTransfer gives for the whole. Base64 carries its partial quantum
/// between chunks; quoted-printable holds back the last incomplete line
/// (decoding is line-local); uuencode, rare and line-framed with a "begin"
/// that may never come, is buffered and decoded at Finish.
class TransferDecoder {
 public:
  explicit TransferDecoder(std::string_view encoding);

  /// Appends the decoded bytes of `chunk` that are complete to `out`.
  void Feed(std::string_view chunk, std::string& out);
  /// Appends what is left; the decoder is then spent.
  void Finish(std::string& out);

 private:
  enum class Kind { kIdentity, kBase64, kQuotedPrintable, kUuencode };
  Kind kind_;
  uint32_t acc_ = 0;  // base64: bits of the current quantum
  int n_ = 0;         // base64: characters in it
  std::string held_;  // quoted-printable: the incomplete line; uuencode: everything
};

/// True when `s` is well-formed UTF-8 (no overlongs, no surrogates).
bool IsValidUtf8(std::string_view s);

/// Returns `s` with every ill-formed UTF-8 sequence replaced by U+FFFD.
std::string ForceUtf8(std::string_view s);

/// windows-1252 → UTF-8 for every byte (the 5 undefined bytes map to the C1
/// control of the same value, as WHATWG does). Never fails.
std::string Windows1252ToUtf8(std::string_view s);

/// Normalises a charset label: trims, unquotes, lowercases, and maps common
/// misspellings and lying labels to what iconv should use ("utf8" → "utf-8",
/// "latin1" → "iso-8859-1", "win-1252" → "windows-1252", "gb2312" →
/// "gb18030", "ks_c_5601-1987" → "cp949"). Empty input → "us-ascii".
std::string NormalizeCharset(std::string_view label);

/// The charset names (as NormalizeCharset gives them) that iconv is ever
/// asked to open: the IANA names and aliases real mail uses. A sender's label
/// outside this list is treated as unknown (never reaches iconv).
std::span<const std::string_view> IconvCharsets();

/// True when `normalized` (a NormalizeCharset result) is in IconvCharsets().
bool IsIconvCharset(std::string_view normalized);

/// Converts text in `charset` to UTF-8. Rules, in order:
///  - us-ascii (the default for an absent charset) and unknown-8bit /
///    unknown labels: valid UTF-8 is kept as is, anything else is read as
///    windows-1252 (RFC 6532 senders and latin1 bodies without a charset);
///  - iso-8859-1 is read as windows-1252 (a superset; what browsers do);
///  - utf-8: ill-formed sequences become U+FFFD, unless the text has no
///    multi-byte sequence at all, when it is read as windows-1252;
///  - a label in IconvCharsets() goes through iconv (with a superset first
///    tried when the label is known to lie, e.g. GB2312 → GB18030); bytes
///    iconv rejects become U+FFFD;
///  - any other label is unknown: as unknown-8bit.
std::string ToUtf8(std::string_view bytes, std::string_view charset);

}  // namespace mailhook::mime
