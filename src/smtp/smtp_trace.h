#pragma once
/// SmtpTrace: the SMTP conversation of one connection as `smtp.sent` /
/// `smtp.received` trace lines, and the cleaning of server text before it
/// reaches a log or an error:
///   smtp.sent target=smtp:ack conn=3 line="MAIL FROM:<support@example.com>"
///   smtp.sent target=smtp:ack conn=3 line="AUTH PLAIN <withheld>"
///   smtp.received target=smtp:ack conn=3 line="235 2.7.0 Authentication successful"
/// Credentials are cut out in every form this client sends them (raw,
/// base64 alone, in SASL PLAIN and XOAUTH2) and as the process's known
/// secrets (util/known_secrets.h). Lines are cut at kMaxShownLine bytes.
/// Logging costs nothing below trace level. Not thread-safe: one per session.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "util/secret.h"

namespace mailhook::smtp {

/// The trace and redactor of one SMTP connection (see above).
class SmtpTrace {
 public:
  static constexpr size_t kMaxShownLine = 300;

  SmtpTrace(std::string target, const std::string& username, const util::Secret& secret);

  /// A command line we sent (without CRLF). `withheld`: it carries a
  /// credential; only `shown_prefix` of it is logged, then "<withheld>".
  void Sent(std::string_view line, bool withheld = false, std::string_view shown_prefix = {});
  /// The message body we sent, shown as its size.
  void SentData(size_t bytes);
  /// A line the server sent (without CRLF).
  void Received(std::string_view line);

  /// `text` without credentials, control characters shown as '?', cut at
  /// `max_len` bytes: for errors and log fields.
  std::string Clean(std::string_view text, size_t max_len = 400) const;

 private:
  void Emit(const char* event, std::string_view line) const;

  std::string target_;
  uint64_t conn_;
  std::vector<std::string> forms_;  // longest first
};

}  // namespace mailhook::smtp
