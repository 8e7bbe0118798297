#include "daemon/store_pool.h"

#include <algorithm>
#include <utility>

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
  const bool broken = store->broken();
  if (broken) store.reset();  // closed outside the lock; the next Acquire opens a new one
  util::MutexLock lock(mu_);
  if (broken) {
    --open_;
  } else {
    free_.push_back(std::move(store));
  }
  freed_.Signal();
}

}  // namespace mailhook::daemon
