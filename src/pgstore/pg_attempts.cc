#include "pgstore/pg_attempts.h"

#include "pgstore/pg_statement.h"

namespace mailhook::pgstore {
namespace {

using util::Status;

// $6: 1 for a single UID, 0 for each UID of a batch (attempts.h: a batch
// only marks its UIDs). A row of another UIDVALIDITY starts again.
constexpr PgStatement kAttemptsBegin = {"attempts.begin", R"sql(
    INSERT INTO attempts AS a (account, folder, uidvalidity, uid, count, updated_at)
    VALUES ($1, $2, $3::bigint, $4::bigint, $6::integer, $5::bigint)
    ON CONFLICT (account, folder, uid) DO UPDATE SET
      count = CASE WHEN a.uidvalidity = excluded.uidvalidity THEN a.count + $6::integer ELSE $6::integer END,
      last_code = CASE WHEN a.uidvalidity = excluded.uidvalidity THEN a.last_code ELSE '' END,
      last_error = CASE WHEN a.uidvalidity = excluded.uidvalidity THEN a.last_error ELSE '' END,
      uidvalidity = excluded.uidvalidity, updated_at = excluded.updated_at)sql"};
constexpr PgStatement kAttemptsRefund = {"attempts.refund", R"sql(
    UPDATE attempts SET count = count - 1
    WHERE account = $1 AND folder = $2 AND uid = $3::bigint AND count > 0)sql"};
constexpr PgStatement kAttemptsFailure = {"attempts.failure", R"sql(
    UPDATE attempts SET last_code = $1, last_error = $2, count = count + $3::integer
    WHERE account = $4 AND folder = $5 AND uid = $6::bigint)sql"};
constexpr PgStatement kAttemptsList = {"attempts.list", R"sql(
    SELECT uid, count, last_code, last_error FROM attempts
    WHERE account = $1 AND folder = $2 AND uidvalidity = $3::bigint ORDER BY uid)sql"};
constexpr PgStatement kAttemptsForget = {
    "attempts.forget", "DELETE FROM attempts WHERE account = $1 AND folder = $2 AND uid = ANY($3::bigint[])"};
constexpr PgStatement kAttemptsForgetBelow = {"attempts.forget_below", R"sql(
    DELETE FROM attempts
    WHERE account = $1 AND folder = $2 AND (uid <= $3::bigint OR uidvalidity <> $4::bigint))sql"};

std::string UidArray(std::span<const uint32_t> uids) {
  std::vector<int64_t> ids(uids.begin(), uids.end());
  return PgIntArray(ids);
}

}  // namespace

Status PgAttempts::Begin(const std::string& account, const std::string& folder, uint32_t uidvalidity,
                         std::span<const uint32_t> uids) {
  return conn_.InTransaction([&]() -> Status {
    const int64_t now = PgMs(store::Clock::now());
    for (uint32_t uid : uids) {
      if (auto s =
              RunStatement(conn_, kAttemptsBegin, {account, folder, uidvalidity, uid, now, uids.size() == 1 ? 1 : 0});
          !s) {
        return s;
      }
    }
    return util::Ok();
  });
}

Status PgAttempts::Refund(const std::string& account, const std::string& folder, std::span<const uint32_t> uids) {
  // One statement per UID, as SQLite: a UID listed twice is refunded twice.
  return conn_.InTransaction([&]() -> Status {
    for (uint32_t uid : uids) {
      if (auto s = RunStatement(conn_, kAttemptsRefund, {account, folder, uid}); !s) return s;
    }
    return util::Ok();
  });
}

Status PgAttempts::RecordFailure(const std::string& account, const std::string& folder, uint32_t uid,
                                 const std::string& code, const std::string& message, bool count) {
  return RunStatement(conn_, kAttemptsFailure,
                      {code, ValidUtf8(Utf8Prefix(message, 500)), count ? 1 : 0, account, folder, uid});
}

util::Result<std::vector<store::Attempt>> PgAttempts::List(const std::string& account, const std::string& folder,
                                                           uint32_t uidvalidity) {
  auto rows = ExecStatement(conn_, kAttemptsList, {account, folder, uidvalidity});
  if (!rows) return rows.error();
  std::vector<store::Attempt> out;
  for (int i = 0; i < rows->rows(); ++i) {
    auto uid = rows->Int64(i, 0);
    auto count = rows->Int64(i, 1);
    auto code = rows->Text(i, 2);
    auto error = rows->Text(i, 3);
    if (!uid) return uid.error();
    if (!count) return count.error();
    if (!code) return code.error();
    if (!error) return error.error();
    out.push_back(
        store::Attempt{static_cast<uint32_t>(*uid), static_cast<int>(*count), std::string(*error), std::string(*code)});
  }
  return out;
}

Status PgAttempts::Forget(const std::string& account, const std::string& folder, std::span<const uint32_t> uids) {
  if (uids.empty()) return util::Ok();
  return RunStatement(conn_, kAttemptsForget, {account, folder, UidArray(uids)});
}

Status PgAttempts::ForgetBelow(const std::string& account, const std::string& folder, store::Watermark mark) {
  return RunStatement(conn_, kAttemptsForgetBelow, {account, folder, mark.last_uid, mark.uidvalidity});
}

}  // namespace mailhook::pgstore
