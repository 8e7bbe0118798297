#include "store/sqlite_watermarks.h"

#include "store/statement.h"

namespace mailhook::store {

util::Result<std::optional<Watermark>> SqliteWatermarks::Get(const std::string& account, const std::string& folder) {
  Stmt s(db_, "SELECT uidvalidity, last_uid FROM watermarks WHERE account=? AND folder=?");
  s.Bind(1, account).Bind(2, folder);
  if (s.Step()) {
    return std::optional<Watermark>(Watermark{static_cast<uint32_t>(s.Int(0)), static_cast<uint32_t>(s.Int(1))});
  }
  if (!s.ok()) return db_.SqlError("reading watermark");
  return std::optional<Watermark>();
}

util::Status SqliteWatermarks::Set(const std::string& account, const std::string& folder, Watermark mark) {
  return db_.InTransaction([&]() -> util::Status {
    Stmt s(db_,
           "INSERT INTO watermarks (account, folder, uidvalidity, last_uid, updated_at, fp_floor) "
           "VALUES (?1,?2,?3,?4,?5,?4) ON CONFLICT (account, folder) DO UPDATE SET "
           "uidvalidity=excluded.uidvalidity, last_uid=excluded.last_uid, "
           "updated_at=excluded.updated_at");
    s.Bind(1, account).Bind(2, folder).Bind(3, mark.uidvalidity).Bind(4, mark.last_uid);
    s.Bind(5, ToMs(Clock::now()));
    if (!s.Run()) return db_.SqlError("writing watermark");
    return util::Ok();
  });
}

util::Result<uint32_t> SqliteWatermarks::FingerprintFloor(const std::string& account, const std::string& folder) {
  Stmt s(db_, "SELECT fp_floor FROM watermarks WHERE account=? AND folder=?");
  s.Bind(1, account).Bind(2, folder);
  if (s.Step()) return static_cast<uint32_t>(s.Int(0));
  if (!s.ok()) return db_.SqlError("reading the fingerprint floor");
  return 0u;
}

util::Status SqliteWatermarks::SetFingerprintFloor(const std::string& account, const std::string& folder,
                                                   uint32_t floor) {
  return db_.InTransaction([&]() -> util::Status {
    Stmt s(db_, "UPDATE watermarks SET fp_floor=? WHERE account=? AND folder=?");
    s.Bind(1, floor).Bind(2, account).Bind(3, folder);
    if (!s.Run()) return db_.SqlError("writing the fingerprint floor");
    return util::Ok();
  });
}

}  // namespace mailhook::store
