#pragma once
/// The values the store's tables hold and hand out. Plain data, no SQLite:
/// a second backend produces the same rows.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace mailhook::store {

using Clock = std::chrono::system_clock;
using TimePoint = Clock::time_point;

/// Where a folder's processing stands: every UID <= last_uid under this
/// UIDVALIDITY is durably in the outbox (or was delivered).
struct Watermark {
  uint32_t uidvalidity = 0;
  uint32_t last_uid = 0;
  bool operator==(const Watermark&) const = default;
};

/// What a message that became an event is recognised by after a
/// UIDVALIDITY change (the folder recreated, its messages given new UIDs):
/// its Message-ID, or a hash of its header block when it has none, and its
/// RFC822.SIZE. Kept per (account, folder, uidvalidity, uid).
struct Fingerprint {
  uint32_t uidvalidity = 0;
  uint32_t uid = 0;
  std::string key;    ///< the Message-ID as sent ("<a@b>"), or "sha256:<hex>" of the header block
  uint64_t size = 0;  ///< RFC822.SIZE
  bool operator==(const Fingerprint&) const = default;
};

/// One event for one target, as handed to CommitMessages.
struct OutboxItem {
  std::string event_id;  ///< evt_..., deterministic per message
  std::string target;    ///< "webhook:<name>" or "hook:<name>"
  std::string account;
  std::string folder;
  uint32_t uidvalidity = 0;
  uint32_t uid = 0;
  std::string payload;  ///< the event JSON sent to this target
  /// For CommitMessages only: when not empty, the payload is these pieces one
  /// after another (`payload` is ignored). A large event (attachment contents
  /// shared between targets) is then written in pieces, never assembled in
  /// memory to be stored; a small one (up to 4 KiB) is joined and stored like
  /// `payload`. Rows read back always have `payload`.
  std::vector<std::shared_ptr<const std::string>> pieces;
};

/// A post-action (on_delivered: mark seen, add flags, move) waiting until
/// every target of its event succeeded; done by the folder's watcher.
struct PostAction {
  std::string event_id;
  std::string account;
  std::string folder;
  uint32_t uidvalidity = 0;
  uint32_t uid = 0;
};

/// A message that failed extraction before: how often it was tried (an
/// attempt is counted when it starts, so a crash mid-message counts too)
/// and why the last one failed.
struct Attempt {
  uint32_t uid = 0;
  int count = 0;
  std::string last_error;  ///< "" while unknown (the process died meanwhile)
  std::string last_code;   ///< the Error code of the last failure, "" while unknown
};

/// An outbox row claimed for delivery.
struct Delivery {
  int64_t id = 0;
  OutboxItem item;
  int attempts = 0;  ///< failed attempts so far
  TimePoint created_at;
  TimePoint next_attempt_at;
  std::string last_error;
};

/// A row that failed permanently or exhausted its retries.
struct DeadLetter {
  int64_t id = 0;
  OutboxItem item;
  int attempts = 0;
  TimePoint created_at;
  TimePoint failed_at;
  std::string last_error;
};

/// A dead letter without its payload, for listings: an event with attachment
/// contents may be megabytes, and a listing shows only this.
struct DeadLetterInfo {
  int64_t id = 0;
  std::string event_id;
  std::string target;
  std::string account;
  std::string folder;
  uint32_t uidvalidity = 0;
  uint32_t uid = 0;
  int attempts = 0;
  TimePoint created_at;
  TimePoint failed_at;
  std::string last_error;
};

}  // namespace mailhook::store
