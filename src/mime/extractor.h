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
/// Limits (CONTRACT.md Additions, `limits:`): at most max_parts leaves are
/// read, in message order; a text/plain or text/html body beyond them is
/// still chosen, every other leaf is counted in `truncated.attachments_omitted`.
/// Text and HTML bodies are fetched only as far as max_text_bytes of UTF-8
/// needs and cut there (`truncated.text` / `.html`).
///
/// Attachment size is the decoded size. When content is fetched it is
/// measured exactly; a part without transfer encoding (7bit, 8bit, binary)
/// has the structure's size; otherwise the source is asked (IMAP
/// BINARY.SIZE), else bodies up to 4 MiB are fetched and measured. Asking
/// costs a round trip per part (and Dovecot re-parses the whole message for
/// each BINARY.SIZE), so only max_size_queries parts are asked for; when
/// more need a size and the message is at most max_whole_fetch_bytes, it is
/// fetched once whole and every part measured locally instead; otherwise the
/// rest are estimated from Part::size: base64 → size*76/78 (CRLF every 76
/// characters) *3/4, uuencode → size*45/62, anything else (including
/// quoted-printable, an upper bound) → size.

#include <cstdint>
#include <string>
#include <string_view>

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
  /// `limits.max_parts`: leaves read per message (and parts built by a
  /// local parse); the rest are counted in `truncated`.
  uint32_t max_parts = kDefaultMaxParts;
  /// `limits.max_text_bytes`: UTF-8 bytes kept of the text and of the html
  /// body each; a longer body is cut on a character boundary and flagged.
  uint64_t max_text_bytes = 4 << 20;
  /// The message's size (RFC822.SIZE); 0 = unknown, taken as small.
  uint64_t message_size = 0;
  /// Decoded sizes asked of the source (one round trip each) per message.
  uint32_t max_size_queries = 8;
  /// A message up to this size may be fetched whole (BODY[]) to size its
  /// parts locally, or to re-parse a doubtful structure; a larger one never is.
  uint64_t max_whole_fetch_bytes = 32 << 20;
};

/// Extracts one message. Thread-safe as long as `source` is used by this
/// call only. Fails only when `source` fails (the error is passed through:
/// the daemon retries the message later); undecodable text is replaced,
/// never an error.
util::Result<MessageContent> Extract(std::string_view header_block, const Part& root, SectionSource& source,
                                     const ExtractOptions& opts);

/// `mailhook parse` and the daemon's fallback: parses the whole message
/// locally (at most opts.max_parts parts built) and extracts from its bytes.
/// Same result as `mailhook parse` for the same bytes and options.
util::Result<MessageContent> ExtractWhole(std::string message_bytes, const ExtractOptions& opts);

/// Estimated decoded size of a part whose body was not fetched (see above).
uint64_t EstimateDecodedSize(const Part& part);

/// Lowercase hex SHA-256 of `data`.
std::string Sha256Hex(std::string_view data);

}  // namespace mailhook::mime
