#pragma once
/// SqliteLeases: the leases of the outbox rows of one SQLite file, held in
/// this process's memory instead of in the file (issue 8).
///
/// Why: only one process delivers from a SQLite file (`mailhook run` locks
/// its state_dir, and the dispatcher frees every lease at start, which already
/// assumes it), so a lease only has to keep a row from the other threads and
/// connections of this process. Held here, a claim is a read: the lease UPDATE
/// was a write transaction of its own per delivered message in a burst (WAL
/// frames, file locks), about a third of the dispatcher's CPU. Only the mark
/// (or retry, or dead letter) writes.
///
/// What a lease means is unchanged: a held row is not claimed again until its
/// lease ends or it is released (marked, rescheduled, dead-lettered, given
/// back), also by another connection of this process, as with a lease in the
/// file. But leases end with the process (a crash leaves nothing held) and
/// when no store of this process has the file open any more. A lease in the
/// file's `lease_until` column (written by an older version) is still honoured
/// until ReleaseAllLeases clears it. Another process on the same file does not
/// see these leases: it must not claim (PostgreSQL keeps row leases for that).
///
/// Thread-safe: every SqliteOutbox of this process on one file (each on its own
/// thread) shares one object, found by the file's device and inode.

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "store/outbox.h"
#include "store/rows.h"
#include "util/mutex.h"
#include "util/result.h"
#include "util/thread_annotations.h"

namespace mailhook::store {

/// The in-process leases of one database file.
class SqliteLeases {
 public:
  /// The end of each held row's lease, by outbox id.
  using Held = std::map<int64_t, TimePoint>;
  /// Chooses the rows to claim, given those held (leases that ended
  /// included: compare with `until`).
  using Chooser = std::function<util::Result<ClaimResult>(const Held& held)>;

  /// The table of the open database file at `path`, shared with every other
  /// caller on the same file (also under another path: a symlink, a
  /// `sqlite:` url naming the state_dir's file). Lives while one holds it:
  /// when the last store on the file is closed, its leases end.
  static std::shared_ptr<SqliteLeases> ForFile(const std::string& path);

  SqliteLeases() = default;
  SqliteLeases(const SqliteLeases&) = delete;
  SqliteLeases& operator=(const SqliteLeases&) = delete;

  /// One claim at a time per file: runs `choose` and holds the rows it
  /// returns until `until`. Nothing is held when it fails.
  util::Result<ClaimResult> Claim(TimePoint until, const Chooser& choose) EXCLUDES(mu_);
  /// The held rows now (for NextDueAt: a held row is claimable when its lease ends).
  Held Snapshot() const EXCLUDES(mu_);
  /// Ends the leases of these rows (whoever holds them).
  void Release(const std::vector<int64_t>& ids) EXCLUDES(mu_);
  /// Ends every lease.
  void ReleaseAll() EXCLUDES(mu_);

 private:
  mutable util::Mutex mu_;
  Held held_ GUARDED_BY(mu_);
};

}  // namespace mailhook::store
