#pragma once
/// What the Extractor produces for one message: the `message` object of the
/// event (CONTRACT.md "Event"), already decoded to UTF-8.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace mailhook::mime {

/// A mailbox: display name (decoded, may be empty) and address.
struct Address {
  std::string name;
  std::string address;
};

/// One attachment (or inline part that is not the chosen body).
struct Attachment {
  std::string part;                        ///< IMAP section, e.g. "2"
  std::optional<std::string> filename;     ///< decoded (RFC 2231/2047)
  std::string content_type;                ///< "application/pdf", lowercased
  std::optional<std::string> disposition;  ///< "attachment" | "inline" | null
  std::optional<std::string> content_id;   ///< as sent, with <>
  uint64_t size = 0;                       ///< decoded size in bytes
  std::optional<std::string> sha256;       ///< hex, when the content was fetched
  /// The decoded bytes in base64 (no line breaks), when fetched and within
  /// limits: kept encoded, as the event carries it, and shared by the event
  /// pieces of every target, so it is held once.
  std::shared_ptr<const std::string> content_base64;
};

/// What a limit left out of a message (CONTRACT.md Additions,
/// `message.truncated`).
struct Truncation {
  bool text = false;  ///< the text body was cut at max_text_bytes
  bool html = false;  ///< the html body was cut at max_text_bytes
  /// Parts beyond max_parts: counted, not listed (a multipart among them
  /// counts as one).
  uint64_t attachments_omitted = 0;
};

/// The header fields an automatic reply must look at (RFC 3834 §2, §4), as
/// sent (unfolded, trimmed, not decoded). Not part of the event a webhook or
/// hook gets: only smtp targets ask for them (EventPieces).
struct AutoReplyHeaders {
  std::optional<std::string> auto_submitted;
  std::optional<std::string> precedence;
  std::optional<std::string> list_id;
  std::optional<std::string> list_unsubscribe;
  std::optional<std::string> return_path;  ///< added at final delivery: where replies go
  std::optional<std::string> sender;
};

/// The decoded message.
struct MessageContent {
  std::optional<std::string> message_id;
  std::vector<std::string> in_reply_to;
  std::vector<std::string> references;
  std::optional<std::string> date;  ///< RFC 3339 UTC "2026-11-26T06:59:58Z"
  std::optional<std::string> subject;
  std::vector<Address> from, to, cc, reply_to;
  std::optional<std::string> text;
  std::optional<std::string> html;
  std::vector<Attachment> attachments;
  /// nullopt when nothing was left out.
  std::optional<Truncation> truncated;
  AutoReplyHeaders auto_reply;
};

}  // namespace mailhook::mime
