#include "store/sqlite_fingerprints.h"

#include <algorithm>

#include "store/statement.h"

namespace mailhook::store {

using util::Ok;
using util::Status;

Status SqliteFingerprints::Add(const std::string& account, const std::string& folder,
                               const std::vector<Fingerprint>& fps) {
  if (fps.empty()) return Ok();
  return db_.InTransaction([&]() -> Status {
    Stmt s(db_,
           "INSERT OR IGNORE INTO fingerprints (account, folder, uidvalidity, uid, message_key, size) "
           "VALUES (?,?,?,?,?,?)");
    for (const Fingerprint& fp : fps) {
      s.Reset();
      s.Bind(1, account).Bind(2, folder).Bind(3, fp.uidvalidity).Bind(4, fp.uid).Bind(5, fp.key);
      s.Bind(6, static_cast<int64_t>(fp.size));
      if (!s.Run()) return db_.SqlError("recording the fingerprint of UID " + std::to_string(fp.uid));
    }
    return Ok();
  });
}

util::Result<std::vector<uint32_t>> SqliteFingerprints::Claim(const std::string& account, const std::string& folder,
                                                              const std::vector<Fingerprint>& fps) {
  std::vector<uint32_t> unmatched;
  auto s = db_.InTransaction([&]() -> Status {
    unmatched.clear();  // a retried transaction starts over
    Stmt here(db_, "SELECT 1 FROM fingerprints WHERE account=? AND folder=? AND uidvalidity=? AND uid=?");
    // The index fingerprints_match finds the candidates; LIMIT 1 takes one,
    // so two copies of one message match two earlier messages, not one.
    Stmt move(db_,
              "UPDATE fingerprints SET uidvalidity=?3, uid=?4 WHERE rowid = (SELECT rowid FROM fingerprints "
              "WHERE account=?1 AND folder=?2 AND message_key=?5 AND size=?6 AND uidvalidity<>?3 LIMIT 1)");
    for (const Fingerprint& fp : fps) {
      here.Reset();
      here.Bind(1, account).Bind(2, folder).Bind(3, fp.uidvalidity).Bind(4, fp.uid);
      if (here.Step()) continue;
      if (!here.ok()) return db_.SqlError("reading fingerprints");
      move.Reset();
      move.Bind(1, account).Bind(2, folder).Bind(3, fp.uidvalidity).Bind(4, fp.uid).Bind(5, fp.key);
      move.Bind(6, static_cast<int64_t>(fp.size));
      if (!move.Run()) return db_.SqlError("matching the fingerprint of UID " + std::to_string(fp.uid));
      if (db_.Changes() == 0) unmatched.push_back(fp.uid);
    }
    return Ok();
  });
  if (!s.ok()) return s.error();
  return unmatched;
}

Status SqliteFingerprints::KeepGenerations(const std::string& account, const std::string& folder, uint32_t a,
                                           uint32_t b) {
  return db_.InTransaction([&]() -> Status {
    Stmt s(db_, "DELETE FROM fingerprints WHERE account=? AND folder=? AND uidvalidity NOT IN (?,?)");
    s.Bind(1, account).Bind(2, folder).Bind(3, a).Bind(4, b);
    if (!s.Run()) return db_.SqlError("dropping fingerprints of old UIDVALIDITYs");
    return Ok();
  });
}

Status SqliteFingerprints::ForgetAbsent(const std::string& account, const std::string& folder, uint32_t uidvalidity,
                                        uint32_t lo, uint32_t hi, std::span<const uint32_t> present) {
  return db_.InTransaction([&]() -> Status {
    std::vector<uint32_t> stored;
    {
      Stmt s(db_,
             "SELECT uid FROM fingerprints WHERE account=? AND folder=? AND uidvalidity=? AND uid BETWEEN ? AND ?");
      s.Bind(1, account).Bind(2, folder).Bind(3, uidvalidity).Bind(4, lo).Bind(5, hi);
      while (s.Step()) stored.push_back(static_cast<uint32_t>(s.Int(0)));
      if (!s.ok()) return db_.SqlError("reading fingerprints");
    }
    Stmt del(db_, "DELETE FROM fingerprints WHERE account=? AND folder=? AND uidvalidity=? AND uid=?");
    for (uint32_t uid : stored) {
      if (std::binary_search(present.begin(), present.end(), uid)) continue;
      del.Reset();
      del.Bind(1, account).Bind(2, folder).Bind(3, uidvalidity).Bind(4, uid);
      if (!del.Run()) return db_.SqlError("dropping the fingerprint of UID " + std::to_string(uid));
    }
    return Ok();
  });
}

util::Result<bool> SqliteFingerprints::HasOther(const std::string& account, const std::string& folder,
                                                uint32_t uidvalidity) {
  // MIN and MAX apart: each is one step down the primary key's index, where
  // "uidvalidity<>?" would scan every row of the folder (asked every sync).
  for (const char* sql : {"SELECT MIN(uidvalidity) FROM fingerprints WHERE account=? AND folder=?",
                          "SELECT MAX(uidvalidity) FROM fingerprints WHERE account=? AND folder=?"}) {
    Stmt s(db_, sql);
    s.Bind(1, account).Bind(2, folder);
    if (!s.Step()) return db_.SqlError("reading fingerprints");
    if (!s.IsNull(0) && s.Int(0) != uidvalidity) return true;
  }
  return false;
}

util::Result<int64_t> SqliteFingerprints::Count(const std::string& account, const std::string& folder) {
  Stmt s(db_, "SELECT COUNT(*) FROM fingerprints WHERE account=? AND folder=?");
  s.Bind(1, account).Bind(2, folder);
  if (!s.Step()) return db_.SqlError("counting fingerprints");
  return s.Int(0);
}

util::Result<std::vector<Fingerprint>> SqliteFingerprints::List(const std::string& account, const std::string& folder,
                                                                uint32_t uidvalidity) {
  Stmt s(db_,
         "SELECT uid, message_key, size FROM fingerprints WHERE account=? AND folder=? AND uidvalidity=? "
         "ORDER BY uid");
  s.Bind(1, account).Bind(2, folder).Bind(3, uidvalidity);
  std::vector<Fingerprint> out;
  while (s.Step()) {
    out.push_back(
        Fingerprint{uidvalidity, static_cast<uint32_t>(s.Int(0)), s.Text(1), static_cast<uint64_t>(s.Int(2))});
  }
  if (!s.ok()) return db_.SqlError("reading fingerprints");
  return out;
}

}  // namespace mailhook::store
