#pragma once
/// SqliteWatermarks: Watermarks (store/watermarks.h) over one SQLite connection (Db), with
/// its SQL; a second backend implements Watermarks with its own.

#include "store/db.h"
#include "store/watermarks.h"

namespace mailhook::store {

/// The SQLite Watermarks.
class SqliteWatermarks final : public Watermarks {
 public:
  explicit SqliteWatermarks(Db& db) : db_(db) {}

  util::Result<std::optional<Watermark>> Get(const std::string& account, const std::string& folder) override;
  util::Status Set(const std::string& account, const std::string& folder, Watermark mark) override;
  util::Result<uint32_t> FingerprintFloor(const std::string& account, const std::string& folder) override;
  util::Status SetFingerprintFloor(const std::string& account, const std::string& folder, uint32_t floor) override;

 private:
  Db& db_;
};

}  // namespace mailhook::store
