#pragma once
/// PartTree: the MIME structure of one message in our own types. Built either
/// from IMAP BODYSTRUCTURE (src/imap/bodystructure.cc) or from a local parse
/// of a file (mime/mime_parser.h); the Extractor only ever sees this.

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace mailhook::mime {

/// Parts read per message unless configured otherwise (`limits.max_parts`).
inline constexpr uint32_t kDefaultMaxParts = 1000;

/// A MIME parameter (Content-Type or Content-Disposition) as the source gave
/// it: name lowercased, value still raw (RFC 2231/2047 not yet decoded,
/// `name*0*` pieces not yet merged).
struct Param {
  std::string name;
  std::string value;
};

/// One node of the MIME tree.
struct Part {
  /// IMAP section of this part: "1", "1.2", "2.1.3". The top-level multipart
  /// of a message is "" (its children are "1", "2"...); a single-part message's
  /// body is "1". Sections are what SectionSource is asked for.
  std::string section;
  std::string type = "text";               ///< lowercased, e.g. "text", "multipart"
  std::string subtype = "plain";           ///< lowercased, e.g. "plain", "mixed"
  std::vector<Param> params;               ///< Content-Type parameters
  std::optional<std::string> id;           ///< Content-ID, as sent (with <>)
  std::optional<std::string> description;  ///< Content-Description, raw
  std::string encoding = "7bit";           ///< lowercased Content-Transfer-Encoding
  uint64_t size = 0;                       ///< encoded body size in octets (as IMAP reports)
  std::optional<std::string> disposition;  ///< lowercased "attachment"/"inline"
  std::vector<Param> disposition_params;
  /// Children of a multipart. A message/rfc822 part is a leaf here: forwarded
  /// mail is listed as an attachment, never descended into.
  std::vector<Part> children;
  /// Children of this multipart that exist in the message but were counted,
  /// not built (a part cap: the local parser's max_parts); they come after
  /// `children` in the message.
  uint64_t children_omitted = 0;

  bool IsMultipart() const { return type == "multipart"; }
};

}  // namespace mailhook::mime
