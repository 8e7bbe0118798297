#pragma once
/// StorePool: the daemon's few SQLite connections, lent to whoever syncs a
/// folder. A connection per watched folder cost a page cache, a WAL reader
/// slot and two file descriptors each (1,000 folders: 2,000 fds); the pool
/// keeps `size` connections however many folders there are. A borrower
/// holds its connection for one folder sync and gives it back (Lease).

#include <memory>
#include <string>
#include <vector>

#include "store/open_store.h"
#include "store/store.h"
#include "util/mutex.h"
#include "util/result.h"
#include "util/thread_annotations.h"

namespace mailhook::daemon {

class StorePool {
 public:
  /// Connections are opened with `open` on first use, at most `size` (≥ 1).
  StorePool(store::StoreOpener open, int size);
  StorePool(const StorePool&) = delete;
  StorePool& operator=(const StorePool&) = delete;

  /// A borrowed connection; returned to the pool when destroyed.
  class Lease {
   public:
    Lease(StorePool& pool, std::unique_ptr<store::Store> store) : pool_(&pool), store_(std::move(store)) {}
    Lease(Lease&& other) noexcept = default;
    Lease& operator=(Lease&&) = delete;
    Lease(const Lease&) = delete;
    ~Lease();
    store::Store& operator*() const { return *store_; }
    store::Store* operator->() const { return store_.get(); }

   private:
    StorePool* pool_;
    std::unique_ptr<store::Store> store_;
  };

  /// Waits for a free connection (opening one while fewer than `size`
  /// exist). An error when a new connection cannot be opened. A connection
  /// given back broken (Store::broken: the PostgreSQL server restarted) is
  /// closed with every idle one (they talked to the same server), and the
  /// next Acquires open new ones in their place.
  util::Result<Lease> Acquire();
  /// Adds an already opened connection (the daemon's first, which
  /// housekeeping used); counts against `size`.
  void Adopt(std::unique_ptr<store::Store> store);
  /// Allows up to `size` connections when that is more than now (a config
  /// reload added accounts). Never shrinks: a lent connection is not taken back.
  void Grow(int size);

 private:
  void Return(std::unique_ptr<store::Store> store);

  const store::StoreOpener opener_;
  util::Mutex mu_;
  int size_ GUARDED_BY(mu_);
  util::CondVar freed_;
  std::vector<std::unique_ptr<store::Store>> free_ GUARDED_BY(mu_);
  int open_ GUARDED_BY(mu_) = 0;  // connections that exist, lent or free
};

}  // namespace mailhook::daemon
