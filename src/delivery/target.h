#pragma once
/// Target: where a claimed outbox row is delivered. The Dispatcher looks a row's
/// `target` column (the stored form of a util::TargetId, "webhook:<name>" or
/// "hook:<name>") up in its registry of Targets and calls Deliver; how to retry
/// is the Dispatcher's business.
///
/// Implementations must be thread-safe: several dispatcher workers may call
/// Deliver at once (at most the target's `concurrency`). Deliver should not
/// throw, every failure being an Outcome; if it does, the Dispatcher records
/// a failed (retryable) attempt.
///
/// Cancellation is the caller's token, one per call: Deliver observes it
/// itself (its fd in a poll(), or a CancelToken::Registration), including a
/// token that fired before the call began, so a shutdown that lands between
/// the caller's last check and the call is never missed.

#include <string>

#include "delivery/retry_policy.h"
#include "store/store.h"
#include "util/cancel_token.h"

namespace mailhook::delivery {

/// One delivery destination.
class Target {
 public:
  virtual ~Target() = default;

  /// Delivers one row (one attempt). Blocks for at most the target's timeout;
  /// returns promptly with cancelled=true once `cancel` has fired (before or
  /// during the call), the row then being no attempt at all.
  virtual Outcome Deliver(const store::Delivery& delivery, const util::CancelToken& cancel) = 0;
};

}  // namespace mailhook::delivery
