#include "delivery/loop_guard.h"

#include <array>

#include "util/strings.h"

namespace mailhook::delivery {
namespace {

/// A keyword field's value without comments (RFC 5322 section 3.2.2, nested)
/// and parameters (`auto-replied; owner-email=...`, RFC 3834 section 5),
/// trimmed and lower-cased: "Auto-Replied (vacation)" is "auto-replied".
std::string Keyword(std::string_view value) {
  std::string out;
  int depth = 0;
  for (char c : value) {
    if (c == '(') {
      ++depth;
    } else if (c == ')' && depth > 0) {
      --depth;
    } else if (depth == 0) {
      if (c == ';') break;
      out += util::LowerChar(c);
    }
  }
  return std::string(util::Trim(out));
}

/// The address inside a Return-Path value: "" for "<>" (and "< >").
std::string ReturnPathAddress(std::string_view return_path) {
  std::string_view s = util::Trim(return_path);
  if (s.starts_with('<')) s.remove_prefix(1);
  if (s.ends_with('>')) s.remove_suffix(1);
  return std::string(util::Trim(s));
}

/// The local part of an address without a +tag (RFC 5233 subaddress),
/// lower-cased; "" without an '@'.
std::string LocalPart(std::string_view address) {
  auto at = address.rfind('@');
  if (at == std::string_view::npos) return "";
  std::string_view local = address.substr(0, at);
  if (local.size() >= 2 && local.front() == '"' && local.back() == '"') local = local.substr(1, local.size() - 2);
  // "bounces+123" keeps its tag for the bounce rule below; the exact names
  // ("noreply+x") are compared without it.
  return util::Lower(local);
}

bool IsBounceName(std::string_view local) {
  for (std::string_view stem : {"bounces", "bounce"}) {
    if (!local.starts_with(stem)) continue;
    if (local.size() == stem.size()) return true;
    char next = local[stem.size()];
    return next == '-' || next == '+' || next == '.' || next == '_' || next == '=';
  }
  return false;
}

bool SameAddress(std::string_view a, std::string_view b) { return !a.empty() && util::EqualsIgnoreCase(a, b); }

}  // namespace

std::string_view RuleName(SkipRule rule) {
  switch (rule) {
    case SkipRule::kAutoSubmitted: return "auto_submitted";
    case SkipRule::kPrecedence: return "precedence";
    case SkipRule::kMailingList: return "list";
    case SkipRule::kNullSender: return "null_sender";
    case SkipRule::kRobotSender: return "robot_sender";
    case SkipRule::kOwnAddress: return "own_address";
    case SkipRule::kAlreadyAnswered: return "already_answered";
    case SkipRule::kRateLimited: return "rate_limited";
  }
  return "unknown";
}

bool IsRobotAddress(std::string_view address) {
  const std::string local = LocalPart(util::Trim(address));
  if (local.empty()) return false;
  if (IsBounceName(local)) return true;
  // RFC 3834 section 2: owner-* and *-request are list addresses.
  if (local.starts_with("owner-") || local.ends_with("-request")) return true;
  const std::string name = local.substr(0, local.find('+'));
  static constexpr std::array<std::string_view, 9> kNames = {"mailer-daemon", "postmaster",   "noreply",
                                                             "no-reply",      "no_reply",     "donotreply",
                                                             "do-not-reply",  "do_not_reply", "mailer_daemon"};
  for (std::string_view n : kNames) {
    if (name == n) return true;
  }
  return false;
}

LoopFacts LoopFactsFromHeaders(const std::vector<mime::HeaderField>& fields) {
  LoopFacts facts;
  facts.auto_submitted = mime::FirstHeader(fields, "Auto-Submitted").value_or("");
  facts.precedence = mime::FirstHeader(fields, "Precedence").value_or("");
  facts.has_list_id = mime::FirstHeader(fields, "List-Id").has_value();
  facts.has_list_unsubscribe = mime::FirstHeader(fields, "List-Unsubscribe").has_value();
  for (std::string_view field : {"From", "Sender"}) {
    auto value = mime::FirstHeader(fields, field);
    if (!value) continue;
    for (const auto& a : mime::ParseAddressList(*value)) {
      if (a.address.find('@') == std::string::npos) continue;
      facts.sender_address = a.address;
      break;
    }
    if (!facts.sender_address.empty()) break;
  }
  // The first Return-Path is the one the final delivery added (RFC 5321
  // section 4.4).
  if (auto rp = mime::FirstHeader(fields, "Return-Path")) facts.return_path = "<" + ReturnPathAddress(*rp) + ">";
  if (auto id = mime::FirstHeader(fields, "Message-ID")) facts.message_id = mime::ParseMessageId(*id).value_or("");
  return facts;
}

std::optional<SkipRule> StaticSkipRule(const LoopFacts& facts, std::string_view own_from_address) {
  const std::string auto_submitted = Keyword(facts.auto_submitted);
  if (!auto_submitted.empty() && auto_submitted != "no") return SkipRule::kAutoSubmitted;
  const std::string precedence = Keyword(facts.precedence);
  if (precedence == "bulk" || precedence == "list" || precedence == "junk") return SkipRule::kPrecedence;
  if (facts.has_list_id || facts.has_list_unsubscribe) return SkipRule::kMailingList;
  const std::string return_path = ReturnPathAddress(facts.return_path);
  const bool null_return_path = !facts.return_path.empty() && return_path.empty();
  const std::string_view sender = util::Trim(facts.sender_address);
  if (null_return_path || sender.find('@') == std::string_view::npos) return SkipRule::kNullSender;
  if (IsRobotAddress(sender) || IsRobotAddress(return_path)) return SkipRule::kRobotSender;
  const std::string_view own = util::Trim(own_from_address);
  if (SameAddress(sender, own) || SameAddress(return_path, own)) return SkipRule::kOwnAddress;
  return std::nullopt;
}

}  // namespace mailhook::delivery
