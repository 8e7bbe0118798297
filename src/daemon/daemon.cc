#include "daemon/daemon.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <vector>

#include "daemon/account_set.h"
#include "daemon/account_watcher.h"
#include "daemon/cluster_command.h"
#include "daemon/cluster_member.h"
#include "daemon/configured_store.h"
#include "daemon/state_dir_lock.h"
#include "daemon/store_pool.h"
#include "delivery/dispatcher.h"
#include "delivery/smtp_target.h"
#include "http/server.h"
#include "imap/session.h"
#include "store/open_store.h"
#include "store/store.h"
#include "util/log.h"
#include "util/metrics_catalog.h"
#include "util/target_id.h"

namespace mailhook::daemon {
namespace {

// mailhook creates state_dir 0700 and its files 0600 (store::OpenStore). An
// existing directory is left as the operator made it (a volume root, a group
// for backups) and only reported, with the fix, when every user may enter it:
// group access is a deliberate choice (the image's 0750, Kubernetes' fsGroup)
// and a warning on every start would teach people to ignore warnings.
void WarnIfStateDirIsShared(const std::string& state_dir) {
  struct stat st {};
  if (::stat(state_dir.c_str(), &st) != 0 || (st.st_mode & 007) == 0) return;
  util::Log(util::Area::kDaemon)
      .warn(
          "daemon.state_dir_shared dir={} mode={:04o} note=\"every user may list it; run chmod 700 {} "
          "unless that is intended\"",
          state_dir, st.st_mode & 07777, state_dir);
}

// `<state_dir>/http.port`: the bound HTTP port, one decimal line, for tools
// and tests that listen on port 0 (http.listen: 127.0.0.1:0) and need the
// port without reading logs. Written once bound (to a temporary file, then
// renamed, so a reader never sees half of it); removed at shutdown.
std::string PortFilePath(const std::string& state_dir) { return state_dir + "/http.port"; }

void WritePortFile(const std::string& state_dir, int port) {
  const std::string tmp = PortFilePath(state_dir) + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << port << "\n";
  }
  if (std::rename(tmp.c_str(), PortFilePath(state_dir).c_str()) != 0) {
    util::Log(util::Area::kDaemon)
        .warn("daemon.port_file_failed path={} note=\"the HTTP port is only in the log\"", PortFilePath(state_dir));
    return;
  }
  util::Log(util::Area::kDaemon).info("daemon.port_file path={}", PortFilePath(state_dir));
}

// Inside a container (Docker's /.dockerenv, Podman's /run/.containerenv), a
// loopback listen address is the container's own loopback: HEALTHCHECK and
// `docker exec` reach it, but a published port (-p 127.0.0.1:8025:8025) on a
// bridge network reaches nothing. Harmless with --network host, hence a warning.
void WarnIfLoopbackInContainer(const config::HostPort& listen) {
  std::error_code ec;
  bool container = std::filesystem::exists("/.dockerenv", ec) || std::filesystem::exists("/run/.containerenv", ec);
  if (!container || !config::IsLoopbackHost(listen.host())) return;
  util::Log(util::Area::kDaemon)
      .warn(
          "daemon.http_loopback_in_container listen={} note=\"a published port cannot reach a loopback address inside "
          "a container: listen on 0.0.0.0:{} and publish 127.0.0.1:{}:{} on the host (fine with --network host)\"",
          listen.ToString(), listen.port(), listen.port(), listen.port());
}

// Opens the state and takes it for this process: everything depends on it,
// so a state_dir we cannot use fails the start. Null after logging why.
std::unique_ptr<store::Store> OpenState(const config::Config& config, const ConfiguredStore& chosen,
                                        std::unique_ptr<StateDirLock>& lock) {
  spdlog::logger& log = util::Log(util::Area::kDaemon);
  auto store = chosen.open();
  if (!store.ok()) {
    log.error("daemon.store_failed cause=\"{}\"", store.error().message());
    return nullptr;
  }
  // A replica on PostgreSQL keeps only its lock (and http.port) in
  // state_dir, which SQLite would have made: made 0700 here, as SQLite does.
  if (chosen.kind == config::StoreKind::kPostgres) {
    std::error_code ec;  // a failure shows in the lock's error below
    std::filesystem::path dir = std::filesystem::path(config.state_dir).lexically_normal();
    if (!dir.has_filename()) dir = dir.parent_path();
    if (dir.has_parent_path()) std::filesystem::create_directories(dir.parent_path(), ec);
    (void)::mkdir(dir.c_str(), 0700);
  }
  // One daemon per state_dir: taken before the dispatcher releases leases.
  auto taken = StateDirLock::Acquire(config.state_dir);
  if (!taken.ok()) {
    log.error("{} cause=\"{}\"", taken.error().code(), taken.error().message());
    return nullptr;
  }
  lock = std::move(*taken);
  log.info("daemon.store kind={} where={}", chosen.kind == config::StoreKind::kPostgres ? "postgresql" : "sqlite",
           chosen.where);
  // Once per start, not per OpenStore (one per watcher and per worker).
  if (auto s = (*store)->Housekeep(); !s) {
    log.error("daemon.store_failed cause=\"{}\"", s.error().message());
    return nullptr;
  }
  WarnIfStateDirIsShared(config.state_dir);
  for (const auto& setting : config::InsecureSettings(config)) {
    log.warn("daemon.insecure setting=\"{}\"", setting);
  }
  return std::move(*store);
}

// The store the config names and, on PostgreSQL, this replica's membership
// of the cluster, whose keeper the stores check their fences with: the
// url_command runs once, here. Null after logging why.
std::unique_ptr<ClusterMember> JoinCluster(const config::Config& config, util::MetricsCatalog& metrics,
                                           std::optional<ConfiguredStore>& chosen) {
  spdlog::logger& log = util::Log(util::Area::kDaemon);
  auto location = config::ResolveStore(config.store);
  if (!location.ok()) {
    log.error("daemon.store_failed cause=\"{}\"", location.error().message());
    return nullptr;
  }
  auto member = ClusterMember::Join(*location, config, metrics);
  if (!member.ok()) {
    log.error("daemon.store_failed cause=\"{}\"", member.error().message());
    return nullptr;
  }
  auto configured = ConfigureStore(*location, config.state_dir, config.store.lease_ttl, (*member)->keeper());
  if (!configured.ok()) {
    log.error("daemon.store_failed cause=\"{}\"", configured.error().message());
    return nullptr;
  }
  chosen = std::move(*configured);
  return std::move(*member);
}

// /readyz: every dispatcher worker runs, every watcher of this daemon is
// connected and (PostgreSQL) the store is reachable.
http::Readiness Readiness(const AccountSet& accounts, const delivery::Dispatcher& dispatcher,
                          const ClusterMember& cluster) {
  http::Readiness r{true, {}};
  cluster.AddReadiness(r);
  if (!dispatcher.Healthy()) {
    r.ready = false;
    r.not_ready.push_back("delivery: a dispatcher worker is not running (starting or restarting)");
  }
  accounts.ForEach([&r](const AccountWatcher& a) {
    for (const auto& w : a.folders()) {
      WatchState s = w->state();
      if (s != WatchState::kIdling && s != WatchState::kCatchingUp) {
        r.ready = false;
        r.not_ready.push_back(w->account() + "/" + w->folder() + ": " + WatchStateName(s));
      } else if (!w->watched()) {
        r.ready = false;
        r.not_ready.push_back(w->account() + "/" + w->folder() + ": its NOTIFY or IDLE connection is not up");
      }
    }
  });
  return r;
}

}  // namespace

int RunDaemon(const config::Config& start_config, const std::string& version, StopSignal& stop,
              const ReloadOptions& reload) {
  spdlog::logger* log = &util::Log(util::Area::kDaemon);
  // Shared: a watcher keeps the config it was built from while a reload
  // moves the others on (account_set.h).
  auto running = std::make_shared<const config::Config>(start_config);
  const config::Config& config = *running;
  // The daemon's one registry; everything that records a metric gets it.
  util::MetricsCatalog metrics;
  std::optional<ConfiguredStore> chosen;
  // First: the stores check its keeper's fences, so it outlives them.
  std::unique_ptr<ClusterMember> cluster = JoinCluster(config, metrics, chosen);
  if (!cluster) return 1;
  std::unique_ptr<StateDirLock> lock;  // held until the daemon returns
  std::unique_ptr<store::Store> store = OpenState(config, *chosen, lock);
  if (!store) return 1;
  // The watchers' SQLite connections: one per account at most (each account
  // syncs one folder at a time, and holds a connection for the whole sync,
  // network included, so fewer would let slow accounts stall the others),
  // opened as used; before: one per folder.
  StorePool stores(chosen->open, static_cast<int>(std::max<size_t>(config.accounts.size(), 1)));
  stores.Adopt(std::move(store));

  delivery::Dispatcher dispatcher(config, version, metrics, {.open_store = chosen->open});
  RouteTable routes(running);
  AccountSet watchers(
      metrics, stores, [&dispatcher] { dispatcher.Wake(); }, routes);

  std::unique_ptr<http::HealthServer> http;
  if (config.http_listen) {
    http = std::make_unique<http::HealthServer>(
        *config.http_listen, [&] { return Readiness(watchers, dispatcher, *cluster); }, metrics);
    std::remove(PortFilePath(config.state_dir).c_str());  // a stale one from a crash
    if (auto s = http->Start(); !s.ok()) {
      log->error("daemon.http_failed cause=\"{}\"", s.error().message());
      return 1;
    }
    WritePortFile(config.state_dir, http->port());
    WarnIfLoopbackInContainer(*config.http_listen);
  }

  // A delivered event may complete a post-action: wake its folder's watcher.
  dispatcher.SetOnOutcome([&watchers](const delivery::Report& report) {
    if (report.result != delivery::OutcomeKind::kSuccess) return;
    watchers.Wake(report.account, report.folder);
  });
  if (auto s = dispatcher.Start(); !s.ok()) {
    log->error("daemon.dispatcher_failed cause=\"{}\"", s.error().message());
    if (http) http->Stop();
    return 1;
  }
  cluster->Start(watchers, running);  // every account, or this replica's share
  size_t folders = 0;
  for (const auto& account : config.accounts) folders += account.folders.size();
  log->info("daemon.started version={} accounts={} watchers={} webhooks={} hooks={}", version, config.accounts.size(),
            folders, config.webhooks.size(), config.hooks.size());

  ConfigReloader reloader(reload.path, running, reload.fingerprint, {*cluster, dispatcher, routes, stores, metrics});
  StopSignal* requested = reload.path.empty() ? nullptr : reload.requested;
  while (WaitForStopOrReload(stop, requested) == DaemonWake::kReload) reloader.Reload();

  log->info("daemon.stopping");
  // Each watcher logs out on its stop signal; the dispatcher stops (a
  // delivery in flight is cancelled and its row given back, or marked);
  // only then are the leases given back and the replica leaves. Leaving
  // first would hand this replica's claimed outbox rows to the others while
  // its own deliveries were still in flight: sent twice at once.
  cluster->StopAccounts();
  dispatcher.Stop();
  cluster->Stop();
  if (http) {
    http->Stop();
    std::remove(PortFilePath(config.state_dir).c_str());
  }
  log->info("daemon.stopped");
  return 0;
}

namespace {

// `check --connect` resolves every webhook and hook secret (runs its
// *_command) as `run` does at start-up; one line per target. Values are never
// printed.
int CheckTargetSecrets(const config::Config& config, std::ostream& out) {
  int failures = 0;
  auto check = [&](const std::string& target, const config::SecretRef& ref) {
    auto value = ref.Resolve();
    if (value.ok()) return true;
    out << "FAIL " << target << ": " << value.error().message() << "\n";
    ++failures;
    return false;
  };
  for (const auto& w : config.webhooks) {
    bool ok = true;
    for (const auto& ref : w.secrets) ok = check("webhook " + w.name, ref) && ok;
    for (const auto& [name, ref] : w.headers) ok = check("webhook " + w.name, ref) && ok;
    if (ok && (!w.secrets.empty() || !w.headers.empty())) out << "ok   webhook " << w.name << ": secrets resolved\n";
  }
  for (const auto& h : config.hooks) {
    bool ok = true;
    for (const auto& [name, ref] : h.env) ok = check("hook " + h.name, ref) && ok;
    if (ok && !h.env.empty()) out << "ok   hook " << h.name << ": env resolved\n";
  }
  return failures;
}

std::string_view TlsName(config::TlsMode tls) {
  switch (tls) {
    case config::TlsMode::kImplicit: return "implicit";
    case config::TlsMode::kStartTls: return "starttls";
    case config::TlsMode::kNone: return "none";
  }
  return "";
}

// `check --connect` for the smtp targets: the secret resolved as a send
// resolves it (the refresh flow asks token_url), then the session a send
// opens, up to AUTH, and QUIT: nothing is sent. One line per target; the
// secret is never printed (the client's errors are cleaned of it).
int CheckSmtpTargets(const config::Config& config, std::ostream& out) {
  int failures = 0;
  for (const auto& target : config.smtp) {
    const std::string label = util::TargetId::Smtp(target.name).ToString();
    std::optional<delivery::OAuth2TokenCache> tokens;
    if (target.oauth2) {
      tokens.emplace(label, *target.oauth2, target.allow_insecure);
      tokens->set_log_area(util::Area::kSmtp);
    }
    auto secret = tokens ? tokens->AccessToken() : target.password.Resolve();
    if (!secret.ok()) {
      out << "FAIL " << label << ": " << secret.error().message() << "\n";
      ++failures;
      continue;
    }
    smtp::SmtpOptions options = delivery::SubmissionOptions(target);
    options.secret = std::move(*secret);
    const smtp::CheckOutcome checked = smtp::CheckSubmission(options);
    if (checked.cls != smtp::SendClass::kSent) {
      out << "FAIL " << label << ": " << checked.error << "\n";
      ++failures;
      continue;
    }
    std::string mechanisms;
    for (const std::string& m : checked.auth) mechanisms += (mechanisms.empty() ? "" : ",") + m;
    out << "ok   " << label << ": " << target.host << ":" << target.port << " tls=" << TlsName(target.tls) << " AUTH "
        << smtp::AuthName(options.auth) << " accepted, ehlo=" << checked.helo_name
        << " offered=" << (mechanisms.empty() ? "none" : mechanisms) << " (nothing sent)\n";
  }
  return failures;
}

}  // namespace

int CheckConnect(const config::Config& config, std::ostream& out) {
  int failures = CheckStoreConnects(config, out);
  failures += CheckTargetSecrets(config, out);
  failures += CheckSmtpTargets(config, out);
  for (const auto& account : config.accounts) {
    // `check --connect` resolves the secrets (runs *_command) as `run` would;
    // with the OAuth2 refresh flow it asks token_url for an access token.
    auto password = account.oauth2 ? delivery::OAuth2TokenCache(account).AccessToken() : account.password.Resolve();
    if (!password.ok()) {
      out << "FAIL " << account.name << ": " << password.error().message() << "\n";
      failures += static_cast<int>(account.folders.size());
      continue;
    }
    auto session = imap::Session::Open(imap::SessionOptions::FromAccount(account, std::move(*password), -1));
    if (!session.ok()) {
      out << "FAIL " << account.name << ": " << session.error().message() << "\n";
      failures += static_cast<int>(account.folders.size());
      continue;
    }
    for (const auto& folder : account.folders) {
      auto info = (*session)->Select(folder);
      if (!info.ok()) {
        out << "FAIL " << account.name << "/" << folder << ": " << info.error().message() << "\n";
        ++failures;
        continue;
      }
      out << "ok   " << account.name << "/" << folder << ": uidvalidity=" << info->uidvalidity
          << " messages=" << info->exists << ((*session)->HasCapability("IDLE") ? " idle=yes" : " idle=no")
          << ((*session)->HasCapability("NOTIFY") ? " notify=yes" : " notify=no") << "\n";
    }
    (*session)->Logout();
  }
  return failures == 0 ? 0 : 1;
}

}  // namespace mailhook::daemon
