#pragma once
/// MailBuilder: the outgoing message of an `smtp` target (a reply or a
/// forward), built as RFC 5322 / MIME bytes ready for SMTP DATA — CRLF line
/// ends, no line over 998 octets, 7-bit headers (RFC 2047 encoded words and
/// IDNA A-labels; SMTPUTF8 is not assumed). Not dot-stuffed: the SMTP client
/// does that. Pure functions, thread-safe; no networking.
///
/// Format choices (why in mail_builder.cc):
/// - a text or html body is 7bit when it is short-lined printable ASCII,
///   else quoted-printable, or base64 when quoted-printable would be larger
///   (mostly non-Latin text); always `charset=utf-8`;
/// - text and html → multipart/alternative (text first);
/// - an attached message → multipart/mixed of the body and a message/rfc822
///   part holding the original unchanged but for CRLF line ends, 7bit or
///   8bit; an original with a line over 998 octets or a NUL byte is refused
///   (error code "mail.attach_unsafe"): RFC 2046 5.2.1 forbids base64 there
///   and `binary` needs BINARYMIME, so the caller forwards inline instead,
///   or sets unsafe_original_as_file to attach it as a base64 file.

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/result.h"

namespace mailhook::mime {

/// A mailbox of an outgoing message, UTF-8. The domain may be an IDN (it is
/// written as A-labels); the local part must be ASCII (no SMTPUTF8).
struct MailAddress {
  std::string name;
  std::string address;
};

/// Everything an outgoing message is built from. Header values from the
/// event (subject, names) may hold anything: CR, LF and other controls are
/// replaced by spaces, never written into a header.
struct OutgoingMail {
  MailAddress from;
  std::vector<MailAddress> to, cc;
  std::string subject;                          ///< UTF-8
  std::optional<std::string> text, html;        ///< UTF-8 bodies; at least one
  std::string in_reply_to;                      ///< "<id@host>" or empty
  std::vector<std::string> references;          ///< "<id>" each; malformed ones are left out
  std::string auto_submitted = "auto-replied";  ///< RFC 3834: auto-replied (reply) | auto-generated (forward)
  std::optional<std::string> attached_message;  ///< raw RFC 5322 bytes, attached as message/rfc822 (forward)
  /// An attached_message that message/rfc822 cannot carry (see above) is
  /// attached instead as application/octet-stream "original.eml", base64,
  /// its bytes unchanged, rather than refused.
  bool unsafe_original_as_file = false;
  /// Attach attached_message as that base64 file whatever it holds: for a
  /// server without 8BITMIME, which cannot take an 8-bit message/rfc822.
  bool original_as_file = false;
  std::chrono::system_clock::time_point date;
  std::string message_id;  ///< "<...>"; see MakeMessageId
};

/// In-Reply-To and References of a reply (RFC 5322 3.6.4).
struct ReplyThreading {
  std::string in_reply_to;
  std::vector<std::string> references;
};

/// Threading for a reply to a message with these fields (as in the event):
/// In-Reply-To is its Message-ID; References are its References (or, when
/// it has none, its single In-Reply-To) followed by its Message-ID. Kept to
/// the first id and the last kMaxReferences - 1 so a long thread does not
/// grow the header without bound. No Message-ID → both empty.
ReplyThreading ThreadReply(const std::optional<std::string>& message_id, const std::vector<std::string>& references,
                           const std::vector<std::string>& in_reply_to);
inline constexpr size_t kMaxReferences = 20;

/// "Re: " + subject, unless it already starts with "Re:" (any case, after
/// white space), so replies to replies do not pile up prefixes.
std::string ReplySubject(std::string_view subject);

/// The whole message. Deterministic: the same mail gives the same bytes (the
/// MIME boundaries derive from the Message-ID). Errors (code, all
/// kNeedsOperator: a retry cannot help): "mail.bad_address" (an address
/// EnvelopeAddress refuses), "mail.no_recipient", "mail.no_body",
/// "mail.bad_message_id", "mail.attach_unsafe" (see above).
util::Result<std::string> BuildMessage(const OutgoingMail& mail);

/// An address for MAIL FROM / RCPT TO and the headers: `local@domain` with
/// the domain in IDNA A-labels (libidn2, IDNA2008 with UTS #46
/// non-transitional mapping; see idna.h); ASCII domains are kept as written.
/// Error "mail.bad_address" for anything not addr-spec-like: no or several
/// `@` outside quotes, an empty part, white space, controls, `<>`, a non-ASCII
/// local part, an invalid IDN, over 254 octets; "mail.libidn2" when a
/// non-ASCII domain meets a machine without libidn2.
util::Result<std::string> EnvelopeAddress(std::string_view address);

/// True when the built message holds 8-bit bytes (only an attached original
/// can bring them): the SMTP client then sends MAIL FROM with
/// BODY=8BITMIME (RFC 6152); a server without it is sent nothing 8-bit:
/// the target attaches the original as a base64 file instead
/// (OutgoingMail::original_as_file).
bool NeedsEightBitMime(std::string_view message);

/// "<hex.mailhook@domain>": 32 hex digits of SHA-256 over `seed` (e.g. event
/// id + target name), so a retried send carries the same Message-ID and a
/// receiver can drop the duplicate. `domain` is written as A-labels; an
/// unusable one becomes "mailhook.invalid".
std::string MakeMessageId(std::string_view seed, std::string_view domain);

/// The RFC 5322 3.3 date-time of `t` in UTC: "Mon, 30 Nov 2026 02:09:26 +0000"
/// (English names whatever the locale).
std::string FormatRfc5322Date(std::chrono::system_clock::time_point t);

}  // namespace mailhook::mime
