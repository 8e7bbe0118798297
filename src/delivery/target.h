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

#include <string>

#include "delivery/retry_policy.h"
#include "store/store.h"

namespace mailhook::delivery {

/// One delivery destination.
class Target {
 public:
  virtual ~Target() = default;

  /// Delivers one row (one attempt). Blocks for at most the target's timeout.
  virtual Outcome Deliver(const store::Delivery& delivery) = 0;

  /// Aborts in-flight Deliver calls (shutdown); they return with cancelled=true.
  /// Thread-safe; later Deliver calls are unaffected.
  virtual void Cancel() {}
};

}  // namespace mailhook::delivery
