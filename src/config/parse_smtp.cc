// One smtp target (issue 12): the submission server, its credentials, the
// sender, and the message: mode, recipients, templates, rate limit.
#include "config/loader.h"

#include <algorithm>
#include <cctype>

#include "util/mail_template.h"

namespace mailhook::config::internal {
namespace {

constexpr std::string_view kReplySubject = "Re: {{message.subject}}";
constexpr std::string_view kForwardSubject = "Fwd: {{message.subject}}";

/// Why `address` is not a plain local@domain (RFC 5321 section 4.1.2
/// Mailbox, without quoted local parts or address literals), or "" when it is.
std::string AddressProblem(std::string_view address) {
  auto at = address.rfind('@');
  if (at == std::string_view::npos) return "has no '@'";
  std::string_view local = address.substr(0, at), domain = address.substr(at + 1);
  if (local.empty()) return "has nothing before the '@'";
  if (domain.empty()) return "has no domain after the '@'";
  // A UTF-8 domain passes (the message builder writes it as IDNA A-labels);
  // a UTF-8 local part would need SMTPUTF8 (RFC 6531), which the builder
  // does not use.
  static constexpr std::string_view kSpecials = "()<>[]:;@\\,\" ";
  for (char c : local) {
    if (static_cast<unsigned char>(c) >= 0x80) return "has a non-ASCII local part (SMTPUTF8 is not used)";
    if (static_cast<unsigned char>(c) < 0x21 || c == 0x7f || kSpecials.find(c) != std::string_view::npos) {
      return "has a space, control character or one of ()<>[]:;@\\,\" in its local part";
    }
  }
  if (local.front() == '.' || local.back() == '.' || local.find("..") != std::string_view::npos) {
    return "has a misplaced '.' in its local part";
  }
  for (char c : domain) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x80 && !std::isalnum(u) && c != '-' && c != '.') return "has a character a domain cannot have";
  }
  if (domain.front() == '.' || domain.back() == '.' || domain.find("..") != std::string_view::npos) {
    return "has an empty label in its domain";
  }
  return "";
}

/// "Name <addr>", "\"Name, Inc.\" <addr>", "<addr>" or "addr"; the problem
/// in `why` when it is none of these.
std::optional<MailAddress> ParseMailbox(std::string_view text, std::string& why) {
  text = util::Trim(text);
  MailAddress out;
  auto open = text.rfind('<');
  if (open == std::string_view::npos) {
    out.address = std::string(text);
  } else {
    if (!text.ends_with('>')) {
      why = "has text after the '>'";
      return std::nullopt;
    }
    out.address = std::string(util::Trim(text.substr(open + 1, text.size() - open - 2)));
    std::string_view name = util::Trim(text.substr(0, open));
    if (name.size() >= 2 && name.front() == '"' && name.back() == '"') {
      name = name.substr(1, name.size() - 2);
    } else if (name.find_first_of("<>\",;") != std::string_view::npos) {
      why = "has a display name with one of <>\",; — quote it: \"\\\"Support, Inc.\\\" <support@example.com>\"";
      return std::nullopt;
    }
    if (name.find_first_of("\r\n") != std::string_view::npos) {
      why = "has a line break in its display name";
      return std::nullopt;
    }
    out.name = std::string(name);
  }
  why = AddressProblem(out.address);
  if (!why.empty()) return std::nullopt;
  return out;
}

}  // namespace

void Loader::ParseSmtp(const YAML::Node& node, size_t index, Config& cfg) {
  SmtpTarget t;
  std::string where = EntryName(node, "smtp target", "smtp", index, t.name);
  if (!CheckKeys(node, keys::kSmtp, where)) return;
  ClaimTargetName(node, "smtp target", t.name);
  ParseSmtpServer(node, where, t);
  ParseSmtpAuth(node, where, t);
  ParseSmtpFrom(node, where, t);
  ParseSmtpMessage(node, where, t);
  ParseDelivery(node, where, cfg, t);
  CheckSmtpTemplates(node, where, t);
  cfg.smtp.push_back(std::move(t));
}

/// host, port, tls, allow_insecure, tls_verify, ca_file: as accounts, with
/// the submission ports (465 implicit TLS, RFC 8314; 587 otherwise, RFC
/// 6409). STARTTLS is required when asked for: the client never falls back
/// to plain text.
void Loader::ParseSmtpServer(const YAML::Node& node, const std::string& where, SmtpTarget& t) {
  ParseServer(
      node, where,
      {"smtp.example.com", 465, 587, "the password and the mail", "tls: implicit (port 465) or starttls (port 587)"},
      {&t.host, &t.port, &t.tls, &t.allow_insecure, &t.tls_verify, &t.ca_file});
}

void Loader::ParseSmtpAuth(const YAML::Node& node, const std::string& where, SmtpTarget& t) {
  if (auto user = Required(node, "username", where, "support@example.com")) t.username = *user;
  if (auto auth =
          Enum<SmtpAuth>(node, "auth", where,
                         {{"plain", SmtpAuth::kPlain}, {"login", SmtpAuth::kLogin}, {"xoauth2", SmtpAuth::kXoauth2}})) {
    t.auth = *auth;
  }
  const bool bearer = t.auth == SmtpAuth::kXoauth2;
  ParseCredentials(node, where, {bearer, "xoauth2", "xoauth2", "${SMTP_PASSWORD}", "smtp target", t.allow_insecure},
                   t.password, t.oauth2);
}

void Loader::ParseSmtpFrom(const YAML::Node& node, const std::string& where, SmtpTarget& t) {
  auto text = Required(node, "from", where, "\"Support <support@example.com>\"");
  if (!text) return;
  std::string why;
  if (auto mailbox = ParseMailbox(*text, why)) {
    t.from = std::move(*mailbox);
  } else {
    Fail(node["from"], "\"from\" in " + where + " " + why +
                           "; write one address, optionally with a name: \"Support <support@example.com>\"");
  }
}

void Loader::ParseSmtpMessage(const YAML::Node& node, const std::string& where, SmtpTarget& t) {
  auto mode = Enum<SmtpMode>(node, "mode", where, {{"reply", SmtpMode::kReply}, {"forward", SmtpMode::kForward}});
  if (!Present(node["mode"])) {
    Fail(node, where +
                   " has no \"mode\"; add mode: reply (answer the sender of each message) or mode: forward "
                   "(send each message to the addresses under to:)");
  }
  if (mode) t.mode = *mode;
  const bool reply = t.mode == SmtpMode::kReply;
  t.to = Recipients(node, "to", where, "[\"tickets@example.com\"]");
  t.cc = Recipients(node, "cc", where, "[\"team@example.com\"]");
  // By the entries written, so that an entry refused above is not also
  // reported as a missing one.
  const YAML::Node to = node["to"];
  const bool to_list = Present(to) && to.IsSequence();
  const size_t written = to_list ? to.size() : 0;
  if (mode && reply && written > 0) {
    Fail(node["to"], "\"to\" in " + where +
                         " is for mode: forward; a reply goes to the sender of the message. Remove to: "
                         "(or use cc: for a copy), or use mode: forward");
  } else if (mode && !reply && !Present(node["to"])) {
    Fail(node, where + " has mode: forward but no \"to\"; add to: [\"tickets@example.com\"]");
  } else if (mode && !reply && written == 0 && to_list) {
    Fail(node["to"], "\"to\" in " + where + " is empty; mode: forward needs at least one address");
  }
  t.subject = std::string(reply ? kReplySubject : kForwardSubject);
  if (auto subject = Str(node, "subject", where)) t.subject = *subject;
  t.text = Str(node, "text", where);
  t.html = Str(node, "html", where);
  if (!t.text && !t.html && !Present(node["text"]) && !Present(node["html"])) {
    Fail(node, where + " has no body; add text: \"We received your message. Reference: {{id}}\" (and/or html:)");
  }
  if (auto attach = Bool(node, "attach_original", where)) {
    if (*attach && reply) {
      Fail(node["attach_original"], "attach_original: true in " + where +
                                        " is for mode: forward (the original as message/rfc822); "
                                        "a reply threads by In-Reply-To instead. Remove it");
    } else {
      t.attach_original = *attach;
    }
  }
  if (Present(node["rate_limit"])) {
    if (mode && !reply) {
      Fail(node["rate_limit"], "rate_limit in " + where +
                                   " limits replies (mode: reply); a forward sends every matching "
                                   "message. Remove it, or narrow which messages match with match:");
    } else {
      ParseSmtpRateLimit(node["rate_limit"], "rate_limit of " + where, t);
    }
  }
}

/// to: or cc:: a list of templates. An entry without a {{ }} placeholder is
/// an address as it will be sent, so it is checked here, not at the first
/// event.
std::vector<std::string> Loader::Recipients(const YAML::Node& node, std::string_view key, const std::string& where,
                                            std::string_view example) {
  std::vector<std::string> out;
  auto list = ListNodes(node, key, where, example);
  if (!list) return out;
  for (const auto& [text, at] : *list) {
    std::string why;
    if (text.find("{{") == std::string::npos && !ParseMailbox(text, why)) {
      Fail(at, "address " + Q(text) + " in " + Q(key) + " of " + where + " " + why +
                   "; write one address per entry, e.g. " + std::string(example));
      continue;
    }
    out.push_back(text);
  }
  return out;
}

/// rate_limit: { per_sender: N, window: duration }.
void Loader::ParseSmtpRateLimit(const YAML::Node& node, const std::string& where, SmtpTarget& t) {
  if (!CheckKeys(node, keys::kSmtpRateLimit, where)) return;
  if (auto n = UInt(node, "per_sender", where, "a whole number of replies")) {
    if (*n < 1 || *n > 1000000) {
      Fail(node["per_sender"], "\"per_sender\" in " + where + " must be from 1 to 1000000, e.g. 1");
    } else {
      t.rate_limit.per_sender = static_cast<int>(*n);
    }
  }
  if (auto window = Dur(node, "window", where)) {
    if (*window < std::chrono::minutes(1) || *window > kMaxSmtpWindow) {
      Fail(node["window"], "\"window\" in " + where + " must be from 1m to 8784h (366 days), e.g. 24h");
    } else {
      t.rate_limit.window = *window;
    }
  }
}

void Loader::CheckSmtpTemplates(const YAML::Node& node, const std::string& where, const SmtpTarget& t) {
  // The smtp target compiles them again when it is built; compiled here too,
  // an error has its line for `check` and a SIGHUP reload alike.
  using util::MailTemplate;
  auto check = [&](const YAML::Node& at, const std::string& key, const std::string& source,
                   std::optional<MailTemplate::Escape> e) {  // nullopt: an address list
    auto compiled = e ? MailTemplate::Compile(source, *e) : MailTemplate::CompileAddresses(source);
    if (!compiled.ok()) Fail(at, "\"" + key + "\" in " + where + ": " + compiled.error().message());
  };
  check(node["subject"], "subject", t.subject, MailTemplate::Escape::kHeader);
  if (t.text) check(node["text"], "text", *t.text, MailTemplate::Escape::kText);
  if (t.html) check(node["html"], "html", *t.html, MailTemplate::Escape::kHtml);
  for (const char* key : {"to", "cc"}) {
    const std::vector<std::string>& list = std::string(key) == "to" ? t.to : t.cc;
    for (size_t i = 0; i < list.size(); ++i) {
      const YAML::Node entry = node[key].IsSequence() && i < node[key].size() ? node[key][i] : node[key];
      check(entry, key, list[i], std::nullopt);
    }
  }
}

}  // namespace mailhook::config::internal
