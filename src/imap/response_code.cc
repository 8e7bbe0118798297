#include "imap/response_code.h"

#include <algorithm>
#include <cctype>

#include "util/log.h"

namespace mailhook::imap {
namespace {

using util::Error;
using util::RetryClass;

/// What each RFC 5530 §3 code means for us, and what fixes it.
struct CodeMeaning {
  std::string_view code;
  std::string_view event;
  RetryClass retry;
  std::string_view meaning;
};

constexpr CodeMeaning kCodes[] = {
    {"UNAVAILABLE", "imap.unavailable", RetryClass::kBackoff,
     "the server is temporarily unavailable (maintenance, a backend down); mailhook retries with backoff"},
    {"LIMIT", "imap.limit", RetryClass::kBackoff,
     "a server limit was reached (often connections per user, e.g. Dovecot's mail_max_userip_connections); "
     "mailhook retries with backoff; lower max_connections for this account if it persists"},
    {"INUSE", "imap.inuse", RetryClass::kBackoff,
     "the mailbox or account is in use by another session or being maintained; mailhook retries with backoff"},
    {"AUTHENTICATIONFAILED", "imap.auth_failed", RetryClass::kNeedsOperator,
     "the server rejected the credentials: check username and password (password/password_file/"
     "password_command); providers such as Gmail or Outlook need an app password or auth: xoauth2"},
    {"AUTHORIZATIONFAILED", "imap.authorization_failed", RetryClass::kNeedsOperator,
     "the credentials are valid but may not be used for this mailbox: check username (the mailbox to log in to) "
     "and the account's IMAP access on the server (some providers need IMAP enabled per user)"},
    {"EXPIRED", "imap.credentials_expired", RetryClass::kNeedsOperator,
     "the password or credentials have expired: renew them with the provider, then update password/"
     "password_file/password_command (or the oauth2 refresh token)"},
    {"PRIVACYREQUIRED", "imap.privacy_required", RetryClass::kNeedsOperator,
     "the server requires an encrypted connection for this: use tls: implicit (port 993) or tls: starttls"},
};

const CodeMeaning* Find(std::string_view code) {
  for (const CodeMeaning& m : kCodes) {
    if (m.code == code) return &m;
  }
  return nullptr;
}

}  // namespace

std::string LeadingCode(std::string_view text) {
  if (!text.starts_with("[")) return "";
  size_t end = text.find_first_of(" ]");
  if (end == std::string_view::npos) return "";
  std::string code(text.substr(1, end - 1));
  std::transform(code.begin(), code.end(), code.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  return code;
}

std::optional<util::Error> ErrorForResponseCode(std::string_view code, const RefusalContext& where) {
  const CodeMeaning* m = Find(code);
  if (!m) return std::nullopt;
  return Error(std::string(m->event), m->retry,
               where.what + " failed [" + std::string(code) + "] on " + where.connection + ": server said \"" +
                   where.server + "\"; " + std::string(m->meaning));
}

util::Error ErrorForBye(std::string_view bye_line, const RefusalContext& where) {
  const std::string code = LeadingCode(bye_line);
  // A BYE with an operator code ([EXPIRED] at login, [PRIVACYREQUIRED]) is
  // that code's problem: retrying alone will not help.
  if (const CodeMeaning* m = Find(code); m && m->retry == RetryClass::kNeedsOperator) {
    RefusalContext bye = where;
    bye.server = "BYE " + where.server;
    return *ErrorForResponseCode(code, bye);
  }
  std::string msg = "the server at " + where.connection + " ended the session with BYE during " + where.what;
  if (!code.empty()) msg += " [" + code + "]";
  msg += ": \"" + where.server + "\"";
  if (const CodeMeaning* m = Find(code))
    msg += "; " + std::string(m->meaning);
  else
    msg += "; mailhook reconnects with backoff (a server restart or an idle timeout says this)";
  return Error("imap.bye", RetryClass::kBackoff, msg);
}

namespace {

/// The size N of a literal announced at the end of `line` ("{N}", "{N+}",
/// "{N-}", "~{N}"), or nullopt.
std::optional<size_t> LiteralAnnounced(std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (line.empty() || line.back() != '}') return std::nullopt;
  line.remove_suffix(1);
  if (!line.empty() && (line.back() == '+' || line.back() == '-')) line.remove_suffix(1);
  const size_t open = line.rfind('{');
  if (open == std::string_view::npos || open + 1 == line.size() || line.size() - open > 20) return std::nullopt;
  size_t n = 0;
  for (char c : line.substr(open + 1)) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + static_cast<size_t>(c - '0');
  }
  return n;
}

/// The first protocol line of `buffered` (a server's response bytes) for
/// which `match` returns a value. Literal data is skipped by the size its
/// line announced: it may be a message body, which a sender writes, so a
/// "* BYE" or "[ALERT]" line inside a mail is never taken for the server's.
template <typename Match>
std::optional<std::string> FirstProtocolLine(std::string_view buffered, Match match) {
  for (size_t start = 0; start < buffered.size();) {
    size_t end = buffered.find('\n', start);
    std::string_view line = buffered.substr(start, end == std::string_view::npos ? end : end - start);
    if (auto found = match(line)) return found;
    if (end == std::string_view::npos) break;
    start = end + 1;
    if (auto literal = LiteralAnnounced(line)) start += std::min(*literal, buffered.size() - start);
  }
  return std::nullopt;
}

std::string_view WithoutCr(std::string_view text) {
  if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
  return text;
}

}  // namespace

std::optional<std::string> FindBye(std::string_view buffered) {
  return FirstProtocolLine(buffered, [](std::string_view line) -> std::optional<std::string> {
    if (line.size() >= 5 && line.substr(0, 2) == "* " &&
        (line.substr(2, 3) == "BYE" || line.substr(2, 3) == "bye" || line.substr(2, 3) == "Bye") &&
        (line.size() == 5 || line[5] == ' ')) {
      return std::string(WithoutCr(line.substr(std::min(line.size(), size_t{6}))));
    }
    return std::nullopt;
  });
}

std::optional<std::string> FindAlert(std::string_view buffered) {
  return FirstProtocolLine(buffered, [](std::string_view line) -> std::optional<std::string> {
    if (!line.starts_with("* ")) return std::nullopt;
    const size_t at = line.find(" [ALERT] ");
    if (at == std::string_view::npos || at > 5) return std::nullopt;  // "* OK [ALERT] ", "* BAD [ALERT] "
    return std::string(WithoutCr(line.substr(at + 9)));
  });
}

void AlertLog::Note(const std::string& account, const std::string& connection, const std::string& text) {
  if (std::find(seen_.begin(), seen_.end(), text) != seen_.end()) return;
  if (seen_.size() >= kMaxRemembered) seen_.erase(seen_.begin());
  seen_.push_back(text);
  std::string shown = text;
  std::replace(shown.begin(), shown.end(), '"', '\'');
  // RFC 3501 §7.1: an ALERT "MUST be presented to the user".
  util::Log(util::Area::kImap)
      .warn("imap.alert account={} server={} text=\"{}\"", account.empty() ? "-" : account, connection, shown);
}

}  // namespace mailhook::imap
