#pragma once
/// Event: the JSON event of CONTRACT.md "Event" built from a MessageContent,
/// its stable id, and the `mailhook parse FILE` pipeline.
///
/// Pure functions, thread-safe. The JSON is always valid UTF-8 (every string
/// is forced through ForceUtf8), every contract key is present (null or []).

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/config.h"
#include "mime/message.h"
#include "util/result.h"

namespace mailhook::mime {

/// Where a message sits and what the server says about it.
struct EventMeta {
  std::string account;
  std::string mailbox;
  uint32_t uidvalidity = 0;
  uint32_t uid = 0;
  std::vector<std::string> flags;
  uint64_t size = 0;       ///< RFC822.SIZE
  std::string created_at;  ///< RFC 3339 UTC
};

/// "evt_" + the first 32 hex chars of SHA-256 over account, mailbox,
/// uidvalidity and uid (decimal) joined with '\0'. Same inputs, same id.
std::string EventId(const std::string& account, const std::string& mailbox, uint32_t uidvalidity, uint32_t uid);

/// The event object; `message.truncated` is null or {text, html,
/// attachments_omitted} (CONTRACT.md Additions). Attachments: mode kNone → []; kMetadata → metadata
/// only; kContent → also `content_base64` (null when the content was not
/// fetched or is larger than `max_attachment_bytes`).
nlohmann::json EventJson(const EventMeta& meta, const MessageContent& content, config::AttachmentMode mode,
                         uint64_t max_attachment_bytes);

/// EventJson(...).dump() as pieces: slices of the compact JSON with the
/// attachment contents between them, shared with `content`, never copied.
/// Stored piece by piece (store::OutboxItem::pieces), a large event is held
/// once while it is made and stored. With `auto_reply_headers` (smtp
/// targets) the object also has "auto_reply_headers": {auto_submitted,
/// precedence, list_id, list_unsubscribe, return_path, sender}, each a
/// string or null, for the target's loop protection.
std::vector<std::shared_ptr<const std::string>> EventPieces(const EventMeta& meta, const MessageContent& content,
                                                            config::AttachmentMode mode, uint64_t max_attachment_bytes,
                                                            bool auto_reply_headers = false);

/// The most bytes of an original an smtp forward attaches (attach_original):
/// a larger one is neither fetched nor stored, and the forward goes out
/// without it, saying so. Submission servers take 25-35 MiB at most, and
/// the stored event holds the original as base64 (4/3 of it).
inline constexpr uint64_t kMaxOriginalBytes = 10 << 20;

/// The original message in the stored event of an smtp forward that
/// attaches it: "original_rfc822" is `base64` (the raw RFC 5322 bytes,
/// base64 because raw mail need not be UTF-8), shared by every such route
/// and stored as its own piece, or null when the original was over
/// kMaxOriginalBytes or could not be read. With null, a non-empty `omitted`
/// is stored as "original_omitted" (the reason the forward's note gives,
/// e.g. "unreadable"); without it null means over the limit.
struct EventOriginal {
  std::shared_ptr<const std::string> base64;
  std::string omitted = {};
};

/// EventPieces with the original (`original` null: no "original_rfc822").
std::vector<std::shared_ptr<const std::string>> EventPieces(const EventMeta& meta, const MessageContent& content,
                                                            config::AttachmentMode mode, uint64_t max_attachment_bytes,
                                                            bool auto_reply_headers, const EventOriginal* original);

/// EventPieces joined: exactly EventJson(...).dump().
std::string EventPayload(const EventMeta& meta, const MessageContent& content, config::AttachmentMode mode,
                         uint64_t max_attachment_bytes);

/// The `message.unprocessable` event (CONTRACT.md Additions) as compact JSON:
/// the envelope of message.received for `meta` (the same id the message
/// would have had), "reason", "attempts", and "message": {message_id, date,
/// subject, from (as in message.received), size (meta.size)} with what
/// `header_block` gives, else null.
std::string UnprocessableEventJson(const EventMeta& meta, std::string_view header_block, const std::string& reason,
                                   int attempts);

/// The current time as RFC 3339 UTC ("2026-11-26T07:00:00Z").
std::string NowRfc3339();

/// `mailhook parse FILE`: reads the file as an IMAP server stores it (bare
/// LF made CRLF, ToServerLineBreaks), parses it, extracts with content
/// fetched (the file is local), and returns the event JSON text (dump(2)):
/// the event `run` sends for the same file APPENDed to a server, so text,
/// html and text attachments carry CRLF line breaks. Account "local",
/// uidvalidity 0, uid 0, flags [], created_at now. Fails (code "mime.read_failed") when the file cannot be
/// read.
util::Result<std::string> ParseFileToEventJson(const std::string& path, const std::string& mailbox,
                                               config::AttachmentMode mode);

}  // namespace mailhook::mime
