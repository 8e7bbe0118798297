#pragma once
/// MimeParser: a local RFC 5322 / RFC 2045-2046 parser that turns a whole
/// message in memory into the same Part tree the daemon builds from IMAP
/// BODYSTRUCTURE (same section numbers, same sizes as Dovecot reports), plus
/// the byte ranges of every section so a FileSectionSource can serve
/// BODY[section] and BODY[section.MIME] from memory. Used by `mailhook parse`.
///
/// Tolerant by design (mail in the wild is broken): LF or CRLF line ends,
/// a missing final boundary, boundaries with trailing whitespace, nested
/// multiparts, a missing Content-Type (text/plain; message/rfc822 inside
/// multipart/digest). A multipart without a usable boundary becomes a leaf
/// with no children. message/rfc822 parts are leaves (never descended into).

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>

#include "mime/part_tree.h"
#include "mime/section_source.h"
#include "util/result.h"

namespace mailhook::mime {

/// Where a section's bytes are, as offsets into ParsedMessage::data.
struct SectionRange {
  size_t header_begin = 0;
  size_t header_end = 0;  ///< excludes the empty line
  size_t body_begin = 0;
  size_t body_end = 0;
};

/// A parsed message: owns its bytes; `root` and `ranges` index into them.
struct ParsedMessage {
  std::string data;
  Part root;
  std::string header_block;  ///< the top-level header block, as IMAP BODY[HEADER] minus the empty line
  std::map<std::string, SectionRange> ranges;  ///< by Part::section
  uint64_t imap_size = 0;                      ///< the message size with CRLF line ends (RFC822.SIZE)
};

/// Parses `data` (taken over). Never fails: any input yields a tree.
/// At most `max_parts` parts below the top are built, in message order; the
/// parts of a multipart beyond that are counted in its
/// Part::children_omitted, not parsed (nor their insides counted), so a
/// message of millions of parts costs one linear scan and memory for
/// `max_parts` parts.
ParsedMessage ParseMessage(std::string data, uint32_t max_parts = kDefaultMaxParts);

/// Octets of `s` once every bare LF is counted as CRLF (how an IMAP server,
/// which stores CRLF, reports sizes for a file with LF line ends).
uint64_t CrlfSize(std::string_view s);

/// `data` with every bare LF made CRLF, as an IMAP server stores a message
/// APPENDed with Unix line breaks (Dovecot and Cyrus do; RFC 3501 2.2.1 makes
/// CRLF the line break of the protocol). Bare CRs are kept. Returns `data`
/// itself, not a copy, when it has no bare LF.
std::string ToServerLineBreaks(std::string data);

/// SectionSource over a ParsedMessage. Borrows it: the ParsedMessage must
/// outlive this object. Not thread-safe (one caller at a time, as the
/// interface says); never fails for sections of the tree; Body("") is the
/// whole message (IMAP BODY[]); an unknown section is an error with code
/// "mime.no_section".
class FileSectionSource : public SectionSource {
 public:
  explicit FileSectionSource(const ParsedMessage& message);

  util::Result<std::string> Body(const std::string& section) override;
  util::Result<std::string> MimeHeaders(const std::string& section) override;
  /// Hands over views into the file's bytes: nothing is copied.
  util::Status StreamBody(const std::string& section,
                          const std::function<util::Status(std::string_view)>& sink) override;
  /// Copies only the prefix.
  util::Result<Prefix> BodyPrefix(const std::string& section, uint64_t max_bytes, bool raw) override;
  /// Exact: the body is local, so it is decoded (without copying it first).
  /// A section not in the tree (beyond the part cap) → nullopt.
  util::Result<std::optional<uint64_t>> DecodedSize(const std::string& section) override;
  /// Every call is served from memory.
  bool Local() const override { return true; }

 private:
  util::Result<std::string_view> BodyView(const std::string& section) const;

  const ParsedMessage& message_;
  std::unordered_map<std::string, const Part*> parts_;  // by Part::section, into message_.root
};

}  // namespace mailhook::mime
