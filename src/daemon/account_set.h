#pragma once
/// AccountSet: the running AccountWatchers by account name, each with a stop
/// signal of its own, so that a config reload can stop one account and start
/// another while the others keep their connections. Each watcher keeps the
/// config it was built from alive (an unchanged account runs on the config
/// of an earlier generation; its events are routed by the RouteTable).
///
/// Thread-safety: Wake and ForEach run on other threads (dispatcher workers,
/// the HTTP server) while Start/Stop change the set; Start/Stop/StopAll one
/// call at a time (the daemon's thread, or ClusterMember under its lock).

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "daemon/account_watcher.h"
#include "daemon/router.h"
#include "daemon/stop_signal.h"
#include "daemon/store_pool.h"
#include "delivery/oauth2_token_cache.h"
#include "util/metrics_catalog.h"
#include "util/mutex.h"
#include "util/thread_annotations.h"

namespace mailhook::daemon {

class AccountSet {
 public:
  /// `on_committed` wakes the dispatcher; everything given must outlive this.
  AccountSet(const util::MetricsCatalog& metrics, StorePool& stores, std::function<void()> on_committed,
             const RouteTable& routes);
  ~AccountSet();
  AccountSet(const AccountSet&) = delete;
  AccountSet& operator=(const AccountSet&) = delete;

  /// Builds the watcher of `account` (an account of `config`) and starts it.
  void Start(std::shared_ptr<const config::Config> config, const config::Account& account) EXCLUDES(mu_);
  /// Stops the watcher of `name` (its connections log out) and waits for it:
  /// once it returns, nothing of the account commits any more.
  void Stop(const std::string& name) EXCLUDES(mu_);
  /// The same for several accounts at once (all signalled first, then joined);
  /// names not running are skipped.
  void Stop(const std::vector<std::string>& names) EXCLUDES(mu_);
  /// Stops every watcher (all signalled first, then joined).
  void StopAll() EXCLUDES(mu_);
  /// An event of account/folder was delivered: its post-actions may be due.
  void Wake(const std::string& account, const std::string& folder) EXCLUDES(mu_);
  /// The OAuth2 token cache for `account` (nullptr without `oauth2`): the one
  /// an earlier watcher of the account used while its name and oauth2 block
  /// are unchanged, so a restart (a reload that changed something else)
  /// keeps its access token and an in-memory rotated refresh token, which
  /// the provider may have invalidated the configured one for.
  std::shared_ptr<delivery::OAuth2TokenCache> TokenCacheFor(const config::Account& account) EXCLUDES(mu_);
  /// Test seam: the token endpoint of caches made from now on.
  void set_token_requester(delivery::OAuth2TokenCache::Requester r) { requester_ = std::move(r); }

  /// Calls `fn` for each running watcher, under the set's lock (keep it short).
  void ForEach(const std::function<void(const AccountWatcher&)>& fn) const EXCLUDES(mu_);

 private:
  struct Running {
    std::shared_ptr<const config::Config> config;  // owns the account the watcher refers to
    std::unique_ptr<StopSignal> stop;
    std::unique_ptr<AccountWatcher> watcher;
  };
  /// Signals and joins, outside the lock.
  static void Finish(std::map<std::string, Running> stopping);

  const util::MetricsCatalog& metrics_;
  StorePool& stores_;
  std::function<void()> on_committed_;
  const RouteTable& routes_;
  mutable util::Mutex mu_;
  std::map<std::string, Running> running_ GUARDED_BY(mu_);
  /// By account name; kept when the account stops (a restart is a Stop and a
  /// Start), replaced when its oauth2 block changed.
  std::map<std::string, std::shared_ptr<delivery::OAuth2TokenCache>> token_caches_ GUARDED_BY(mu_);
  delivery::OAuth2TokenCache::Requester requester_ = delivery::RequestAccessToken;
};

}  // namespace mailhook::daemon
