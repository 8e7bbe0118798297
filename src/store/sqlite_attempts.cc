#include "store/sqlite_attempts.h"

#include "store/statement.h"

namespace mailhook::store {

using util::Ok;
using util::Status;

namespace {

// Runs `sql` (parameters: account, folder, uid) once per UID, in one transaction.
Status PerUid(Db& db, const char* sql, const std::string& account, const std::string& folder,
              std::span<const uint32_t> uids, const char* what) {
  return db.InTransaction([&]() -> Status {
    Stmt s(db, sql);
    for (uint32_t uid : uids) {
      s.Bind(1, account).Bind(2, folder).Bind(3, uid);
      if (!s.Run()) return db.SqlError(std::string(what) + " UID " + std::to_string(uid));
      s.Reset();
    }
    return Ok();
  });
}

}  // namespace

Status SqliteAttempts::Begin(const std::string& account, const std::string& folder, uint32_t uidvalidity,
                             std::span<const uint32_t> uids) {
  return db_.InTransaction([&]() -> Status {
    Stmt up(db_,
            "INSERT INTO attempts (account, folder, uidvalidity, uid, count, updated_at) "
            "VALUES (?1,?2,?3,?4,?6,?5) ON CONFLICT (account, folder, uid) DO UPDATE SET "
            "count=CASE WHEN uidvalidity=excluded.uidvalidity THEN count+?6 ELSE ?6 END, "
            "last_code=CASE WHEN uidvalidity=excluded.uidvalidity THEN last_code ELSE '' END, "
            "last_error=CASE WHEN uidvalidity=excluded.uidvalidity THEN last_error ELSE '' END, "
            "uidvalidity=excluded.uidvalidity, updated_at=excluded.updated_at");
    for (uint32_t uid : uids) {
      up.Bind(1, account).Bind(2, folder).Bind(3, uidvalidity).Bind(4, uid).Bind(5, ToMs(Clock::now()));
      up.Bind(6, uids.size() == 1 ? 1 : 0);
      if (!up.Run()) return db_.SqlError("counting an attempt at UID " + std::to_string(uid));
      up.Reset();
    }
    return Ok();
  });
}

Status SqliteAttempts::Refund(const std::string& account, const std::string& folder, std::span<const uint32_t> uids) {
  return PerUid(db_, "UPDATE attempts SET count=count-1 WHERE account=? AND folder=? AND uid=? AND count>0", account,
                folder, uids, "taking back an attempt at");
}

Status SqliteAttempts::RecordFailure(const std::string& account, const std::string& folder, uint32_t uid,
                                     const std::string& code, const std::string& message, bool count) {
  return db_.InTransaction([&]() -> Status {
    Stmt up(db_, "UPDATE attempts SET last_code=?, last_error=?, count=count+? WHERE account=? AND folder=? AND uid=?");
    up.Bind(1, code).Bind(2, message.substr(0, 500)).Bind(3, count ? 1 : 0).Bind(4, account).Bind(5, folder);
    up.Bind(6, uid);
    if (!up.Run()) return db_.SqlError("recording the failure at UID " + std::to_string(uid));
    return Ok();
  });
}

util::Result<std::vector<Attempt>> SqliteAttempts::List(const std::string& account, const std::string& folder,
                                                        uint32_t uidvalidity) {
  Stmt s(db_,
         "SELECT uid, count, last_code, last_error FROM attempts "
         "WHERE account=? AND folder=? AND uidvalidity=? ORDER BY uid");
  s.Bind(1, account).Bind(2, folder).Bind(3, uidvalidity);
  std::vector<Attempt> out;
  while (s.Step()) {
    out.push_back(Attempt{static_cast<uint32_t>(s.Int(0)), static_cast<int>(s.Int(1)), s.Text(3), s.Text(2)});
  }
  if (!s.ok()) return db_.SqlError("reading attempts");
  return out;
}

Status SqliteAttempts::Forget(const std::string& account, const std::string& folder, std::span<const uint32_t> uids) {
  return PerUid(db_, "DELETE FROM attempts WHERE account=? AND folder=? AND uid=?", account, folder, uids,
                "forgetting attempts of");
}

Status SqliteAttempts::ForgetBelow(const std::string& account, const std::string& folder, Watermark mark) {
  return db_.InTransaction([&]() -> Status {
    Stmt below(db_, "DELETE FROM attempts WHERE account=? AND folder=? AND (uid<=? OR uidvalidity<>?)");
    below.Bind(1, account).Bind(2, folder).Bind(3, mark.last_uid).Bind(4, mark.uidvalidity);
    if (!below.Run()) return db_.SqlError("forgetting attempts below the watermark");
    return Ok();
  });
}

}  // namespace mailhook::store
