#include "smtp/smtp_reply.h"

#include <cctype>

namespace mailhook::smtp {
namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Length of an enhanced status code at the start of `text` (RFC 3463 §2:
// class "." subject "." detail; class 2, 4 or 5, subject and detail 1-3
// digits), followed by a space or the end; 0 when there is none.
size_t EnhancedLength(std::string_view text) {
  if (text.size() < 5 || (text[0] != '2' && text[0] != '4' && text[0] != '5') || text[1] != '.') return 0;
  size_t at = 2;
  for (int part = 0; part < 2; ++part) {
    size_t digits = 0;
    while (at < text.size() && IsDigit(text[at]) && digits < 4) {
      ++at;
      ++digits;
    }
    if (digits == 0 || digits > 3) return 0;
    if (part == 0) {
      if (at >= text.size() || text[at] != '.') return 0;
      ++at;
    }
  }
  if (at < text.size() && text[at] != ' ') return 0;
  return at;
}

SmtpReply Malformed(std::string_view why) {
  SmtpReply r;
  r.text = "malformed SMTP reply: " + std::string(why);
  return r;
}

bool IsAuthFailure(const SmtpReply& r) {
  return r.code == 530 || r.code == 534 || r.code == 535 || r.code == 538 || r.enhanced == "5.7.8" ||
         r.enhanced == "5.7.9" || r.enhanced == "5.7.10" || r.enhanced == "5.7.11";
}

}  // namespace

std::string_view SendClassName(SendClass cls) {
  switch (cls) {
    case SendClass::kSent: return "sent";
    case SendClass::kRetry: return "retry";
    case SendClass::kNeedsOperator: return "needs_operator";
    case SendClass::kPermanent: return "permanent";
  }
  return "unknown";
}

SmtpReply ParseReply(std::string_view lines) {
  SmtpReply out;
  if (lines.empty()) return Malformed("empty");
  bool first = true;
  while (!lines.empty()) {
    size_t nl = lines.find('\n');
    std::string_view line = lines.substr(0, nl);
    lines.remove_prefix(nl == std::string_view::npos ? lines.size() : nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.size() < 3 || !IsDigit(line[0]) || !IsDigit(line[1]) || !IsDigit(line[2]))
      return Malformed("a line does not start with a 3-digit code");
    const int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
    if (!first && code != out.code) return Malformed("the lines of one reply carry different codes");
    const char sep = line.size() > 3 ? line[3] : ' ';
    if (sep != ' ' && sep != '-') return Malformed("no space or '-' after the code");
    std::string_view text = line.size() > 4 ? line.substr(4) : std::string_view();
    if (first) {
      out.code = code;
      if (size_t n = EnhancedLength(text)) out.enhanced = std::string(text.substr(0, n));
    }
    if (!out.enhanced.empty() && text.starts_with(out.enhanced) && EnhancedLength(text) == out.enhanced.size()) {
      text.remove_prefix(out.enhanced.size());
      while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
    }
    if (!text.empty()) {
      if (!out.text.empty()) out.text += ' ';
      out.text += text;
    }
    first = false;
    if (sep == ' ' && !lines.empty()) return Malformed("text after the last line of a reply");
    if (sep == '-' && lines.empty()) return Malformed("the reply ends on a continuation line");
  }
  if (out.code < 200 || out.code > 599) return Malformed("code " + std::to_string(out.code) + " out of range");
  return out;
}

SendClass ClassifyReply(const SmtpReply& reply, SmtpStage stage) {
  if (reply.code == 0) return SendClass::kRetry;
  if (reply.code < 400) return SendClass::kSent;
  // The basic code decides retry or not (see the header); a 4yz with a
  // 5.x.x enhanced code is still only a temporary refusal.
  if (reply.code < 500) return SendClass::kRetry;
  // RFC 5321 §4.5.3.1.10: servers answer RCPT with 552 where 452 is meant
  // (too many recipients, mailbox full for now); a client treats it as 452.
  if (reply.code == 552 && stage == SmtpStage::kRcpt) return SendClass::kRetry;
  if (IsAuthFailure(reply)) return SendClass::kNeedsOperator;
  switch (stage) {
    case SmtpStage::kConnect:
    case SmtpStage::kEhlo:
    case SmtpStage::kStartTls:
    case SmtpStage::kAuth:
      // Before MAIL nothing about this message was refused: the server
      // refuses this client (blocked address, wrong port, credentials),
      // which every other message would meet too.
      return SendClass::kNeedsOperator;
    default: return SendClass::kPermanent;
  }
}

SendClass Worse(SendClass a, SendClass b) {
  auto rank = [](SendClass c) {
    switch (c) {
      case SendClass::kRetry: return 3;
      case SendClass::kNeedsOperator: return 2;
      case SendClass::kPermanent: return 1;
      case SendClass::kSent: return 0;
    }
    return 0;
  };
  return rank(a) >= rank(b) ? a : b;
}

}  // namespace mailhook::smtp
