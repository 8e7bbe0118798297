#pragma once
/// SendMail: one already-built message over SMTP submission (RFC 6409) on
/// src/imap's verified OpenSSL transport (imap/tls_stream.h), with the
/// outcome classified the way the server meant it (smtp/smtp_reply.h).
///
/// An own small client over mailstream_write/mailstream_read, not libetpan's
/// mailsmtp, because mailsmtp (1.9.4):
///  - does AUTH PLAIN/LOGIN only through Cyrus SASL (mailesmtp_auth_sasl:
///    NOT_IMPLEMENTED when built without it, needs the SASL plugins at run
///    time), and knows neither XOAUTH2 nor ENHANCEDSTATUSCODES in EHLO;
///  - builds every command with snprintf into 513 bytes, silently cutting a
///    long address or an AUTH line;
///  - reads replies with mailstream_read_line: no bound on a line's length
///    or on the number of continuation lines, and a line without a code
///    becomes code 0 mid-reply;
///  - maps codes to its own MAILSMTP_ERROR_* (the code, enhanced code and
///    text must be dug out of the session struct), and logs through
///    mailstream's logger, which sees AUTH lines.
/// What it would add (the command sequence) is a few dozen lines here.
///
/// `timeout` bounds the whole attempt: one deadline from the start of
/// SendMail, and every wait (connect, TLS handshake, each reply, each write,
/// QUIT) takes what is left of it, so a server that answers every step just
/// under the timeout cannot stretch an attempt toward the dispatcher's lease.
/// The error then names the step ("timed out at RCPT TO: the whole attempt
/// may take timeout 30000 ms"; kRetry). Any wait ends when `stop_fd` turns
/// readable. Replies are bounded: a line over kMaxReplyLine bytes or more
/// than kMaxReplyLines lines ends the session (kRetry). STARTTLS is required
/// in kStartTls mode: a server that does not offer it is an operator error,
/// never a reason to go on in clear.
///
/// At trace level the conversation is logged line by line as `smtp.sent` /
/// `smtp.received` with `target=<account_label> conn=N line="..."`; AUTH
/// lines and their continuations show as `<withheld>`, the message as its
/// size, and every line also passes the credential redactor.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "smtp/smtp_reply.h"
#include "util/secret.h"

namespace mailhook::smtp {

/// The longest reply line read (RFC 5321 §4.5.3.1.5 allows 512 bytes).
inline constexpr size_t kMaxReplyLine = 4096;
/// The most lines of one reply (an EHLO answer has about 15).
inline constexpr size_t kMaxReplyLines = 100;

/// How to authenticate.
enum class SmtpAuth { kNone, kPlain, kLogin, kXoauth2 };

/// The mechanism's name in AUTH ("PLAIN", "LOGIN", "XOAUTH2"; "" for kNone).
std::string_view AuthName(SmtpAuth auth);

/// Where and how to submit.
struct SmtpOptions {
  std::string host;
  uint16_t port = 587;
  /// kStartTls: STARTTLS required; kImplicit: TLS from the first byte (465);
  /// kNone: clear text (the config allows it only with allow_insecure).
  config::TlsMode tls = config::TlsMode::kStartTls;
  std::optional<std::string> ca_file;  ///< default: the system trust store
  bool tls_verify = true;
  SmtpAuth auth = SmtpAuth::kPlain;
  std::string username;
  util::Secret secret;  ///< password, or the OAuth2 access token for kXoauth2; never logged
  /// The EHLO name (smtp/helo_name.h HeloName); "": the address literal of
  /// the connection's local end ("[127.0.0.1]").
  std::string helo_name;
  std::chrono::milliseconds timeout{30000};  ///< for the whole attempt, not per step
  int stop_fd = -1;                          ///< readable: give up now (kRetry)
  std::string account_label;                 ///< for logs and the trace ("smtp:<target name>")
};

/// What happened to one RCPT TO.
struct RecipientOutcome {
  std::string address;
  SmtpReply reply;  ///< the RCPT reply, or the final DATA reply for an accepted recipient
  SendClass cls = SendClass::kRetry;
};

/// What happened to the message.
struct SendOutcome {
  /// kSent when the message was accepted after DATA for at least one
  /// recipient (refused ones are in `recipients`); otherwise why not: when
  /// every RCPT was refused, the worst of their classes (smtp_reply.h Worse).
  SendClass cls = SendClass::kRetry;
  SmtpReply reply;                           ///< the reply that decided it (code 0 for connection/TLS errors)
  std::string error;                         ///< one line naming cause and fix; empty when sent to everyone
  std::vector<RecipientOutcome> recipients;  ///< one per RCPT TO sent, in order
  /// kPermanent before MAIL FROM: the message has 8-bit data and the server
  /// does not offer 8BITMIME (RFC 6152), so it was not sent; the same
  /// message in 7 bits would be taken.
  bool needs_seven_bit = false;
};

/// Sends `message` (RFC 5322 bytes with CRLF line ends, not dot-stuffed) from
/// `envelope_from` (may be "" for a null reverse-path) to `recipients`
/// (bare addresses, no angle brackets).
SendOutcome SendMail(const SmtpOptions& options, const std::string& envelope_from,
                     const std::vector<std::string>& recipients, std::string_view message);

/// What CheckSubmission found.
struct CheckOutcome {
  /// kSent: connected, EHLO, STARTTLS as configured and AUTH accepted;
  /// otherwise what a send would have met (kNeedsOperator for bad
  /// credentials, a refused certificate, STARTTLS not offered...).
  SendClass cls = SendClass::kRetry;
  std::string error;              ///< one line naming cause and fix; empty when ok
  std::string helo_name;          ///< the name sent in EHLO
  std::vector<std::string> auth;  ///< the AUTH mechanisms the server offered (after TLS)
  bool encrypted = false;         ///< the session ran over TLS
};

/// `mailhook check --connect` for an smtp target: the same session SendMail
/// opens (connect, TLS, greeting, EHLO, STARTTLS, AUTH, within `timeout`),
/// then QUIT without MAIL FROM: nothing is sent.
CheckOutcome CheckSubmission(const SmtpOptions& options);

/// `message` as DATA sends it (RFC 5321 §4.5.2): every line end CRLF (a bare
/// LF becomes CRLF), a line starting with '.' gets one more, the last line
/// ended, then ".\r\n".
std::string DotStuff(std::string_view message);

}  // namespace mailhook::smtp
