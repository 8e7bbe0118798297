#pragma once
/// PgWatermarks: Watermarks (store/watermarks.h) over one PgConnection, with
/// its SQL against the schema of pg_schema.h. Not thread-safe (the connection is not).

#include "pgstore/pg_connection.h"
#include "store/watermarks.h"

namespace mailhook::pgstore {

/// The PostgreSQL Watermarks.
class PgWatermarks final : public store::Watermarks {
 public:
  /// `conn` must outlive this and be migrated (MigratePg).
  explicit PgWatermarks(PgConnection& conn) : conn_(conn) {}

  util::Result<std::optional<store::Watermark>> Get(const std::string& account, const std::string& folder) override;
  util::Status Set(const std::string& account, const std::string& folder, store::Watermark mark) override;
  util::Result<uint32_t> FingerprintFloor(const std::string& account, const std::string& folder) override;
  util::Status SetFingerprintFloor(const std::string& account, const std::string& folder, uint32_t floor) override;

 private:
  PgConnection& conn_;
};

}  // namespace mailhook::pgstore
