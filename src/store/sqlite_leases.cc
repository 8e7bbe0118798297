#include "store/sqlite_leases.h"

#include <sys/stat.h>

#include <mutex>

namespace mailhook::store {
namespace {

// The file's identity: device and inode, so two paths of one file share the
// table; the path itself when it cannot be read (then only that path does).
std::string FileKey(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return "path:" + path;
  return std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
}

}  // namespace

std::shared_ptr<SqliteLeases> SqliteLeases::ForFile(const std::string& path) {
  // Weak: the table of a file lives while one of its outboxes does. When the
  // last is closed no claimer is left to deliver what it held (the dispatcher
  // keeps its store until its workers are joined), and a file removed and
  // made anew (its inode reused) starts with an empty table.
  static std::mutex registry_mu;
  static std::map<std::string, std::weak_ptr<SqliteLeases>> registry;
  const std::string key = FileKey(path);
  std::lock_guard lock(registry_mu);
  for (auto it = registry.begin(); it != registry.end();) {
    it = it->second.expired() ? registry.erase(it) : std::next(it);
  }
  std::shared_ptr<SqliteLeases> table = registry[key].lock();
  if (!table) {
    table = std::make_shared<SqliteLeases>();
    registry[key] = table;
  }
  return table;
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
