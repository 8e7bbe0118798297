#include "store/sqlite_leases.h"

#include "store/per_file.h"

namespace mailhook::store {

std::shared_ptr<SqliteLeases> SqliteLeases::ForFile(const std::string& path) {
  // The table of a file lives while one of its outboxes does. When the last
  // is closed no claimer is left to deliver what it held (the dispatcher
  // keeps its store until its workers are joined).
  return PerFile<SqliteLeases>(path);
}

util::Result<ClaimResult> SqliteLeases::Claim(TimePoint until, const Chooser& choose) {
  util::MutexLock lock(mu_);
  util::Result<ClaimResult> chosen = choose(held_);
  if (!chosen.ok()) return chosen;
  for (const Delivery& row : chosen->rows) held_[row.id] = until;
  return chosen;
}

SqliteLeases::Held SqliteLeases::Snapshot() const {
  util::MutexLock lock(mu_);
  return held_;
}

void SqliteLeases::Release(const std::vector<int64_t>& ids) {
  if (ids.empty()) return;
  util::MutexLock lock(mu_);
  for (int64_t id : ids) held_.erase(id);
}

void SqliteLeases::ReleaseAll() {
  util::MutexLock lock(mu_);
  held_.clear();
}

}  // namespace mailhook::store
