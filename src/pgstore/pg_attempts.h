#pragma once
/// PgAttempts: Attempts (store/attempts.h) over one PgConnection, with its
/// SQL against the schema of pg_schema.h. Not thread-safe (the connection is not).

#include "pgstore/pg_connection.h"
#include "store/attempts.h"

namespace mailhook::pgstore {

/// The PostgreSQL Attempts.
class PgAttempts final : public store::Attempts {
 public:
  /// `conn` must outlive this and be migrated (MigratePg).
  explicit PgAttempts(PgConnection& conn) : conn_(conn) {}

  util::Status Begin(const std::string& account, const std::string& folder, uint32_t uidvalidity,
                     std::span<const uint32_t> uids) override;
  util::Status Refund(const std::string& account, const std::string& folder, std::span<const uint32_t> uids) override;
  util::Status RecordFailure(const std::string& account, const std::string& folder, uint32_t uid,
                             const std::string& code, const std::string& message, bool count) override;
  util::Result<std::vector<store::Attempt>> List(const std::string& account, const std::string& folder,
                                                 uint32_t uidvalidity) override;
  util::Status Forget(const std::string& account, const std::string& folder, std::span<const uint32_t> uids) override;
  util::Status ForgetBelow(const std::string& account, const std::string& folder, store::Watermark mark) override;

 private:
  PgConnection& conn_;
};

}  // namespace mailhook::pgstore
