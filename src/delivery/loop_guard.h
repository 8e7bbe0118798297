#pragma once
/// LoopGuard: when an `smtp:` target must NOT answer a message (RFC 3834,
/// "Recommendations for Automatic Responses to Electronic Mail"), so that
/// mailhook never answers an auto-reply, a bounce, a mailing list or itself
/// and starts a mail loop.
///
/// The header-only rules are pure functions here (StaticSkipRule); the two
/// rules that need state (the target answered this message already; the
/// sender's rate limit) are store::SmtpSent::ReserveReply, and their names
/// are the last two SkipRule values. Thread-safe: no state.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mime/header.h"
#include "mime/message.h"

namespace mailhook::delivery {

/// What the rules look at, taken from the original message's headers
/// (LoopFactsFromHeaders).
struct LoopFacts {
  std::string auto_submitted;         ///< Auto-Submitted value as sent; "" when absent
  std::string precedence;             ///< Precedence value as sent; "" when absent
  bool has_list_id = false;           ///< a List-Id field is present (RFC 2919)
  bool has_list_unsubscribe = false;  ///< a List-Unsubscribe field is present (RFC 2369)
  /// Where a reply goes: the first From address, else the Sender address
  /// (the person who wrote; `mode: reply` answers them). "" when neither
  /// holds an address. The Return-Path (the envelope sender, which RFC 3834
  /// section 4 prefers for responses) is judged as well, below: a reply is
  /// skipped when EITHER looks like a robot or like ourselves.
  std::string sender_address;
  /// The Return-Path as "<addr>", "<>" when null (a bounce: RFC 5321
  /// section 4.5.5), "" when absent (the message was not delivered by SMTP
  /// to a store that adds one).
  std::string return_path;
  std::string message_id;  ///< the Message-ID with its <>; "" when absent
};

/// The rule that made a target skip a reply; the first six are header
/// rules (StaticSkipRule), the last two need the store.
enum class SkipRule {
  kAutoSubmitted,
  kPrecedence,
  kMailingList,
  kNullSender,
  kRobotSender,
  kOwnAddress,
  kAlreadyAnswered,
  kRateLimited,
};

/// The rule's name in logs (`smtp.skipped rule=...`) and in the metric label
/// mailhook_smtp_skipped_total{smtp,rule}: "auto_submitted", "precedence", "list",
/// "null_sender", "robot_sender", "own_address", "already_answered",
/// "rate_limited".
std::string_view RuleName(SkipRule rule);

/// The facts of a parsed header block (mime::ParseHeaderBlock).
LoopFacts LoopFactsFromHeaders(const std::vector<mime::HeaderField>& fields);

/// The facts of an extracted message (its `from` and `auto_reply` headers).
LoopFacts LoopFactsFromContent(const mime::MessageContent& content);

/// The facts of a stored event as an smtp route gets it (mime::EventPieces
/// with auto_reply_headers): `message.from`, `message.message_id` and
/// `auto_reply_headers`. A text that is not such an event gives facts with
/// no sender, so StaticSkipRule skips it (null_sender) rather than answer.
LoopFacts LoopFactsFromEventJson(std::string_view event_json);

/// The first header rule that fires, in the order of SkipRule, or nullopt
/// when a reply may be sent (subject to the stateful rules):
/// - auto_submitted: Auto-Submitted present with a value other than `no`
///   (RFC 3834 section 5; case-insensitive, parameters and comments ignored);
/// - precedence: Precedence bulk, list or junk (RFC 3834 section 2);
/// - list: List-Id or List-Unsubscribe present;
/// - null_sender: Return-Path `<>`, or no address to reply to;
/// - robot_sender: the reply address or the Return-Path has the local part
///   mailer-daemon, postmaster, noreply, no-reply, no_reply, donotreply,
///   do-not-reply, do_not_reply, bounce(s) (alone or before - + . _),
///   owner-*, or *-request (RFC 3834 section 2; case-insensitive, a +tag
///   ignored);
/// - own_address: the reply address or the Return-Path is `own_from_address`
///   (case-insensitive).
std::optional<SkipRule> StaticSkipRule(const LoopFacts& facts, std::string_view own_from_address);

/// True when `address`'s local part is one of the robot names above.
bool IsRobotAddress(std::string_view address);

}  // namespace mailhook::delivery
