#pragma once
/// SmtpRecipients: per recipient, how far an `smtp:` target's delivery of
/// one event got, so that a send some recipients took and others deferred
/// (a 4yz at RCPT) is retried to the deferred ones only, with the same bytes.
///
/// A row is written when a recipient's fate is final: `kSent` (the server
/// took the message for it after DATA) or `kRefused` (a 5yz: never retried).
/// A recipient without a row is still to be sent. Rows of a delivery that
/// ended (its outbox row and dead letter are gone) are pruned (PruneEnded);
/// those of a dead letter stay, so a replay does not send to the recipients
/// who already have the message.

#include <string>
#include <vector>

#include "store/rows.h"
#include "util/result.h"

namespace mailhook::store {

/// One recipient's final state for one (target, event).
struct RecipientState {
  enum class Status { kSent, kRefused };
  std::string recipient;  ///< the envelope address as sent in RCPT TO
  Status status = Status::kSent;
  std::string reply;  ///< the server's reply ("550 5.1.1 no such user"); may be ""
  TimePoint at;       ///< when it was recorded
};

/// The `smtp_recipients` table (schema v7).
class SmtpRecipients {
 public:
  virtual ~SmtpRecipients() = default;

  /// The recorded recipients of (target, event), in recipient order.
  virtual util::Result<std::vector<RecipientState>> ForEvent(const std::string& target,
                                                             const std::string& event_id) = 0;
  /// Records (or overwrites) the states in ONE transaction.
  virtual util::Status Record(const std::string& target, const std::string& event_id,
                              const std::vector<RecipientState>& states) = 0;
  /// Forgets every row of (target, event) (a delivery that nobody got: a
  /// replay of its dead letter tries every recipient again).
  virtual util::Status Forget(const std::string& target, const std::string& event_id) = 0;
  /// Deletes the rows of deliveries that ended: no outbox row and no dead
  /// letter for their (event, target) any more.
  virtual util::Status PruneEnded() = 0;

 protected:
  SmtpRecipients() = default;
  SmtpRecipients(const SmtpRecipients&) = delete;
  SmtpRecipients& operator=(const SmtpRecipients&) = delete;
};

}  // namespace mailhook::store
