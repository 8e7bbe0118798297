#pragma once
/// SMTP replies (RFC 5321 §4.2) and what they mean for a message: parsed from
/// the server's lines, with the enhanced status code (RFC 3463, RFC 2034)
/// when the text carries one, and classified into what the sender should do
/// next. Pure functions, no I/O.
///
/// Classification (README "smtp targets"):
///   2yz, 3yz                         kSent (the command was accepted)
///   code 0 (connection, timeout)     kRetry
///   4yz (421, 450, 451, 452...)      kRetry
///   552 answering RCPT TO            kRetry (RFC 5321 §4.5.3.1.10: as 452)
///   530, 534, 535, 538               kNeedsOperator (authentication: fix the config)
///   5yz with 5.7.8/5.7.9/5.7.10/5.7.11 kNeedsOperator (credentials, mechanism, encryption)
///   any 5yz answering AUTH, or the greeting/EHLO/STARTTLS (nothing
///   message-specific was refused: the server refuses us)  kNeedsOperator
///   other 5yz (550, 551, 552, 553, 554...)  kPermanent, with the server's text
/// The basic code decides between retry and permanent; the enhanced code
/// only refines within its class. RFC 3463 §2 requires both class digits to
/// agree; where a server breaks that, the basic code is what RFC 5321 tells
/// the client to act on (a 4yz was not refused for good), so it wins.

#include <string>
#include <string_view>

namespace mailhook::smtp {

/// One SMTP reply. `text` is all lines' text joined by spaces, each line's
/// enhanced code removed; the client cleans it of credentials before it
/// leaves src/smtp.
struct SmtpReply {
  int code = 0;          ///< 0: no reply (connection error, timeout, malformed)
  std::string enhanced;  ///< "5.1.1", or "" when the server gave none
  std::string text;
};

/// What to do with a message after an answer.
enum class SendClass {
  kSent,           ///< accepted
  kRetry,          ///< transient: retry on the schedule
  kNeedsOperator,  ///< will not heal by itself: credentials, TLS, server set-up (slow retry)
  kPermanent,      ///< refused for good: dead letter with the server's text
};

/// The command a reply answers, for the replies whose meaning depends on it.
enum class SmtpStage { kConnect, kEhlo, kStartTls, kAuth, kMail, kRcpt, kData, kMessage, kQuit };

/// "kSent", "kRetry"... as log field values: "sent", "retry", "needs_operator", "permanent".
std::string_view SendClassName(SendClass cls);

/// Parses a whole reply ("250-first\r\n250 2.0.0 last\r\n"; the last line
/// without CRLF is accepted too). Every line must start with the same three
/// digits followed by '-' (more lines follow), ' ' or the line end (last);
/// anything else gives code 0 and a text saying what was wrong. The enhanced
/// code is taken when the first line's text starts with one (class 2, 4 or
/// 5, then 1-3 and 1-3 digits, then a space or the end).
SmtpReply ParseReply(std::string_view lines);

/// What `reply` means for the message (see above). `stage`: the command it
/// answered.
SendClass ClassifyReply(const SmtpReply& reply, SmtpStage stage = SmtpStage::kMessage);

/// The worse of two outcomes for a message: kRetry over kNeedsOperator over
/// kPermanent over kSent (a retry may still deliver it).
SendClass Worse(SendClass a, SendClass b);

}  // namespace mailhook::smtp
