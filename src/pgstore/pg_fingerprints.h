#pragma once
/// PgFingerprints: Fingerprints (store/fingerprints.h) over one PgConnection,
/// with its SQL against the schema of pg_schema.h. A key that is not UTF-8
/// (a raw 8-bit Message-ID) is stored, matched and listed as "sha256:" and
/// the hex SHA-256 of its bytes: PostgreSQL text refuses the bytes SQLite
/// stored, and a lossy repair (U+FFFD) would make distinct keys equal, so a
/// new message would be taken for one already handled.
/// Not thread-safe (the connection is not).

#include "pgstore/pg_connection.h"
#include "store/fingerprints.h"

namespace mailhook::pgstore {

/// A message key as the fingerprints table stores it: the key itself when
/// PostgreSQL text takes it (UTF-8 without NUL), else "sha256:<hex>" of its
/// bytes. `store migrate` stores SQLite's keys the same way.
std::string PgFingerprintKey(const std::string& key);

/// The PostgreSQL Fingerprints.
class PgFingerprints final : public store::Fingerprints {
 public:
  /// `conn` must outlive this and be migrated (MigratePg).
  explicit PgFingerprints(PgConnection& conn) : conn_(conn) {}

  util::Status Add(const std::string& account, const std::string& folder,
                   const std::vector<store::Fingerprint>& fps) override;
  util::Result<std::vector<uint32_t>> Claim(const std::string& account, const std::string& folder,
                                            const std::vector<store::Fingerprint>& fps) override;
  util::Status KeepGenerations(const std::string& account, const std::string& folder, uint32_t a, uint32_t b) override;
  util::Status ForgetAbsent(const std::string& account, const std::string& folder, uint32_t uidvalidity, uint32_t lo,
                            uint32_t hi, std::span<const uint32_t> present) override;
  util::Result<bool> HasOther(const std::string& account, const std::string& folder, uint32_t uidvalidity) override;
  util::Result<int64_t> Count(const std::string& account, const std::string& folder) override;
  util::Result<std::vector<store::Fingerprint>> List(const std::string& account, const std::string& folder,
                                                     uint32_t uidvalidity) override;

 private:
  PgConnection& conn_;
};

}  // namespace mailhook::pgstore
