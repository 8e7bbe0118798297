#pragma once
/// Extractor: turns a message's top header block, its Part tree and a
/// SectionSource into MessageContent (the `message` of an event). The one
/// extraction path shared by the daemon (IMAP) and `mailhook parse` (file).
///
/// Body choice: the first text/plain and the first text/html leaf that is not
/// an attachment (no `attachment` disposition, no filename), wherever it sits
/// (alternative, related, mixed). Every other leaf is an attachment:
/// message/rfc822 and delivery reports are listed, never descended into;
/// inline images keep their Content-ID. A multipart without children (no
/// usable boundary) is skipped.
///
/// Attachment size is the decoded size. When content is fetched it is
/// measured exactly; otherwise the source is asked (IMAP BINARY.SIZE), else
/// bodies up to 4 MiB are fetched and measured; larger ones, on servers
/// without BINARY, are estimated from Part::size: base64 →
/// size*76/78 (CRLF every 76 characters) *3/4, uuencode → size*45/62,
/// anything else (including quoted-printable, an upper bound) → size.

#include <cstdint>

#include "mime/message.h"
#include "mime/part_tree.h"
#include "mime/section_source.h"
#include "util/result.h"

namespace mailhook::mime {

/// What the Extractor may fetch.
struct ExtractOptions {
  /// Fetch attachment bodies (exact size, sha256, content). Text and HTML
  /// bodies are always fetched.
  bool fetch_content = false;
  /// Decoded content larger than this is not kept (size and sha256 still
  /// are); an attachment whose estimated size is over twice this is not
  /// fetched at all.
  uint64_t max_content_bytes = 10 * 1024 * 1024;
};

/// Extracts one message. Thread-safe as long as `source` is used by this
/// call only. Fails only when `source` fails (the error is passed through:
/// the daemon retries the message later); undecodable text is replaced,
/// never an error.
util::Result<MessageContent> Extract(std::string_view header_block, const Part& root, SectionSource& source,
                                     const ExtractOptions& opts);

/// Estimated decoded size of a part whose body was not fetched (see above).
uint64_t EstimateDecodedSize(const Part& part);

/// Lowercase hex SHA-256 of `data`.
std::string Sha256Hex(std::string_view data);

}  // namespace mailhook::mime
