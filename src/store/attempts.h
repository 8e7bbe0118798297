#pragma once
/// Attempts: extraction attempts per message, so a message that fails every
/// time (a poison message) is counted across sessions and crashes and becomes
/// message.unprocessable after limits.max_attempts.

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "store/rows.h"
#include "util/result.h"

namespace mailhook::store {

/// The `attempts` table.
class Attempts {
 public:
  virtual ~Attempts() = default;

  /// Counts one more extraction attempt, durably, before the attempt starts:
  /// a message that crashes or hangs the process is counted too. A batch of
  /// several UIDs is not counted against each of them (one guilty message
  /// would doom its neighbours): it only marks them, so that each is tried
  /// alone next time; a single UID counts. Rows of another UIDVALIDITY are
  /// reset. Store::CommitMessages forgets the attempts of the UIDs it makes
  /// durable.
  virtual util::Status Begin(const std::string& account, const std::string& folder, uint32_t uidvalidity,
                             std::span<const uint32_t> uids) = 0;
  /// Takes back one attempt of each UID (the failure was not the message's:
  /// a shutdown, a full disk).
  virtual util::Status Refund(const std::string& account, const std::string& folder,
                              std::span<const uint32_t> uids) = 0;
  /// Records why the attempt at `uid` failed (code and message of the Error);
  /// `count` adds the attempt to its count (it failed inside a batch, where
  /// Begin did not count it, but it is known to be this message's).
  virtual util::Status RecordFailure(const std::string& account, const std::string& folder, uint32_t uid,
                                     const std::string& code, const std::string& message, bool count = false) = 0;
  /// The folder's messages with attempts counted under `uidvalidity`, by UID.
  virtual util::Result<std::vector<Attempt>> List(const std::string& account, const std::string& folder,
                                                  uint32_t uidvalidity) = 0;
  /// Forgets the attempts of `uids` (now durable in the outbox).
  virtual util::Status Forget(const std::string& account, const std::string& folder,
                              std::span<const uint32_t> uids) = 0;
  /// Forgets the attempts at or below `mark` and of any other UIDVALIDITY.
  virtual util::Status ForgetBelow(const std::string& account, const std::string& folder, Watermark mark) = 0;

 protected:
  Attempts() = default;
  Attempts(const Attempts&) = delete;
  Attempts& operator=(const Attempts&) = delete;
};

}  // namespace mailhook::store
