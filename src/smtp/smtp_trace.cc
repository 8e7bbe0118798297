#include "smtp/smtp_trace.h"

#include <algorithm>
#include <atomic>

#include "util/base64.h"
#include "util/known_secrets.h"
#include "util/log.h"

namespace mailhook::smtp {
namespace {

std::atomic<uint64_t> g_next_conn{1};

}  // namespace

SmtpTrace::SmtpTrace(std::string target, const std::string& username, const util::Secret& secret)
    : target_(std::move(target)), conn_(g_next_conn++) {
  const std::string& s = secret.reveal();
  if (s.empty()) return;
  // Every form the secret crosses the wire in (smtp_client.cc): raw (a
  // server may echo a decoded form), base64 alone (AUTH LOGIN), SASL PLAIN
  // (RFC 4616) and XOAUTH2; a base64 prefix of 16+ characters still reveals
  // part of it.
  const std::vector<std::string> encoded = {util::Base64Encode(s),
                                            util::Base64Encode(std::string(1, '\0') + username + '\0' + s),
                                            util::Base64Encode("user=" + username + "\1auth=Bearer " + s + "\1\1")};
  forms_ = {s};
  for (const std::string& e : encoded) {
    forms_.push_back(e);
    if (e.size() > 16) forms_.push_back(e.substr(0, 16));
  }
  std::sort(forms_.begin(), forms_.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
}

void SmtpTrace::Sent(std::string_view line, bool withheld, std::string_view shown_prefix) {
  if (!util::Log(util::Area::kSmtp).should_log(spdlog::level::trace)) return;
  if (withheld) {
    Emit("smtp.sent", std::string(shown_prefix) + "<withheld>");
    return;
  }
  Emit("smtp.sent", Clean(line, kMaxShownLine));
}

void SmtpTrace::SentData(size_t bytes) {
  if (!util::Log(util::Area::kSmtp).should_log(spdlog::level::trace)) return;
  Emit("smtp.sent", "<message: " + std::to_string(bytes) + " bytes>");
}

void SmtpTrace::Received(std::string_view line) {
  if (!util::Log(util::Area::kSmtp).should_log(spdlog::level::trace)) return;
  Emit("smtp.received", Clean(line, kMaxShownLine));
}

std::string SmtpTrace::Clean(std::string_view text, size_t max_len) const {
  // Redacted whole, then cut: a cut never leaves half a secret behind.
  std::string out(text.substr(0, std::max<size_t>(max_len, 16384)));
  for (const std::string& form : forms_) {
    for (size_t at; (at = out.find(form)) != std::string::npos;) out.replace(at, form.size(), "<redacted>");
  }
  out = util::RedactKnownSecrets(std::move(out));
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  }
  if (out.size() > max_len) out = out.substr(0, max_len) + "...";
  return out;
}

void SmtpTrace::Emit(const char* event, std::string_view line) const {
  std::string escaped;
  escaped.reserve(line.size() + 8);
  for (char c : line) {
    if (c == '"' || c == '\\') escaped += '\\';
    escaped += c;
  }
  util::Log(util::Area::kSmtp).trace("{} target={} conn={} line=\"{}\"", event, target_, conn_, escaped);
}

}  // namespace mailhook::smtp
