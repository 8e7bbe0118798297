#include "daemon/store_pool.h"

#include <algorithm>
#include <utility>
#include <vector>

namespace mailhook::daemon {

StorePool::StorePool(store::StoreOpener open, int size) : opener_(std::move(open)), size_(std::max(size, 1)) {}

StorePool::Lease::~Lease() {
  if (store_) pool_->Return(std::move(store_), generation_);
}

util::Result<StorePool::Lease> StorePool::Acquire() {
  uint64_t generation = 0;
  {
    util::MutexLock lock(mu_);
    while (free_.empty() && open_ >= size_) freed_.Wait(mu_);
    if (!free_.empty()) {
      Idle idle = std::move(free_.back());
      free_.pop_back();
      return Lease(*this, std::move(idle.store), idle.generation);
    }
    ++open_;  // reserved: opened below, outside the lock (it touches the disk)
    generation = generation_;
  }
  auto opened = opener_();
  if (!opened.ok()) {
    util::MutexLock lock(mu_);
    --open_;
    freed_.Signal();
    return opened.error();
  }
  return Lease(*this, std::move(*opened), generation);
}

void StorePool::Adopt(std::unique_ptr<store::Store> store) {
  util::MutexLock lock(mu_);
  ++open_;
  free_.push_back(Idle{generation_, std::move(store)});
  freed_.Signal();
}

void StorePool::Grow(int size) {
  util::MutexLock lock(mu_);
  if (size <= size_) return;
  size_ = size;
  freed_.SignalAll();  // waiters may open one now
}

void StorePool::Return(std::unique_ptr<store::Store> store, uint64_t generation) {
  // The server ended a connection (a restart, a failover): every connection
  // opened before is almost surely dead too, and each would cost its next
  // borrower a failure and a backoff. The first broken one of a generation
  // closes the idle ones; those lent meanwhile are closed as they come back.
  // Everything is closed outside the lock; the next borrowers open new ones.
  std::vector<Idle> closed;
  const bool broken = store->broken();
  {
    util::MutexLock lock(mu_);
    if (broken && generation == generation_) {
      ++generation_;
      closed.swap(free_);
      open_ -= static_cast<int>(closed.size());
    }
    if (broken || generation < generation_) {
      --open_;
      freed_.SignalAll();
    } else {
      free_.push_back(Idle{generation, std::move(store)});
      freed_.Signal();
    }
  }
  store.reset();
}

}  // namespace mailhook::daemon
