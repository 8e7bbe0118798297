#include "imap/redact.h"

#include <algorithm>
#include <cctype>

#include "util/base64.h"
#include "util/strings.h"

namespace mailhook::imap {
namespace {

// The password as a quoted string carries it (RFC 3501 §4.3: \ and " escaped).
std::string Quoted(std::string_view in) {
  std::string out;
  for (char c : in) {
    if (c == '\\' || c == '"') out += '\\';
    out += c;
  }
  return out;
}

}  // namespace

std::string OauthbearerPayload(const std::string& username, const std::string& token) {
  std::string saslname;
  for (char c : username) {
    if (c == ',') {
      saslname += "=2C";
    } else if (c == '=') {
      saslname += "=3D";
    } else {
      saslname += c;
    }
  }
  return "n,a=" + saslname + ",\1auth=Bearer " + token + "\1\1";
}

CredentialRedactor::CredentialRedactor(const std::string& username, const util::Secret& password) {
  // What a server echoing our command would start with (RFC 3501 §6.2.2-3).
  echoes_ = {util::Upper("LOGIN " + username), util::Upper("LOGIN \"" + Quoted(username)), "AUTHENTICATE PLAIN",
             "AUTHENTICATE XOAUTH2", "AUTHENTICATE OAUTHBEARER"};
  const std::string& pass = password.reveal();
  if (pass.empty()) return;
  // LOGIN (raw or quoted), SASL PLAIN (RFC 4616) and XOAUTH2 (the password
  // field holds the token), each as sent: base64 for AUTHENTICATE.
  const std::string plain = std::string(1, '\0') + username + '\0' + pass;
  const std::string plain_authzid = username + '\0' + username + '\0' + pass;
  const std::string xoauth2 = "user=" + username + "\1auth=Bearer " + pass + "\1\1";
  // OAUTHBEARER (RFC 7628) as session_oauthbearer.cc sends it; its base64
  // starts like any other user's, so only the whole form is listed.
  const std::string oauthbearer = OauthbearerPayload(username, pass);
  forms_ = {pass,
            Quoted(pass),
            util::Base64Encode(plain),
            util::Base64Encode(plain_authzid),
            util::Base64Encode(xoauth2),
            util::Base64Encode(oauthbearer)};
  // libetpan may send the base64 in lines; a prefix of 16+ characters still
  // identifies (and would reveal part of) it.
  for (const std::string& b :
       {util::Base64Encode(plain), util::Base64Encode(plain_authzid), util::Base64Encode(xoauth2)}) {
    if (b.size() > 16) forms_.push_back(b.substr(0, 16));
  }
  std::sort(forms_.begin(), forms_.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  forms_.erase(std::unique(forms_.begin(), forms_.end()), forms_.end());
}

std::string CredentialRedactor::Clean(std::string_view text, size_t max_len) const {
  std::string out(text);
  // Cut an echoed credential-carrying command before anything else: its
  // arguments may hold the secret in a form not listed above (a literal,
  // another quoting).
  const std::string upper = util::Upper(out);
  for (const std::string& echo : echoes_) {
    size_t at = upper.find(echo);
    if (at != std::string::npos) {
      out = out.substr(0, at) + "<withheld: the server echoed our login command>";
      break;
    }
  }
  for (const std::string& form : forms_) {
    for (size_t at = out.find(form); at != std::string::npos; at = out.find(form, at + 10)) {
      out.replace(at, form.size(), "<redacted>");
    }
  }
  // Redact before cutting, so a cut never leaves half a secret behind.
  if (out.size() > max_len) out.resize(max_len);
  for (char& c : out) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) c = '?';  // no forged log lines
  }
  return out;
}

}  // namespace mailhook::imap
