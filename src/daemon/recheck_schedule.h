#pragma once
/// RecheckSchedule: when the account worker looks again, without a
/// notification, at a folder whose sync found new mail. Pure (time is
/// passed in); one per folder; worker thread only.
///
/// A push can be coalesced or lost (Dovecot 2.3's NOTIFY process crashed
/// during 2,000-message bursts and went silent), and Dovecot batches pushes
/// ~0.5 s: a folder that just had mail is looked at again kFirst later, and
/// while those rechecks find nothing, at doubling delays up to kLast. Only a
/// recheck that found nothing doubles the delay: a sync a notification
/// started, which found nothing because the sync before it had already
/// fetched what the notification was about (the usual case in a burst),
/// leaves the pending recheck as it is. (Before, such a sync doubled it, and
/// a burst's messages waited 300–600 ms between syncs.)

#include <chrono>
#include <optional>

namespace mailhook::daemon {

class RecheckSchedule {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;
  static constexpr std::chrono::milliseconds kFirst{150};
  static constexpr std::chrono::milliseconds kLast{5000};

  /// A sync of the folder ended at `now`; `found_new`: it processed new
  /// messages (or has more to do soon).
  void SyncDone(bool found_new, TimePoint now);
  /// True (once) when the recheck is due at `now`; it then counts as
  /// started, so the sync it causes decides the next one.
  bool TakeDue(TimePoint now);
  /// When the next recheck is due; nullopt when none is pending.
  std::optional<TimePoint> due() const { return due_; }
  /// The delay of the pending (or last) recheck; 0 when the chain ended.
  std::chrono::milliseconds delay() const { return delay_; }

 private:
  std::optional<TimePoint> due_;
  std::chrono::milliseconds delay_{0};
  bool recheck_running_ = false;  // TakeDue fired and its sync has not ended
};

}  // namespace mailhook::daemon
