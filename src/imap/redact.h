#pragma once
/// Redaction of IMAP server text before it reaches an error message or a log.
/// A server (or a proxy) may echo the command it rejects, and LOGIN or
/// AUTHENTICATE carries the password or token: every form in which our
/// credentials went over the wire is cut out of whatever the server says.

#include <string>
#include <string_view>
#include <vector>

#include "util/secret.h"

namespace mailhook::imap {

/// The OAUTHBEARER initial client response (RFC 7628 §3.1) before base64:
/// gs2 header with the user as saslname (RFC 5801 §4: "," and "=" written
/// =2C and =3D), then the bearer token; host and port left out. The one
/// builder for what Session::LoginOauthbearer sends and what the redactor
/// cuts, so the two cannot differ.
std::string OauthbearerPayload(const std::string& username, const std::string& token);

/// The credentials one session sends, in every encoding they travel in.
/// Built once per session; never printed.
class CredentialRedactor {
 public:
  CredentialRedactor() = default;
  CredentialRedactor(const std::string& username, const util::Secret& password);

  /// `text` bounded to `max_len` bytes, control characters shown as '?', and
  /// every occurrence of a credential form replaced by "<redacted>". When the
  /// text echoes our LOGIN (with our user name) or AUTHENTICATE PLAIN/XOAUTH2,
  /// everything from there on is withheld: its arguments may carry the secret
  /// in a form not listed.
  std::string Clean(std::string_view text, size_t max_len = 200) const;

 private:
  std::vector<std::string> forms_;   // longest first
  std::vector<std::string> echoes_;  // upper case
};

}  // namespace mailhook::imap
