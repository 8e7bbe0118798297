#include "daemon/store_pool.h"

#include <algorithm>
#include <utility>

#include "store/open_store.h"

namespace mailhook::daemon {

StorePool::StorePool(std::string state_dir, int size) : state_dir_(std::move(state_dir)), size_(std::max(size, 1)) {}

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
  auto opened = store::OpenStore({.state_dir = state_dir_});
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
  util::MutexLock lock(mu_);
  free_.push_back(std::move(store));
  freed_.Signal();
}

}  // namespace mailhook::daemon
