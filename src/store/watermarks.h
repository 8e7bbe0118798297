#pragma once
/// Watermarks: the IMAP position per (account, folder). The watermark only
/// moves in the same transaction that makes the events below it durable
/// (Store::CommitMessages), so a crash replays and never skips.

#include <optional>
#include <string>

#include "store/rows.h"
#include "util/result.h"

namespace mailhook::store {

/// The `watermarks` table.
class Watermarks {
 public:
  virtual ~Watermarks() = default;

  /// nullopt when the folder was never seen.
  virtual util::Result<std::optional<Watermark>> Get(const std::string& account, const std::string& folder) = 0;
  /// Sets (or replaces) the folder's watermark; joins an open transaction.
  /// A folder's first watermark is uncovered up to its last_uid (its
  /// fingerprint floor, below); replacing one leaves the floor as it is.
  virtual util::Status Set(const std::string& account, const std::string& folder, Watermark mark) = 0;
  /// The folder's fingerprint floor: the handled messages at or below this
  /// UID may have no fingerprint (a baseline passed over them, or they were
  /// handled before fingerprints existed); 0 when every one has one, and
  /// when the folder was never seen.
  virtual util::Result<uint32_t> FingerprintFloor(const std::string& account, const std::string& folder) = 0;
  /// Sets the floor of a folder that has a watermark; joins an open transaction.
  virtual util::Status SetFingerprintFloor(const std::string& account, const std::string& folder, uint32_t floor) = 0;

 protected:
  Watermarks() = default;
  Watermarks(const Watermarks&) = delete;
  Watermarks& operator=(const Watermarks&) = delete;
};

}  // namespace mailhook::store
