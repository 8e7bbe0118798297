#pragma once
/// What an IMAP server's refusal means for mailhook: RFC 5530 response codes
/// and BYE, turned into an error whose RetryClass says whether waiting helps
/// (kBackoff: [UNAVAILABLE], [LIMIT], [INUSE], BYE) or a person must act
/// (kNeedsOperator: [AUTHENTICATIONFAILED], [AUTHORIZATIONFAILED], [EXPIRED],
/// [PRIVACYREQUIRED]), with the code and the fix named in the message; and
/// [ALERT] texts (RFC 3501 §7.1), which the server requires us to show to
/// the user, logged once per session.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/result.h"

namespace mailhook::imap {

/// Where a refusal happened, for its message.
struct RefusalContext {
  std::string what;        ///< the command, e.g. "login", "select"
  std::string connection;  ///< host:port, and more if it helps ("for user \"x\"")
  std::string server;      ///< the server's text, already redacted
};

/// The error for a tagged NO carrying the RFC 5530 `code` (upper case, no
/// brackets), or nullopt when the code says nothing about retrying (the
/// caller keeps its own error). Event names: imap.unavailable, imap.limit,
/// imap.inuse (kBackoff); imap.auth_failed, imap.authorization_failed,
/// imap.credentials_expired, imap.privacy_required (kNeedsOperator).
std::optional<util::Error> ErrorForResponseCode(std::string_view code, const RefusalContext& where);

/// The code at the start of a response text, upper case ("[limit] too
/// many" -> "LIMIT"); "" when there is none. Pure.
std::string LeadingCode(std::string_view text);

/// The error for a session the server ended with BYE (RFC 3501 §7.1.5):
/// kBackoff, event imap.bye, naming the code in `bye_line` if any (a BYE
/// with an operator code, e.g. [EXPIRED], gets that code's error instead).
util::Error ErrorForBye(std::string_view bye_line, const RefusalContext& where);

/// The untagged BYE line among `buffered` (what libetpan had read of the
/// response that failed), without "* BYE " and CRLF; nullopt when none.
std::optional<std::string> FindBye(std::string_view buffered);

/// The text of an `[ALERT]` in an untagged OK/NO/BAD line of `buffered`
/// (the greeting: libetpan keeps no response info for it), without CRLF.
std::optional<std::string> FindAlert(std::string_view buffered);

/// [ALERT] texts already logged on one session: each distinct text is logged
/// once as a warning (`imap.alert`), not on every command that repeats it.
class AlertLog {
 public:
  /// Logs `text` (already redacted) unless this session logged it already.
  void Note(const std::string& account, const std::string& connection, const std::string& text);

 private:
  static constexpr size_t kMaxRemembered = 16;
  std::vector<std::string> seen_;
};

}  // namespace mailhook::imap
