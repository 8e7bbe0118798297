#pragma once
/// ProtocolTrace: the IMAP conversation of one connection as `imap.sent` /
/// `imap.received` trace lines, one per protocol line, each tagged with the
/// account, a connection number and the folder the connection selected (or
/// "notify" once it sent NOTIFY SET), with every credential cut out:
///   imap.sent account=support conn=7 folder=INBOX line="12 UID FETCH 5 (UID BODY.PEEK[])"
///   imap.received account=support conn=7 folder=INBOX line="* 3 FETCH (UID 5 BODY[] {1234 bytes})"
///
/// Fed with the bytes as they cross the transport, in any chunking. Literals
/// (RFC 3501 §4.3 `{N}`, RFC 7888 `{N+}`, RFC 3516 `~{N}`) are never shown:
/// each becomes `{N bytes}` in its line. Client lines: LOGIN's arguments,
/// AUTHENTICATE's initial response and every continuation line up to the
/// server's answer, and anything libetpan sent as private data are shown as
/// `<redacted>`; all lines also pass the session's CredentialRedactor and the
/// process's known secrets (util/known_secrets.h). Lines are cut at
/// kMaxShownLine bytes.
///
/// Built only when the imap logger is at trace level (Session::Open), so the
/// trace costs nothing at any other level. Not thread-safe: one per session.

#include <cstdint>
#include <string>
#include <string_view>

#include "imap/redact.h"

namespace mailhook::imap {

/// The trace of one IMAP connection (see above).
class ProtocolTrace {
 public:
  /// The most bytes of one line shown; the rest is summarised by its size.
  static constexpr size_t kMaxShownLine = 300;

  /// `account` names the connection's account (empty: `host` is used).
  ProtocolTrace(std::string account, const std::string& host, CredentialRedactor redactor);

  /// Bytes we sent; `private_data`: libetpan marked them as carrying a
  /// credential (LOGIN, AUTHENTICATE), so their line shows none of its arguments.
  void Sent(std::string_view bytes, bool private_data);
  /// Bytes the server sent.
  void Received(std::string_view bytes);

 private:
  /// One direction's line being assembled.
  struct Side {
    std::string shown;          // the line so far (literals summarised), cut at kCaptureLimit
    uint64_t hidden = 0;        // bytes of the line past kCaptureLimit
    std::string tail;           // the segment's last bytes, for the literal marker
    uint64_t literal_left = 0;  // bytes of a literal still to skip
    bool private_data = false;  // part of the line came as private data
  };
  void Feed(Side& side, std::string_view bytes, bool sent);
  void EndSegment(Side& side, bool sent);
  void Emit(Side& side, bool sent);
  std::string RenderSent(const std::string& line, bool private_data);
  std::string Finish(const std::string& line, uint64_t hidden) const;

  std::string account_;
  uint64_t conn_;
  std::string folder_ = "-";
  CredentialRedactor redactor_;
  bool in_authenticate_ = false;  // client lines are SASL responses until the server answers
  Side sent_;
  Side received_;
};

}  // namespace mailhook::imap
