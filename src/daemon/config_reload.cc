#include "daemon/config_reload.h"

#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <set>
#include <utility>
#include <vector>

#include "util/log.h"

namespace mailhook::daemon {
namespace {

std::string Join(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ",") + n;
  return out.empty() ? "-" : out;
}

// A config error names values in double quotes; inside key="..." they
// would end the value early for whoever parses the log.
std::string InQuotes(std::string text) {
  std::replace(text.begin(), text.end(), '"', '\'');
  return text;
}

}  // namespace

ConfigReloader::ConfigReloader(std::string path, std::shared_ptr<const config::Config> running,
                               config::ConfigFingerprint fingerprint, ReloadTargets parts)
    : path_(std::move(path)),
      running_(std::move(running)),
      fingerprint_(std::move(fingerprint)),
      parts_(parts),
      applied_(parts.metrics.ConfigReloads("applied")),
      failed_(parts.metrics.ConfigReloads("failed")) {}

config::Config ConfigReloader::KeepRestartOnly(config::Config next) const {
  next.state_dir = running_->state_dir;
  next.http_listen = running_->http_listen;
  next.log = running_->log;
  next.store = running_->store;
  return next;
}

bool ConfigReloader::Reload() {
  bool applied = ReloadUncounted();
  (applied ? applied_ : failed_).Inc();
  return applied;
}

bool ConfigReloader::ReloadUncounted() {
  spdlog::logger& log = util::Log(util::Area::kDaemon);
  config::LoadedConfig loaded = config::LoadConfigWithFingerprint(path_);
  if (!loaded.result.config || !loaded.fingerprint) {
    for (const auto& e : loaded.result.errors) {
      // ConfigError messages name the key and the fix, never a secret's value.
      log.error(
          "daemon.reload_failed error=\"{}\" note=\"the running config is kept; fix the file and send SIGHUP "
          "again (mailhook check -c {} lists every problem)\"",
          InQuotes(e.ToString()), path_);
    }
    if (loaded.result.errors.empty()) log.error("daemon.reload_failed file={} cause=\"not readable as YAML\"", path_);
    return false;
  }
  config::ConfigChanges changes = config::CompareConfigs(fingerprint_, *loaded.fingerprint);
  for (const auto& key : changes.restart_needed) {
    log.warn(
        "daemon.reload_needs_restart key={} note=\"{} cannot change while running; the running value is kept "
        "until mailhook restarts\"",
        key, key);
  }
  auto next = std::make_shared<const config::Config>(KeepRestartOnly(std::move(*loaded.result.config)));
  if (!ApplyTargets(changes, next)) return false;
  for (const auto& setting : config::InsecureSettings(*next)) {
    auto before = config::InsecureSettings(*running_);
    if (std::find(before.begin(), before.end(), setting) == before.end()) {
      log.warn("daemon.insecure setting=\"{}\"", setting);
    }
  }
  ApplyAccounts(changes, next);
  // The keys that need a restart keep the running value: they stay reported
  // on every reload until then.
  config::ConfigFingerprint kept = std::move(*loaded.fingerprint);
  kept.restart_only = fingerprint_.restart_only;
  fingerprint_ = std::move(kept);
  running_ = next;
  log.info(
      "daemon.reloaded accounts_restarted={} accounts_added={} accounts_removed={} targets_rebuilt={} "
      "targets_added={} targets_removed={} needs_restart={}",
      changes.accounts_changed.size(), changes.accounts_added.size(), changes.accounts_removed.size(),
      changes.targets_changed.size(), changes.targets_added.size(), changes.targets_removed.size(),
      Join(changes.restart_needed));
  return true;
}

bool ConfigReloader::ApplyTargets(const config::ConfigChanges& changes,
                                  const std::shared_ptr<const config::Config>& next) {
  spdlog::logger& log = util::Log(util::Area::kDaemon);
  std::set<std::string> rebuild(changes.targets_added.begin(), changes.targets_added.end());
  rebuild.insert(changes.targets_changed.begin(), changes.targets_changed.end());
  // Built before the routes name them: a row routed to a target the
  // dispatcher does not know yet would become a dead letter.
  if (!rebuild.empty()) {
    if (auto s = parts_.dispatcher.UpdateTargets(*next, rebuild, {}); !s.ok()) {
      log.error("daemon.reload_failed cause=\"{}\" note=\"the running config is kept\"", s.error().message());
      return false;
    }
  }
  parts_.routes.Replace(next);
  // Removed after the routes stopped naming them.
  std::set<std::string> remove(changes.targets_removed.begin(), changes.targets_removed.end());
  if (!remove.empty()) (void)parts_.dispatcher.UpdateTargets(*next, {}, remove);
  for (const auto& t : changes.targets_added) log.info("daemon.reload_target target={} change=added", t);
  for (const auto& t : changes.targets_changed) log.info("daemon.reload_target target={} change=rebuilt", t);
  for (const auto& t : changes.targets_removed) log.info("daemon.reload_target target={} change=removed", t);
  return true;
}

void ConfigReloader::ApplyAccounts(const config::ConfigChanges& changes,
                                   const std::shared_ptr<const config::Config>& next) {
  parts_.stores.Grow(static_cast<int>(std::max<size_t>(next->accounts.size(), 1)));
  parts_.accounts.Apply(changes, next);
}

DaemonWake WaitForStopOrReload(const StopSignal& stop, StopSignal* reload) {
  for (;;) {
    pollfd fds[2] = {{stop.fd(), POLLIN, 0}, {reload ? reload->fd() : -1, POLLIN, 0}};
    int r = poll(fds, 2, -1);
    if (r < 0 && errno != EINTR) return DaemonWake::kStop;  // cannot wait: treat as stop, not as a spin
    if (stop.fired()) return DaemonWake::kStop;
    if (reload && reload->fired()) {
      reload->Clear();
      return DaemonWake::kReload;
    }
  }
}

}  // namespace mailhook::daemon
