#include "daemon/recheck_schedule.h"

namespace mailhook::daemon {

void RecheckSchedule::SyncDone(bool found_new, TimePoint now) {
  const bool was_recheck = recheck_running_;
  recheck_running_ = false;
  if (found_new) {
    delay_ = kFirst;
  } else if (due_) {
    return;  // a notified sync found nothing: the pending recheck stays as it is
  } else if (was_recheck && delay_.count() > 0) {
    delay_ *= 2;
  } else {
    delay_ = std::chrono::milliseconds(0);  // nothing pending and nothing found: no chain
  }
  if (delay_ > kLast) delay_ = std::chrono::milliseconds(0);
  due_.reset();
  if (delay_.count() > 0) due_ = now + delay_;
}

bool RecheckSchedule::TakeDue(TimePoint now) {
  if (!due_ || *due_ > now) return false;
  due_.reset();
  recheck_running_ = true;
  return true;
}

}  // namespace mailhook::daemon
