#pragma once
/// SqliteFingerprints: Fingerprints (store/fingerprints.h) over one SQLite connection (Db), with
/// its SQL; a second backend implements Fingerprints with its own.

#include "store/db.h"
#include "store/fingerprints.h"

namespace mailhook::store {

/// The SQLite Fingerprints.
class SqliteFingerprints final : public Fingerprints {
 public:
  explicit SqliteFingerprints(Db& db) : db_(db) {}

  util::Status Add(const std::string& account, const std::string& folder, const std::vector<Fingerprint>& fps) override;
  util::Result<std::vector<uint32_t>> Claim(const std::string& account, const std::string& folder,
                                            const std::vector<Fingerprint>& fps) override;
  util::Status KeepGenerations(const std::string& account, const std::string& folder, uint32_t a, uint32_t b) override;
  util::Status ForgetAbsent(const std::string& account, const std::string& folder, uint32_t uidvalidity, uint32_t lo,
                            uint32_t hi, std::span<const uint32_t> present) override;
  util::Result<bool> HasOther(const std::string& account, const std::string& folder, uint32_t uidvalidity) override;
  util::Result<int64_t> Count(const std::string& account, const std::string& folder) override;
  util::Result<std::vector<Fingerprint>> List(const std::string& account, const std::string& folder,
                                              uint32_t uidvalidity) override;

 private:
  Db& db_;
};

}  // namespace mailhook::store
