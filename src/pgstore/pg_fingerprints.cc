#include "pgstore/pg_fingerprints.h"

#include <openssl/evp.h>

#include <algorithm>

#include "pgstore/pg_statement.h"

namespace mailhook::pgstore {
namespace {

using util::Result;
using util::Status;

constexpr PgStatement kFpAdd = {"fingerprints.add", R"sql(
    INSERT INTO fingerprints (account, folder, uidvalidity, uid, message_key, size)
    VALUES ($1, $2, $3::bigint, $4::bigint, $5, $6::bigint) ON CONFLICT DO NOTHING)sql"};
constexpr PgStatement kFpHere = {"fingerprints.here", R"sql(
    SELECT 1 FROM fingerprints
    WHERE account = $1 AND folder = $2 AND uidvalidity = $3::bigint AND uid = $4::bigint)sql"};
// The index fingerprints_match finds the candidates; LIMIT 1 takes one, so
// two copies of one message match two earlier messages, not one. The first
// recorded (lowest UIDVALIDITY, then UID) goes first.
constexpr PgStatement kFpMove = {"fingerprints.move", R"sql(
    UPDATE fingerprints SET uidvalidity = $3::bigint, uid = $4::bigint
    WHERE (account, folder, uidvalidity, uid) = (
      SELECT account, folder, uidvalidity, uid FROM fingerprints
      WHERE account = $1 AND folder = $2 AND message_key = $5 AND size = $6::bigint AND uidvalidity <> $3::bigint
      ORDER BY uidvalidity, uid LIMIT 1))sql"};
constexpr PgStatement kFpKeep = {"fingerprints.keep", R"sql(
    DELETE FROM fingerprints
    WHERE account = $1 AND folder = $2 AND uidvalidity <> $3::bigint AND uidvalidity <> $4::bigint)sql"};
constexpr PgStatement kFpRange = {"fingerprints.range", R"sql(
    SELECT uid FROM fingerprints
    WHERE account = $1 AND folder = $2 AND uidvalidity = $3::bigint AND uid BETWEEN $4::bigint AND $5::bigint)sql"};
constexpr PgStatement kFpDrop = {"fingerprints.drop", R"sql(
    DELETE FROM fingerprints
    WHERE account = $1 AND folder = $2 AND uidvalidity = $3::bigint AND uid = ANY($4::bigint[]))sql"};
// min and max apart: each is one step down the primary key's index, where
// "uidvalidity <> $3" would scan every row of the folder (asked every sync).
constexpr PgStatement kFpBounds = {"fingerprints.bounds", R"sql(
    SELECT (SELECT min(uidvalidity) FROM fingerprints WHERE account = $1 AND folder = $2),
           (SELECT max(uidvalidity) FROM fingerprints WHERE account = $1 AND folder = $2))sql"};
constexpr PgStatement kFpCount = {"fingerprints.count",
                                  "SELECT count(*) FROM fingerprints WHERE account = $1 AND folder = $2"};
constexpr PgStatement kFpList = {"fingerprints.list", R"sql(
    SELECT uid, message_key, size FROM fingerprints
    WHERE account = $1 AND folder = $2 AND uidvalidity = $3::bigint ORDER BY uid)sql"};

}  // namespace

// The key as stored: itself when PostgreSQL text takes it, else a digest of
// its bytes (one-to-one for all practical purposes, unlike ValidUtf8).
std::string PgFingerprintKey(const std::string& key) {
  if (ValidUtf8(key) == key) return key;
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(key.data(), key.size(), digest, &len, EVP_sha256(), nullptr) != 1) {
    return ValidUtf8(key);  // not reached: SHA-256 is always available
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "sha256:";
  for (unsigned int i = 0; i < len; ++i) {
    out += kHex[digest[i] >> 4];
    out += kHex[digest[i] & 0xF];
  }
  return out;
}

Status PgFingerprints::Add(const std::string& account, const std::string& folder,
                           const std::vector<store::Fingerprint>& fps) {
  if (fps.empty()) return util::Ok();
  return conn_.InTransaction([&]() -> Status {
    for (const store::Fingerprint& fp : fps) {
      if (auto s = RunStatement(
              conn_, kFpAdd,
              {account, folder, fp.uidvalidity, fp.uid, PgFingerprintKey(fp.key), static_cast<int64_t>(fp.size)});
          !s) {
        return s;
      }
    }
    return util::Ok();
  });
}

Result<std::vector<uint32_t>> PgFingerprints::Claim(const std::string& account, const std::string& folder,
                                                    const std::vector<store::Fingerprint>& fps) {
  std::vector<uint32_t> unmatched;
  Status st = conn_.InTransaction([&]() -> Status {
    unmatched.clear();  // a retried transaction starts over
    for (const store::Fingerprint& fp : fps) {
      auto here = ExecStatement(conn_, kFpHere, {account, folder, fp.uidvalidity, fp.uid});
      if (!here) return here.error();
      if (here->rows() > 0) continue;
      auto moved = ExecStatement(
          conn_, kFpMove,
          {account, folder, fp.uidvalidity, fp.uid, PgFingerprintKey(fp.key), static_cast<int64_t>(fp.size)});
      if (!moved) return moved.error();
      if (moved->affected() == 0) unmatched.push_back(fp.uid);
    }
    return util::Ok();
  });
  if (!st) return st.error();
  return unmatched;
}

Status PgFingerprints::KeepGenerations(const std::string& account, const std::string& folder, uint32_t a, uint32_t b) {
  return RunStatement(conn_, kFpKeep, {account, folder, a, b});
}

Status PgFingerprints::ForgetAbsent(const std::string& account, const std::string& folder, uint32_t uidvalidity,
                                    uint32_t lo, uint32_t hi, std::span<const uint32_t> present) {
  return conn_.InTransaction([&]() -> Status {
    auto rows = ExecStatement(conn_, kFpRange, {account, folder, uidvalidity, lo, hi});
    if (!rows) return rows.error();
    std::vector<int64_t> absent;
    for (int i = 0; i < rows->rows(); ++i) {
      auto uid = rows->Int64(i, 0);
      if (!uid) return uid.error();
      if (!std::binary_search(present.begin(), present.end(), static_cast<uint32_t>(*uid))) absent.push_back(*uid);
    }
    if (absent.empty()) return util::Ok();
    return RunStatement(conn_, kFpDrop, {account, folder, uidvalidity, PgIntArray(absent)});
  });
}

Result<bool> PgFingerprints::HasOther(const std::string& account, const std::string& folder, uint32_t uidvalidity) {
  auto rows = ExecStatement(conn_, kFpBounds, {account, folder});
  if (!rows) return rows.error();
  for (int column = 0; column < 2; ++column) {
    if (rows->IsNull(0, column)) continue;
    auto bound = rows->Int64(0, column);
    if (!bound) return bound.error();
    if (*bound != static_cast<int64_t>(uidvalidity)) return true;
  }
  return false;
}

Result<int64_t> PgFingerprints::Count(const std::string& account, const std::string& folder) {
  auto n = FirstInt(ExecStatement(conn_, kFpCount, {account, folder}));
  if (!n) return n.error();
  return n->value_or(0);
}

Result<std::vector<store::Fingerprint>> PgFingerprints::List(const std::string& account, const std::string& folder,
                                                             uint32_t uidvalidity) {
  auto rows = ExecStatement(conn_, kFpList, {account, folder, uidvalidity});
  if (!rows) return rows.error();
  std::vector<store::Fingerprint> out;
  for (int i = 0; i < rows->rows(); ++i) {
    auto uid = rows->Int64(i, 0);
    auto key = rows->Text(i, 1);
    auto size = rows->Int64(i, 2);
    if (!uid) return uid.error();
    if (!key) return key.error();
    if (!size) return size.error();
    out.push_back(
        store::Fingerprint{uidvalidity, static_cast<uint32_t>(*uid), std::string(*key), static_cast<uint64_t>(*size)});
  }
  return out;
}

}  // namespace mailhook::pgstore
