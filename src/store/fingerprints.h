#pragma once
/// Fingerprints: what each handled message of a folder is recognised by
/// (Message-ID or header hash, and size), so that after a UIDVALIDITY change
/// the folder's messages are matched to the ones already handled under the
/// old UIDVALIDITY: a match is not sent again, the rest become events.
///
/// Bounded: rows of at most two generations (UIDVALIDITYs) per folder are
/// kept, the current one and the one before (its unmatched rows are
/// dropped at the next change: KeepGenerations), and rows of messages no
/// longer in the folder are dropped when the folder holds far fewer
/// messages than rows (ForgetAbsent).

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "store/rows.h"
#include "util/result.h"

namespace mailhook::store {

/// The `fingerprints` table.
class Fingerprints {
 public:
  virtual ~Fingerprints() = default;

  /// Records the fingerprints (a replay changes nothing); joins an open
  /// transaction (Store::CommitMessages).
  virtual util::Status Add(const std::string& account, const std::string& folder,
                           const std::vector<Fingerprint>& fps) = 0;
  /// Matches each of `fps` (fingerprints under the folder's current
  /// UIDVALIDITY) to a message handled before: one already recorded at the
  /// same (uidvalidity, uid), or a row of another UIDVALIDITY with the same
  /// key and size, which is then moved to this (uidvalidity, uid) so that it
  /// matches one message only. Returns the UIDs that matched nothing, in
  /// the order given. One transaction.
  virtual util::Result<std::vector<uint32_t>> Claim(const std::string& account, const std::string& folder,
                                                    const std::vector<Fingerprint>& fps) = 0;
  /// Drops the folder's rows of every UIDVALIDITY but `a` and `b`.
  virtual util::Status KeepGenerations(const std::string& account, const std::string& folder, uint32_t a,
                                       uint32_t b) = 0;
  /// Drops the rows of `uidvalidity` with a UID in [lo, hi] that is not in
  /// `present` (ascending): messages expunged from the folder.
  virtual util::Status ForgetAbsent(const std::string& account, const std::string& folder, uint32_t uidvalidity,
                                    uint32_t lo, uint32_t hi, std::span<const uint32_t> present) = 0;
  /// True when the folder has rows of a UIDVALIDITY other than `uidvalidity`:
  /// messages handled before a change that may still turn up.
  virtual util::Result<bool> HasOther(const std::string& account, const std::string& folder, uint32_t uidvalidity) = 0;
  /// How many rows the folder has, of every UIDVALIDITY.
  virtual util::Result<int64_t> Count(const std::string& account, const std::string& folder) = 0;
  /// The folder's rows of `uidvalidity`, by UID (tests, small folders).
  virtual util::Result<std::vector<Fingerprint>> List(const std::string& account, const std::string& folder,
                                                      uint32_t uidvalidity) = 0;

 protected:
  Fingerprints() = default;
  Fingerprints(const Fingerprints&) = delete;
  Fingerprints& operator=(const Fingerprints&) = delete;
};

}  // namespace mailhook::store
