// Session::LoginOauthbearer: AUTHENTICATE OAUTHBEARER (RFC 7628) sent by hand,
// as the account-level commands of session_notify.cc are: libetpan 1.9.4
// knows XOAUTH2 but not OAUTHBEARER.

#include <libetpan/libetpan.h>

#include "imap/redact.h"
#include "imap/response_code.h"
#include "imap/session.h"
#include "util/base64.h"

namespace mailhook::imap {
namespace {

// The response code of a tagged reply: "NO [AUTHENTICATIONFAILED] x" -> AUTHENTICATIONFAILED.
std::string CodeOf(const std::string& reply) {
  const size_t space = reply.find(' ');
  return space == std::string::npos ? "" : LeadingCode(std::string_view(reply).substr(space + 1));
}

}  // namespace

util::Status Session::LoginOauthbearer() {
  // RFC 7628 §3.1: gs2 header, then kvpairs separated by ^A; host and port
  // are optional and left out.
  const std::string payload = util::Base64Encode(OauthbearerPayload(options_.username, options_.password.reveal()));
  const std::string tag = "mh" + std::to_string(++raw_tag_);
  const bool initial = HasCapability("SASL-IR");  // RFC 4959
  auto send = [&](const std::string& line) {
    const std::string out = line + "\r\n";
    return mailstream_write(imap_->imap_stream, out.data(), out.size()) >= 0 &&
           mailstream_flush(imap_->imap_stream) >= 0;
  };
  if (!send(tag + " AUTHENTICATE OAUTHBEARER" + (initial ? " " + payload : ""))) {
    return CommandError("login", MAILIMAP_ERROR_STREAM);
  }
  bool sent = initial;
  for (int n = 0; n < 100; ++n) {
    auto response = ReadResponse("login");
    if (!response.ok()) return response.error();
    if (response->starts_with(tag + " ")) {
      const std::string reply = response->substr(tag.size() + 1);
      if (reply.starts_with("OK")) {
        // Our own command: libetpan must learn that the session is
        // authenticated, or it refuses SELECT.
        imap_->imap_state = MAILIMAP_STATE_AUTHENTICATED;
        return util::Ok();
      }
      return LoginRefused(CodeOf(reply), CredentialRedactor(options_.username, options_.password).Clean(reply));
    }
    if (response->starts_with("+")) {
      // The payload when the server asked for it; after a failure the server
      // sends its error as a challenge and waits for a dummy ^A (RFC 7628 §3.2.3).
      if (!send(sent ? "AQ==" : payload)) return CommandError("login", MAILIMAP_ERROR_STREAM);
      sent = true;
    }
    // Untagged responses (a CAPABILITY) are not needed: Open asks again.
  }
  return util::Error("imap.login", util::RetryClass::kBackoff,
                     "no tagged answer to AUTHENTICATE OAUTHBEARER from " + options_.host);
}

}  // namespace mailhook::imap
