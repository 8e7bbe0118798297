#pragma once
/// SmtpSent: the replies `smtp:` targets sent (or are about to send), so that
/// a target answers a message once (RFC 3834 section 2: never the same
/// message twice) and a sender at most `rate_limit.per_sender` times per
/// `rate_limit.window`.
///
/// A reply is reserved before it is sent (ReserveReply: the check and the
/// record in one transaction, so two workers cannot both pass the limit) and
/// the reservation is keyed by the event id: a retry of the same event
/// (after a 451, a timeout or a crash between reserve and send) finds its own
/// reservation and passes, instead of being refused as "already answered".
/// A reply that can never go out (a permanent failure) is given back with
/// ReleaseReply, so it does not count against the sender.
///
/// Addresses are compared lower-cased (the store lower-cases them); message
/// ids exactly; an empty message id never matches another.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <string>

#include "store/rows.h"
#include "util/result.h"

namespace mailhook::store {

/// One row of `smtp_sent`: a reply reserved or sent by a target.
struct SentReply {
  std::string target;      ///< "smtp:<name>" (util::TargetId::ToString)
  std::string sender;      ///< the address answered; stored lower-cased
  std::string message_id;  ///< the answered message's Message-ID with <>; "" when it had none
  std::string event_id;    ///< the event the reply belongs to
  TimePoint sent_at;       ///< when it was reserved
};

/// A target's per-sender limit: at most `per_sender` replies to one address
/// within any `window` (a reply reserved exactly `window` ago no longer counts).
struct ReplyLimit {
  int per_sender = 1;
  std::chrono::milliseconds window = std::chrono::hours(24);
};

/// What ReserveReply decided.
enum class ReplyReservation {
  kReserved,         ///< send: the reply is recorded (or was, by an earlier attempt of this event)
  kAlreadyAnswered,  ///< skip: another event of this target answered this message id
  kRateLimited,      ///< skip: the sender had per_sender replies within the window
};

/// The `smtp_sent` table.
class SmtpSent {
 public:
  virtual ~SmtpSent() = default;

  /// In ONE transaction: passes a reply already reserved by the same
  /// (target, event id); refuses one whose message id the target answered
  /// under another event, or whose sender is at the limit; else records it
  /// (sent_at = reply.sent_at, the caller's now). The lookups use indexes
  /// (target, event_id), (target, message_id) and (target, sender, sent_at).
  virtual util::Result<ReplyReservation> ReserveReply(const SentReply& reply, ReplyLimit limit) = 0;
  /// Forgets the reservation of (target, event id): the reply never went
  /// out (a permanent failure), so it neither counts against the sender nor
  /// marks the message answered. No row: nothing to do.
  virtual util::Status ReleaseReply(const std::string& target, const std::string& event_id) = 0;

  /// Whether `target` reserved a reply to `message_id` ("" never is).
  virtual util::Result<bool> AlreadyAnswered(const std::string& target, const std::string& message_id) = 0;
  /// Replies of `target` to `sender` reserved after `since` (strictly).
  virtual util::Result<int64_t> SentSince(const std::string& target, const std::string& sender, TimePoint since) = 0;
  /// Records a reply without the checks (a second row for the same target
  /// and event is ignored).
  virtual util::Status RecordSent(const SentReply& reply) = 0;
  /// Deletes the rows reserved before `before`; the caller passes KeepSince
  /// (a message answered earlier than that is forgotten too, and would be
  /// answered again).
  virtual util::Status PruneSentBefore(TimePoint before) = 0;

  /// The "already answered" rule needs a row at least this long. A message
  /// comes back as a new event when it is copied or moved into another
  /// watched folder, or found again after a UIDVALIDITY change or a replayed
  /// dead letter; that happens within days, and the store remembers
  /// delivered events for 7 days. 30 days covers these with room, at one
  /// small row per reply (at most per_sender per sender and window).
  static constexpr std::chrono::hours kAnsweredFloor{24 * 30};
  /// The oldest reservation still needed: now minus the longest
  /// rate_limit.window of the targets, and at least kAnsweredFloor.
  static TimePoint KeepSince(TimePoint now, std::chrono::milliseconds longest_window) {
    return now - std::max<std::chrono::milliseconds>(longest_window, kAnsweredFloor);
  }

 protected:
  SmtpSent() = default;
  SmtpSent(const SmtpSent&) = delete;
  SmtpSent& operator=(const SmtpSent&) = delete;
};

}  // namespace mailhook::store
