#pragma once
/// PerFile<T>: one object of type T per database file, shared by every caller
/// of this process on that file (found by its device and inode, so another
/// path to the same file, a symlink or a `sqlite:` url naming the state_dir's
/// file, shares it too). The object lives while one caller holds it; a file
/// removed and made anew (its inode reused) gets a new one.
///
/// Thread-safe.

#include <map>
#include <memory>
#include <mutex>
#include <string>

namespace mailhook::store {

/// The file's identity: device and inode; the path itself when it cannot be
/// read (then only callers with that path share).
std::string FileIdentity(const std::string& path);

template <typename T>
std::shared_ptr<T> PerFile(const std::string& path) {
  static std::mutex registry_mu;
  static std::map<std::string, std::weak_ptr<T>> registry;
  const std::string key = FileIdentity(path);
  std::lock_guard lock(registry_mu);
  for (auto it = registry.begin(); it != registry.end();) {
    it = it->second.expired() ? registry.erase(it) : std::next(it);
  }
  std::shared_ptr<T> object = registry[key].lock();
  if (!object) {
    object = std::make_shared<T>();
    registry[key] = object;
  }
  return object;
}

}  // namespace mailhook::store
