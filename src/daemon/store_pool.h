#pragma once
/// StorePool: the daemon's few SQLite connections, lent to whoever syncs a
/// folder. A connection per watched folder cost a page cache, a WAL reader
/// slot and two file descriptors each (1,000 folders: 2,000 fds); the pool
/// keeps `size` connections however many folders there are. A borrower
/// holds its connection for one folder sync and gives it back (Lease).

#include <cstdint>
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
    Lease(StorePool& pool, std::unique_ptr<store::Store> store, uint64_t generation)
        : pool_(&pool), store_(std::move(store)), generation_(generation) {}
    Lease(Lease&& other) noexcept = default;
    Lease& operator=(Lease&&) = delete;
    Lease(const Lease&) = delete;
    ~Lease();
    store::Store& operator*() const { return *store_; }
    store::Store* operator->() const { return store_.get(); }

   private:
    StorePool* pool_;
    std::unique_ptr<store::Store> store_;
    uint64_t generation_;  // the pool's generation when the connection was opened or last given back whole
  };

  /// Waits for a free connection (opening one while fewer than `size`
  /// exist). An error when a new connection cannot be opened. A connection
  /// given back broken (Store::broken: the PostgreSQL server restarted) is
  /// closed with every one older than the failure: the idle ones now, and
  /// those lent meanwhile when they come back (they talked to the same
  /// server). The next Acquires open new ones in their place; a later broken
  /// one of the same generation closes nothing more.
  util::Result<Lease> Acquire();
  /// Adds an already opened connection (the daemon's first, which
  /// housekeeping used); counts against `size`.
  void Adopt(std::unique_ptr<store::Store> store);
  /// Allows up to `size` connections when that is more than now (a config
  /// reload added accounts). Never shrinks: a lent connection is not taken back.
  void Grow(int size);

 private:
  // An idle connection and its generation (see Acquire).
  struct Idle {
    uint64_t generation;
    std::unique_ptr<store::Store> store;
  };

  void Return(std::unique_ptr<store::Store> store, uint64_t generation);

  const store::StoreOpener opener_;
  util::Mutex mu_;
  int size_ GUARDED_BY(mu_);
  util::CondVar freed_;
  std::vector<Idle> free_ GUARDED_BY(mu_);
  int open_ GUARDED_BY(mu_) = 0;             // connections that exist, lent or free
  uint64_t generation_ GUARDED_BY(mu_) = 0;  // one more at each connection given back broken
};

}  // namespace mailhook::daemon
