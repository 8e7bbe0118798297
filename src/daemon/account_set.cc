#include "daemon/account_set.h"

#include <utility>

namespace mailhook::daemon {

AccountSet::AccountSet(const util::MetricsCatalog& metrics, StorePool& stores, std::function<void()> on_committed,
                       const RouteTable& routes)
    : metrics_(metrics), stores_(stores), on_committed_(std::move(on_committed)), routes_(routes) {}

AccountSet::~AccountSet() { StopAll(); }

void AccountSet::Start(std::shared_ptr<const config::Config> config, const config::Account& account) {
  Running r{std::move(config), std::make_unique<StopSignal>(), nullptr};
  WatcherSeams seams;
  seams.routes = &routes_;
  seams.tokens = TokenCacheFor(account);
  r.watcher =
      std::make_unique<AccountWatcher>(*r.config, account, *r.stop, on_committed_, metrics_, stores_, std::move(seams));
  AccountWatcher& started = *r.watcher;
  {
    util::MutexLock lock(mu_);
    running_.insert_or_assign(account.name, std::move(r));
  }
  started.Start();
}

std::shared_ptr<delivery::OAuth2TokenCache> AccountSet::TokenCacheFor(const config::Account& account) {
  if (!account.oauth2) return nullptr;
  util::MutexLock lock(mu_);
  auto& cache = token_caches_[account.name];
  if (!cache || !cache->SameSource(account)) {
    cache = std::make_shared<delivery::OAuth2TokenCache>(account, requester_);
  }
  return cache;
}

void AccountSet::Finish(std::map<std::string, Running> stopping) {
  for (auto& [name, r] : stopping) r.stop->Fire();
  for (auto& [name, r] : stopping) r.watcher->Join();  // each logs out on its stop signal
}

void AccountSet::Stop(const std::string& name) {
  std::map<std::string, Running> stopping;
  {
    util::MutexLock lock(mu_);
    auto it = running_.find(name);
    if (it == running_.end()) return;
    stopping.insert(running_.extract(it));
  }
  Finish(std::move(stopping));
}

void AccountSet::Stop(const std::vector<std::string>& names) {
  std::map<std::string, Running> stopping;
  {
    util::MutexLock lock(mu_);
    for (const auto& name : names) {
      auto it = running_.find(name);
      if (it != running_.end()) stopping.insert(running_.extract(it));
    }
  }
  Finish(std::move(stopping));
}

void AccountSet::StopAll() {
  std::map<std::string, Running> stopping;
  {
    util::MutexLock lock(mu_);
    stopping.swap(running_);
  }
  Finish(std::move(stopping));
}

void AccountSet::Wake(const std::string& account, const std::string& folder) {
  util::MutexLock lock(mu_);
  auto it = running_.find(account);
  if (it != running_.end()) it->second.watcher->Wake(folder);
}

void AccountSet::ForEach(const std::function<void(const AccountWatcher&)>& fn) const {
  util::MutexLock lock(mu_);
  for (const auto& [name, r] : running_) fn(*r.watcher);
}

}  // namespace mailhook::daemon
