#include "daemon/store_pool.h"

#include <algorithm>
#include <utility>
#include <vector>

namespace mailhook::daemon {

StorePool::StorePool(store::StoreOpener open, int size) : opener_(std::move(open)), size_(std::max(size, 1)) {}

StorePool::Lease::~Lease() {
  if (store_) pool_->Return(std::move(store_));
}

util::Result<StorePool::Lease> StorePool::Acquire() {
  {
    util::MutexLock lock(mu_);
    while (free_.empty() && open_ >= size_) freed_.Wait(mu_);
    if (!free_.empty()) {
      std::unique_ptr<store::Store> store = std::move(free_.back());
      free_.pop_back();
      return Lease(*this, std::move(store));
    }
    ++open_;  // reserved: opened below, outside the lock (it touches the disk)
  }
  auto opened = opener_();
  if (!opened.ok()) {
    util::MutexLock lock(mu_);
    --open_;
    freed_.Signal();
    return opened.error();
  }
  return Lease(*this, std::move(*opened));
}

void StorePool::Adopt(std::unique_ptr<store::Store> store) {
  util::MutexLock lock(mu_);
  ++open_;
  free_.push_back(std::move(store));
  freed_.Signal();
}

void StorePool::Grow(int size) {
  util::MutexLock lock(mu_);
  if (size <= size_) return;
  size_ = size;
  freed_.SignalAll();  // waiters may open one now
}

void StorePool::Return(std::unique_ptr<store::Store> store) {
  if (!store->broken()) {
    util::MutexLock lock(mu_);
    free_.push_back(std::move(store));
    freed_.Signal();
    return;
  }
  // The server ended this connection (a restart, a failover): the idle ones
  // are almost surely dead too, and each would cost its next borrower a
  // failure and a backoff. All are closed (outside the lock); the next
  // borrowers open new ones.
  std::vector<std::unique_ptr<store::Store>> idle;
  {
    util::MutexLock lock(mu_);
    idle.swap(free_);
    open_ -= 1 + static_cast<int>(idle.size());
    freed_.SignalAll();
  }
  store.reset();
}

}  // namespace mailhook::daemon
