#pragma once
/// Sample messages shipped in tests/integration/support/data (see its README
/// for what each one exercises and the facts to assert).

#include <string>

namespace mailhook::testsupport {

/// Absolute path of a sample, e.g. SamplePath("plain_utf8.eml").
std::string SamplePath(const std::string& name);
/// Its bytes as stored (LF line ends). Throws std::runtime_error if missing
/// (a broken checkout, not an expected failure).
std::string SampleMessage(const std::string& name);

/// A small plain-text message whose Subject and Message-ID both name it
/// (Message-ID <subject@example.com>), so an event can be matched to it.
inline std::string MessageWithSubject(const std::string& subject) {
  return "From: Ann <ann@example.com>\r\nTo: someone@example.com\r\nSubject: " + subject + "\r\nMessage-ID: <" +
         subject + "@example.com>\r\n\r\nhello\r\n";
}

/// Facts about mixed_attachment.eml's attachment.
inline constexpr size_t kInvoicePdfSize = 142;
inline constexpr const char* kInvoicePdfSha256 = "93e31154c364805a3ef8c904bc257f5ef77600c31b67d392704cd6e1e9cd0657";

}  // namespace mailhook::testsupport
