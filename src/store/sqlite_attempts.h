#pragma once
/// SqliteAttempts: Attempts (store/attempts.h) over one SQLite connection (Db), with
/// its SQL; a second backend implements Attempts with its own.

#include "store/attempts.h"
#include "store/db.h"

namespace mailhook::store {

/// The SQLite Attempts.
class SqliteAttempts final : public Attempts {
 public:
  explicit SqliteAttempts(Db& db) : db_(db) {}

  util::Status Begin(const std::string& account, const std::string& folder, uint32_t uidvalidity,
                     std::span<const uint32_t> uids) override;
  util::Status Refund(const std::string& account, const std::string& folder, std::span<const uint32_t> uids) override;
  util::Status RecordFailure(const std::string& account, const std::string& folder, uint32_t uid,
                             const std::string& code, const std::string& message, bool count) override;
  util::Result<std::vector<Attempt>> List(const std::string& account, const std::string& folder,
                                          uint32_t uidvalidity) override;
  util::Status Forget(const std::string& account, const std::string& folder, std::span<const uint32_t> uids) override;
  util::Status ForgetBelow(const std::string& account, const std::string& folder, Watermark mark) override;

 private:
  Db& db_;
};

}  // namespace mailhook::store
