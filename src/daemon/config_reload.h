#pragma once
/// ConfigReload: what SIGHUP does to a running daemon. Re-reads the config
/// file with the loader of `mailhook check` (every rule, every error with its
/// line:column); an invalid file is logged (daemon.reload_failed) and the
/// running config keeps running. A valid one is compared with the running
/// one (config_fingerprint.h) and only the difference is applied:
///   1. targets (webhooks, hooks) added or changed are built — their secrets
///      resolved as at start; one that fails fails the reload, nothing
///      changed — and swapped into the dispatcher; unchanged ones keep their
///      objects and connections, deliveries in flight end on the old object;
///   2. the routes switch to the new config (every account, restarted or not,
///      routes its next events by it);
///   3. targets removed leave the dispatcher (their waiting rows become dead
///      letters when due, as after a restart without them);
///   4. accounts removed or changed stop (log out), changed and added ones
///      start; unchanged ones keep their connections. On the PostgreSQL
///      store only the accounts this replica holds run (ClusterMember).
/// state_dir, http, log and store cannot change in a running daemon: a change is
/// reported (daemon.reload_needs_restart) and the running value kept.
/// Not thread-safe: the daemon's thread calls Reload.

#include <memory>
#include <string>

#include "config/config.h"
#include "config/config_fingerprint.h"
#include "daemon/account_set.h"
#include "daemon/cluster_member.h"
#include "daemon/router.h"
#include "daemon/stop_signal.h"
#include "daemon/store_pool.h"
#include "delivery/dispatcher.h"
#include "util/metrics_catalog.h"

namespace mailhook::daemon {

/// What the daemon reloads from; an empty path turns reloading off.
struct ReloadOptions {
  std::string path;
  /// Of the config the daemon starts with (the same read of the file).
  config::ConfigFingerprint fingerprint;
  /// Fired on SIGHUP (by main's signal thread); cleared by the daemon.
  StopSignal* requested = nullptr;
};

/// The parts a reload changes, owned by RunDaemon.
struct ReloadTargets {
  /// Starts and stops the accounts (only those this replica holds).
  ClusterMember& accounts;
  delivery::Dispatcher& dispatcher;
  RouteTable& routes;
  StorePool& stores;
  const util::MetricsCatalog& metrics;  ///< mailhook_config_reloads_total{outcome}
};

class ConfigReloader {
 public:
  ConfigReloader(std::string path, std::shared_ptr<const config::Config> running, config::ConfigFingerprint fingerprint,
                 ReloadTargets parts);

  /// Reads the file and applies it; false when it was rejected (logged) and
  /// the running config kept. Counted in mailhook_config_reloads_total.
  bool Reload();

  /// The config running now.
  const std::shared_ptr<const config::Config>& running() const { return running_; }

 private:
  /// The new config with the keys a running daemon keeps (state_dir, http,
  /// log, store) set back to the running values.
  config::Config KeepRestartOnly(config::Config next) const;
  /// Steps 1–3 above; false when a target failed to build (nothing changed).
  bool ApplyTargets(const config::ConfigChanges& changes, const std::shared_ptr<const config::Config>& next);
  /// Step 4.
  void ApplyAccounts(const config::ConfigChanges& changes, const std::shared_ptr<const config::Config>& next);
  /// Reload without the count.
  bool ReloadUncounted();

  const std::string path_;
  std::shared_ptr<const config::Config> running_;
  config::ConfigFingerprint fingerprint_;
  ReloadTargets parts_;
  const util::Counter applied_;  // bound at construction: /metrics shows 0 before the first SIGHUP
  const util::Counter failed_;
};

/// What woke the daemon's main loop.
enum class DaemonWake { kStop, kReload };

/// Waits until `stop` fires (kStop, also when both did) or `reload` does
/// (kReload, after clearing it). `reload` may be null: then only stop.
DaemonWake WaitForStopOrReload(const StopSignal& stop, StopSignal* reload);

}  // namespace mailhook::daemon
