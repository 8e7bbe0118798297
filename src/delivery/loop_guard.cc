#include "delivery/loop_guard.h"

#include <array>

#include <nlohmann/json.hpp>

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

/// The first address with an '@' (a group or a bare name has none).
std::string FirstAddress(const std::vector<mime::Address>& list) {
  for (const auto& a : list) {
    if (a.address.find('@') != std::string::npos) return a.address;
  }
  return "";
}

/// The reply address: From, else Sender (the raw field value).
std::string ReplyAddress(const std::vector<mime::Address>& from, const std::optional<std::string>& sender) {
  std::string address = FirstAddress(from);
  if (address.empty() && sender) address = FirstAddress(mime::ParseAddressList(*sender));
  return address;
}

/// "<addr>" or "<>" from a Return-Path value; "" when absent.
std::string NormalReturnPath(const std::optional<std::string>& value) {
  return value ? "<" + ReturnPathAddress(*value) + ">" : "";
}

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
  mime::MessageContent content;
  mime::AutoReplyHeaders& h = content.auto_reply;
  h.auto_submitted = mime::FirstHeader(fields, "Auto-Submitted");
  h.precedence = mime::FirstHeader(fields, "Precedence");
  h.list_id = mime::FirstHeader(fields, "List-Id");
  h.list_unsubscribe = mime::FirstHeader(fields, "List-Unsubscribe");
  // The first Return-Path is the one the final delivery added (RFC 5321
  // section 4.4).
  h.return_path = mime::FirstHeader(fields, "Return-Path");
  h.sender = mime::FirstHeader(fields, "Sender");
  if (auto from = mime::FirstHeader(fields, "From")) content.from = mime::ParseAddressList(*from);
  if (auto id = mime::FirstHeader(fields, "Message-ID")) content.message_id = mime::ParseMessageId(*id);
  return LoopFactsFromContent(content);
}

LoopFacts LoopFactsFromContent(const mime::MessageContent& content) {
  const mime::AutoReplyHeaders& h = content.auto_reply;
  LoopFacts facts;
  facts.auto_submitted = h.auto_submitted.value_or("");
  facts.precedence = h.precedence.value_or("");
  facts.has_list_id = h.list_id.has_value();
  facts.has_list_unsubscribe = h.list_unsubscribe.has_value();
  facts.sender_address = ReplyAddress(content.from, h.sender);
  facts.return_path = NormalReturnPath(h.return_path);
  facts.message_id = content.message_id.value_or("");
  return facts;
}

LoopFacts LoopFactsFromEventJson(std::string_view event_json) {
  const auto event = nlohmann::json::parse(event_json, nullptr, /*allow_exceptions=*/false);
  if (!event.is_object()) return {};
  auto text = [](const nlohmann::json& obj, const char* key) -> std::optional<std::string> {
    if (!obj.is_object() || !obj.contains(key) || !obj[key].is_string()) return std::nullopt;
    return obj[key].get<std::string>();
  };
  static const nlohmann::json kAbsent;
  mime::MessageContent content;
  const nlohmann::json& message = event.contains("message") ? event["message"] : kAbsent;
  if (message.is_object() && message.contains("from") && message["from"].is_array()) {
    for (const auto& a : message["from"]) {
      if (auto address = text(a, "address")) content.from.push_back({text(a, "name").value_or(""), *address});
    }
  }
  content.message_id = text(message, "message_id");
  const nlohmann::json& h = event.contains("auto_reply_headers") ? event["auto_reply_headers"] : kAbsent;
  content.auto_reply = {text(h, "auto_submitted"),   text(h, "precedence"),  text(h, "list_id"),
                        text(h, "list_unsubscribe"), text(h, "return_path"), text(h, "sender")};
  return LoopFactsFromContent(content);
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
