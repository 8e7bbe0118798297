#include "pgstore/pg_watermarks.h"

#include "pgstore/pg_statement.h"

namespace mailhook::pgstore {
namespace {

constexpr PgStatement kGetWatermark = {
    "watermarks.get", "SELECT uidvalidity, last_uid FROM watermarks WHERE account = $1 AND folder = $2"};
// A folder's first watermark sets its fingerprint floor to its last_uid;
// replacing one keeps the floor (watermarks.h). Within one UIDVALIDITY a
// watermark never moves back: a write from a replica that lost the account
// (paused, then woken before it noticed) leaves the new owner's mark alone
// instead of making it deliver again what it already sent.
constexpr PgStatement kSetWatermark = {"watermarks.set", R"sql(
    INSERT INTO watermarks AS w (account, folder, uidvalidity, last_uid, updated_at, fp_floor)
    VALUES ($1, $2, $3::bigint, $4::bigint, $5::bigint, $4::bigint)
    ON CONFLICT (account, folder) DO UPDATE SET
      uidvalidity = excluded.uidvalidity, last_uid = excluded.last_uid, updated_at = excluded.updated_at
    WHERE w.uidvalidity <> excluded.uidvalidity OR w.last_uid <= excluded.last_uid)sql"};
constexpr PgStatement kGetFloor = {"watermarks.floor",
                                   "SELECT fp_floor FROM watermarks WHERE account = $1 AND folder = $2"};
constexpr PgStatement kSetFloor = {"watermarks.set_floor",
                                   "UPDATE watermarks SET fp_floor = $1::bigint WHERE account = $2 AND folder = $3"};

}  // namespace

util::Result<std::optional<store::Watermark>> PgWatermarks::Get(const std::string& account, const std::string& folder) {
  auto rows = ExecStatement(conn_, kGetWatermark, {account, folder});
  if (!rows) return rows.error();
  if (rows->rows() == 0) return std::optional<store::Watermark>();
  auto uidvalidity = rows->Int64(0, 0);
  if (!uidvalidity) return uidvalidity.error();
  auto last_uid = rows->Int64(0, 1);
  if (!last_uid) return last_uid.error();
  return std::optional<store::Watermark>(
      store::Watermark{static_cast<uint32_t>(*uidvalidity), static_cast<uint32_t>(*last_uid)});
}

util::Status PgWatermarks::Set(const std::string& account, const std::string& folder, store::Watermark mark) {
  return conn_.InTransaction([&] {
    return RunStatement(conn_, kSetWatermark,
                        {account, folder, mark.uidvalidity, mark.last_uid, PgMs(store::Clock::now())});
  });
}

util::Result<uint32_t> PgWatermarks::FingerprintFloor(const std::string& account, const std::string& folder) {
  auto floor = FirstInt(ExecStatement(conn_, kGetFloor, {account, folder}));
  if (!floor) return floor.error();
  return static_cast<uint32_t>(floor->value_or(0));
}

util::Status PgWatermarks::SetFingerprintFloor(const std::string& account, const std::string& folder, uint32_t floor) {
  return conn_.InTransaction([&] { return RunStatement(conn_, kSetFloor, {floor, account, folder}); });
}

}  // namespace mailhook::pgstore
