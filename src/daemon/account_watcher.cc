#include "daemon/account_watcher.h"

#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <utility>

#include "daemon/backoff.h"
#include "imap/session.h"
#include "util/log.h"
#include "util/strings.h"

namespace mailhook::daemon {
namespace {

using std::chrono::milliseconds;
using SteadyClock = std::chrono::steady_clock;

const char* kWatchNames[] = {"undecided", "notify", "idle", "poll"};

// A folder kept selected on the worker is SELECTed again at least this
// often: a server may recreate a folder without a notification or a broken
// connection telling (an IDLE watch that stays up), and a NOOP on the old
// selection would not show its new UIDVALIDITY.
constexpr milliseconds kSelectAtLeastEvery(60'000);

// Waits until `a` or `b` is readable or `d` passed.
void WaitEither(int a, int b, milliseconds d) {
  pollfd fds[2] = {{a, POLLIN, 0}, {b, POLLIN, 0}};
  const auto deadline = SteadyClock::now() + d;
  for (;;) {
    const auto left = std::chrono::duration_cast<milliseconds>(deadline - SteadyClock::now());
    if (left.count() <= 0) return;
    const int r = ::poll(fds, 2, static_cast<int>(std::min<int64_t>(left.count(), 60 * 60 * 1000)));
    if (r > 0 || (r < 0 && errno != EINTR)) return;
  }
}

}  // namespace

const char* FolderWatchName(FolderWatch w) { return kWatchNames[static_cast<int>(w)]; }

std::vector<FolderWatch> PlanIdleWatches(const config::Account& account, int idle_budget) {
  std::vector<FolderWatch> plan(account.folders.size(), FolderWatch::kPoll);
  int left = std::max(idle_budget, 0);
  auto give = [&](size_t i) {
    if (left > 0 && plan[i] == FolderWatch::kPoll) {
      plan[i] = FolderWatch::kIdle;
      --left;
    }
  };
  for (const std::string& pinned : account.idle_pinned) {
    auto it = std::find(account.folders.begin(), account.folders.end(), pinned);
    if (it != account.folders.end()) give(static_cast<size_t>(it - account.folders.begin()));
  }
  for (size_t i = 0; i < plan.size(); ++i) give(i);
  return plan;
}

/// A logged-in mailbox counted in the account's connections while it lives.
/// The gauge moves by one (under the registry's lock), never Set from our
/// count: two connections closing at once on their own threads set 1 after
/// 0, and a stopped account kept showing a connection (seen when a replica
/// lost its accounts). Watchers of one account overlapping in a reload sum.
class AccountWatcher::Connection {
 public:
  Connection(AccountWatcher& owner, std::unique_ptr<imap::Mailbox> box) : owner_(owner), box_(std::move(box)) {
    ++owner_.connections_;
    owner_.metrics_.connections.Add(1);
  }
  ~Connection() {
    box_->Logout();
    --owner_.connections_;
    owner_.metrics_.connections.Add(-1);
    util::Log(util::Area::kImap).info("imap.logout account={}", owner_.account_.name);
  }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  imap::Mailbox& operator*() const { return *box_; }
  imap::Mailbox* operator->() const { return box_.get(); }

 private:
  AccountWatcher& owner_;
  std::unique_ptr<imap::Mailbox> box_;
};

AccountWatcher::AccountWatcher(const config::Config& config, const config::Account& account, const StopSignal& stop,
                               std::function<void()> on_committed, const util::MetricsCatalog& metrics,
                               StorePool& stores, WatcherSeams seams)
    : config_(config),
      account_(account),
      stop_(stop),
      metrics_(metrics.ForAccount(account.name)),
      stores_(stores),
      open_mailbox_(std::move(seams.open_mailbox)),
      clock_(seams.clock ? *seams.clock : util::Clock::Real()),
      watch_(new std::atomic<FolderWatch>[account.folders.size()]) {
  if (!open_mailbox_) {
    open_mailbox_ = [](const imap::SessionOptions& options) -> util::Result<std::unique_ptr<imap::Mailbox>> {
      auto session = imap::Session::Open(options);
      if (!session.ok()) return session.error();
      return std::unique_ptr<imap::Mailbox>(std::move(*session));
    };
  }
  tokens_ = std::move(seams.tokens);
  if (account.oauth2 && !tokens_) tokens_ = std::make_shared<delivery::OAuth2TokenCache>(account);
  for (size_t i = 0; i < account.folders.size(); ++i) {
    folders_.push_back(
        std::make_unique<FolderWatcher>(config_, account_, account.folders[i], stop_, on_committed, metrics));
    if (seams.routes) folders_.back()->set_routes(seams.routes);
    watch_[i] = FolderWatch::kUndecided;
  }
  last_status_.assign(folders_.size(), std::nullopt);
  rechecks_.assign(folders_.size(), RecheckSchedule());
  util::MutexLock lock(mu_);
  changed_.assign(folders_.size(), false);
  missing_.assign(folders_.size(), false);
  reselect_.assign(folders_.size(), false);
}

AccountWatcher::~AccountWatcher() { Join(); }

void AccountWatcher::Start() {
  worker_ = std::thread([this] { RunWorker(); });
}

void AccountWatcher::Join() {
  if (worker_.joinable()) worker_.join();
}

void AccountWatcher::Wake(const std::string& folder) {
  if (auto i = IndexOf(folder)) MarkChanged(*i);
}

std::optional<size_t> AccountWatcher::IndexOf(const std::string& folder) const {
  for (size_t i = 0; i < folders_.size(); ++i) {
    if (folders_[i]->folder() == folder) return i;
  }
  // INBOX is case-insensitive (RFC 3501 §5.1): servers may report it in any case.
  if (util::EqualsIgnoreCase(folder, "INBOX")) {
    for (size_t i = 0; i < folders_.size(); ++i) {
      if (util::EqualsIgnoreCase(folders_[i]->folder(), "INBOX")) return i;
    }
  }
  return std::nullopt;
}

void AccountWatcher::MarkChanged(size_t i) {
  {
    util::MutexLock lock(mu_);
    changed_[i] = true;
  }
  work_.Fire();
}

void AccountWatcher::RequireSelect(size_t i) {
  util::MutexLock lock(mu_);
  reselect_[i] = true;
}

bool AccountWatcher::TakeReselect(size_t i) {
  util::MutexLock lock(mu_);
  const bool was = reselect_[i];
  reselect_[i] = false;
  return was;
}

void AccountWatcher::MarkAllChanged() {
  {
    util::MutexLock lock(mu_);
    changed_.assign(changed_.size(), true);
  }
  work_.Fire();
}

std::vector<size_t> AccountWatcher::TakeChanged() {
  work_.Clear();  // before reading: a mark after this fires it again
  util::MutexLock lock(mu_);
  std::vector<size_t> out;
  // From first_, not from 0: a folder whose sync breaks the session must not
  // keep the folders after it from ever being synced.
  const size_t n = changed_.size();
  for (size_t k = 0; k < n; ++k) {
    const size_t i = (first_ + k) % n;
    if (changed_[i]) out.push_back(i);
    changed_[i] = false;
  }
  return out;
}

util::Result<util::Secret> AccountWatcher::Credential() {
  if (tokens_) return tokens_->AccessToken(stop_.fd());
  // Resolved before each login: OAuth2 access tokens expire within the hour,
  // and a password file may have been rotated.
  auto password = account_.password.Resolve();
  if (!password.ok()) {
    return util::Error("imap.password_command", util::RetryClass::kBackoff, password.error().message());
  }
  return std::move(*password);
}

util::Result<std::unique_ptr<AccountWatcher::Connection>> AccountWatcher::Open() {
  auto secret = Credential();
  if (!secret.ok()) return secret.error();
  auto opened = open_mailbox_(imap::SessionOptions::FromAccount(account_, *secret, stop_.fd()));
  // "imap.auth*" (a refused login, whichever response code came with it) or
  // [EXPIRED] (RFC 5530), which servers may answer for an expired token.
  auto refused = [](const util::Error& e) {
    return e.NeedsOperator() && (e.code().starts_with("imap.auth") || e.code() == "imap.credentials_expired");
  };
  if (!opened.ok() && tokens_ && refused(opened.error())) {
    // A token may be revoked or expire before its expires_in: one fresh one.
    tokens_->Reject(*secret);
    secret = tokens_->AccessToken(stop_.fd());
    if (!secret.ok()) return secret.error();
    opened = open_mailbox_(imap::SessionOptions::FromAccount(account_, *secret, stop_.fd()));
    if (!opened.ok() && refused(opened.error())) {
      return opened.error().WithMessage(opened.error().message() +
                                        " (refused with an access token just obtained from token_url: check the "
                                        "username, the scope and that the app may use IMAP for this mailbox)");
    }
  }
  if (!opened.ok()) return opened.error();
  return std::make_unique<Connection>(*this, std::move(*opened));
}

void AccountWatcher::RunWithBackoff(const std::string& role, const std::function<util::Status()>& session,
                                    const std::function<void(const util::Status&)>& on_end) {
  spdlog::logger* log = &util::Log(util::Area::kImap);
  Backoff backoff(milliseconds(1000), milliseconds(5 * 60 * 1000));
  // Operator-fixable failures (bad password, untrusted certificate, missing
  // folder) are retried slowly, never in a hot loop, and logged once.
  Backoff slow(milliseconds(60 * 1000), milliseconds(30 * 60 * 1000));
  std::string last_operator_error;
  while (!stop_.fired()) {
    const auto started = SteadyClock::now();
    util::Status s = util::Ok();
    try {
      s = session();
    } catch (const std::exception& e) {
      log->critical("imap.session_crashed account={} connection={} cause=\"{}\"", account_.name, role, e.what());
      s = util::Error("daemon.exception", util::RetryClass::kBackoff, std::string("the session crashed: ") + e.what());
    }
    if (stop_.fired()) break;
    on_end(s);
    // A session that lasted was healthy: start the backoff over.
    if (SteadyClock::now() - started > std::chrono::seconds(30)) backoff.Reset();
    milliseconds delay;
    if (!s.ok() && s.error().NeedsOperator()) {
      delay = slow.Next();
      // The token cache logs its operator errors once for all connections.
      const bool repeated = s.error().message() == last_operator_error || s.error().code().starts_with("oauth2.");
      log->log(repeated ? spdlog::level::debug : spdlog::level::err,
               "imap.needs_operator account={} connection={} retry_in_ms={} cause=\"{}\"", account_.name, role,
               delay.count(), s.error().message());
      last_operator_error = s.error().message();
    } else {
      slow.Reset();
      last_operator_error.clear();
      delay = backoff.Next();
      // The store failing (disk full, read-only) heals only when someone
      // frees space: say so at error level, but keep retrying quickly.
      const bool store_trouble = !s.ok() && s.error().IsStore();
      log->log(store_trouble ? spdlog::level::err : spdlog::level::warn,
               "imap.reconnect account={} connection={} attempt={} delay_ms={} cause=\"{}\"", account_.name, role,
               backoff.attempts(), delay.count(), s.ok() ? "session ended" : s.error().message());
    }
    clock_.WaitFd(stop_.fd(), delay);
  }
}

void AccountWatcher::RunWorker() {
  RunWithBackoff(
      "worker", [this] { return WorkerSession(); },
      [this](const util::Status& s) {
        for (auto& f : folders_) ConnectionLost(*f, s);
      });
  for (auto& t : watch_threads_) t.join();
  for (auto& f : folders_) f->set_state(WatchState::kStopped);
}

util::Status AccountWatcher::WorkerSession() {
  for (auto& f : folders_) {
    if (f->state() != WatchState::kIdling) f->set_state(WatchState::kConnecting);
  }
  auto conn = Open();
  if (!conn.ok()) return conn.error();
  imap::Mailbox& session = ***conn;
  if (!decided_) DecideWatches(session);
  selected_.reset();  // a new session: nothing is selected
  MarkAllChanged();   // catch up with what came while no one fetched
  const milliseconds resync = account_.idle_refresh;
  auto next_poll = SteadyClock::now() + account_.poll_interval;
  auto next_resync = SteadyClock::now() + resync;
  auto next_liveness = SteadyClock::now() + LivenessWait();
  while (!stop_.fired()) {
    if (auto s = SyncChanged(session); !s.ok()) return s;
    const auto now = SteadyClock::now();
    if (now >= next_liveness) {
      // A waiting worker connection says nothing for up to idle_refresh: a
      // black hole would go unnoticed until a fetch times out on it.
      if (auto s = session.Noop(); !s.ok()) return LivenessChecked(s.error(), "worker");
      next_liveness = SteadyClock::now() + LivenessWait();
      continue;
    }
    if (now >= next_poll) {
      if (auto s = PollFolders(session); !s.ok()) return s;
      next_poll = now + account_.poll_interval;
      continue;
    }
    if (RecheckDue(now)) continue;
    if (now >= next_resync) {
      // Notifications can be lost (DESIGN.md: libetpan's IDLE bug, EXISTS
      // during a FETCH): look at every folder now and then. This also keeps
      // the worker connection from idling out (RFC 3501: 30 minutes).
      MarkAllChanged();
      selected_.reset();  // and SELECT again, as a fresh look at the folder
      next_resync = now + resync;
      continue;
    }
    auto until = std::min({next_poll, next_resync, next_liveness});
    for (const RecheckSchedule& r : rechecks_) {
      if (r.due()) until = std::min(until, *r.due());
    }
    WaitEither(work_.fd(), stop_.fd(), std::chrono::duration_cast<milliseconds>(until - now) + milliseconds(1));
  }
  return util::Ok();
}

util::Status AccountWatcher::SyncChanged(imap::Mailbox& session) {
  std::vector<size_t> changed = TakeChanged();
  for (size_t k = 0; k < changed.size() && !stop_.fired(); ++k) {
    const size_t i = changed[k];
    auto store = stores_.Acquire();
    const bool reselect = TakeReselect(i);  // taken in any case: it is about this sync
    const auto now = SteadyClock::now();
    const bool still_selected = selected_ == i && !reselect && now - selected_at_ < kSelectAtLeastEvery;
    selected_.reset();  // until this sync succeeded: a failed one may have left nothing selected
    util::Status s = store.ok() ? folders_[i]->Sync(session, **store, still_selected) : util::Status(store.error());
    if (s.ok()) {
      if (!still_selected) selected_at_ = now;
      selected_ = i;
      ReportMissing(i, false, "");
      ScheduleRecheck(i);
      continue;
    }
    if (s.error().NeedsOperator() && !s.error().IsStore()) {
      // The server refused this folder (deleted, renamed, no rights): the
      // others go on; it is looked at again with the next resync or poll.
      folders_[i]->set_state(WatchState::kNeedsOperator);
      ReportMissing(i, true, s.error().message());
      continue;
    }
    // The session broke: what was not synced is synced on the next one,
    // starting after this folder (it may be what breaks it).
    for (size_t rest = k; rest < changed.size(); ++rest) MarkChanged(changed[rest]);
    first_ = (i + 1) % folders_.size();
    return s;
  }
  return util::Ok();
}

void AccountWatcher::ScheduleRecheck(size_t i) {
  rechecks_[i].SyncDone(folders_[i]->last_sync_found_new(), SteadyClock::now());
}

bool AccountWatcher::RecheckDue(std::chrono::steady_clock::time_point now) {
  bool any = false;
  for (size_t i = 0; i < rechecks_.size(); ++i) {
    if (!rechecks_[i].TakeDue(now)) continue;
    MarkChanged(i);
    any = true;
  }
  return any;
}

util::Status AccountWatcher::PollFolders(imap::Mailbox& session) {
  for (size_t i = 0; i < folders_.size() && !stop_.fired(); ++i) {
    // Polled: beyond the connection budget, or its watch connection is down.
    if (watch_[i].load() != FolderWatch::kPoll && folders_[i]->watched()) continue;
    auto status = session.Status(folders_[i]->folder());
    if (!status.ok()) {
      if (!status.error().NeedsOperator()) return status.error();
      folders_[i]->set_state(WatchState::kNeedsOperator);
      ReportMissing(i, true, status.error().message());
      last_status_[i].reset();  // marked again once it answers
      RequireSelect(i);         // and then it may be another folder by that name
      continue;
    }
    auto& last = last_status_[i];
    if (last && last->uidvalidity != status->uidvalidity) {
      RequireSelect(i);
      MarkChanged(i);
    } else if (!last || last->uidnext != status->uidnext || last->messages != status->messages) {
      MarkChanged(i);
    }
    last = *status;
  }
  return util::Ok();
}

void AccountWatcher::ReportMissing(size_t i, bool missing, const std::string& cause) {
  {
    util::MutexLock lock(mu_);
    if (missing_[i] == missing) return;
    missing_[i] = missing;
  }
  const std::string& folder = folders_[i]->folder();
  if (missing) {
    util::Log(util::Area::kImap)
        .error(
            "imap.folder_unavailable account={} folder={} cause=\"{}\" note=\"the server refuses this watched folder "
            "(deleted or renamed?); its other folders go on, and it is tried again at each poll and resync\"",
            account_.name, folder, cause);
  } else {
    util::Log(util::Area::kImap).info("imap.folder_available account={} folder={}", account_.name, folder);
  }
}

void AccountWatcher::DecideWatches(const imap::Mailbox& first) {
  decided_ = true;
  spdlog::logger* log = &util::Log(util::Area::kImap);
  const bool notify = account_.notify == config::NotifyMode::kAuto && first.HasCapability("NOTIFY");
  std::vector<FolderWatch> plan;
  if (notify) {
    plan.assign(folders_.size(), FolderWatch::kNotify);
  } else {
    // Without IDLE a connection per folder would only wait: poll them all.
    const int budget = first.HasCapability("IDLE") ? account_.max_connections - 1 : 0;
    plan = PlanIdleWatches(account_, budget);
  }
  int idle = 0, polled = 0;
  for (size_t i = 0; i < plan.size(); ++i) {
    watch_[i] = plan[i];
    folders_[i]->metrics().polled.Set(plan[i] == FolderWatch::kPoll ? 1 : 0);
    if (plan[i] == FolderWatch::kPoll) folders_[i]->set_watched(true);  // by the worker
    idle += plan[i] == FolderWatch::kIdle;
    polled += plan[i] == FolderWatch::kPoll;
  }
  log->info("imap.watch account={} mode={} folders={} idle_connections={} polled={} max_connections={}", account_.name,
            notify ? "notify" : "idle", folders_.size(), idle, polled, account_.max_connections);
  for (size_t i = 0; i < plan.size(); ++i) {
    if (plan[i] != FolderWatch::kPoll) continue;
    log->info(
        "imap.folder_polled account={} folder={} interval_s={} note=\"beyond max_connections without NOTIFY: "
        "checked with STATUS\"",
        account_.name, folders_[i]->folder(),
        std::chrono::duration_cast<std::chrono::seconds>(account_.poll_interval).count());
  }
  if (notify) {
    std::vector<size_t> all(folders_.size());
    for (size_t i = 0; i < all.size(); ++i) all[i] = i;
    watch_threads_.emplace_back([this, all] {
      RunWithBackoff(
          "notify", [this] { return NotifySession(); }, [this, all](const util::Status& s) { WatchLost(all, s); });
    });
    return;
  }
  for (size_t i = 0; i < plan.size(); ++i) {
    if (plan[i] != FolderWatch::kIdle) continue;
    watch_threads_.emplace_back([this, i] {
      RunWithBackoff(
          "idle:" + folders_[i]->folder(), [this, i] { return IdleSession(i); },
          [this, i](const util::Status& s) { WatchLost({i}, s); });
    });
  }
}

void AccountWatcher::WatchLost(const std::vector<size_t>& watched, const util::Status& why) {
  // Nothing reports these folders' changes until the watch is back: /readyz
  // says so, and the worker syncs them now, which also finds out whether
  // the server itself went away (then the worker reconnects too).
  for (size_t i : watched) {
    folders_[i]->set_watched(false);
    ConnectionLost(*folders_[i], why);
    RequireSelect(i);
    MarkChanged(i);
  }
}

void AccountWatcher::ConnectionLost(FolderWatcher& folder, const util::Status& why) {
  // A crash stays visible as such until the next sync.
  if (folder.state() != WatchState::kCrashed) {
    folder.set_state(!why.ok() && why.error().NeedsOperator() ? WatchState::kNeedsOperator : WatchState::kBackoff);
  }
  folder.metrics().imap_connected.Set(0);
  folder.metrics().imap_reconnects.Inc();
}

util::Status AccountWatcher::NotifySession() {
  auto conn = Open();
  if (!conn.ok()) return conn.error();
  imap::Mailbox& session = ***conn;
  if (auto s = session.NotifySet(account_.folders); !s.ok()) return s;
  for (auto& f : folders_) f->set_watched(true);
  MarkAllChanged();  // what came while this connection was down
  std::vector<imap::FolderEvent> events;
  while (!stop_.fired()) {
    events.clear();
    util::Log(util::Area::kImap).debug("imap.idle account={} mode=notify folders={}", account_.name, folders_.size());
    // Each wait ends with DONE: a round trip that proves the session alive.
    auto wake = session.IdleForEvents(LivenessWait(), -1, events);
    if (!wake.ok()) return LivenessChecked(wake.error(), "notify");
    for (const imap::FolderEvent& e : events) OnFolderEvent(e);
    if (*wake == imap::IdleWake::kStopped) break;
  }
  return util::Ok();
}

void AccountWatcher::OnFolderEvent(const imap::FolderEvent& event) {
  const std::optional<size_t> i = IndexOf(event.folder);
  if (event.kind == imap::FolderEvent::Kind::kChanged) {
    if (i) MarkChanged(*i);
    return;
  }
  const bool created = event.kind == imap::FolderEvent::Kind::kCreated;
  (created ? metrics_.folder_created : metrics_.folder_deleted).Inc();
  util::Log(util::Area::kImap)
      .log(i ? spdlog::level::warn : spdlog::level::info, "imap.folder_{} account={} folder={} watched={}",
           created ? "created" : "deleted", account_.name, event.folder, i ? "yes" : "no");
  if (!i) return;
  // A watched folder that comes back is synced (a new UIDVALIDITY re-baselines
  // it); one that went is marked so /readyz names it.
  RequireSelect(*i);  // a folder by that name, if any, is another one now
  if (created) {
    MarkChanged(*i);
  } else {
    folders_[*i]->set_state(WatchState::kNeedsOperator);
    ReportMissing(*i, true, "the server reported the folder deleted");
  }
}

util::Status AccountWatcher::IdleSession(size_t i) {
  auto conn = Open();
  if (!conn.ok()) return conn.error();
  imap::Mailbox& session = ***conn;
  auto info = session.Select(folders_[i]->folder());
  if (!info.ok()) return info.error();
  folders_[i]->set_watched(true);
  MarkChanged(i);  // what came while this connection was down
  auto next_refresh = SteadyClock::now() + account_.idle_refresh;
  while (!stop_.fired()) {
    util::Log(util::Area::kImap).debug("imap.idle account={} folder={}", account_.name, folders_[i]->folder());
    // Each wait ends with DONE: a round trip that proves the session alive.
    auto wake = session.Idle(LivenessWait());
    if (!wake.ok()) return LivenessChecked(wake.error(), "idle:" + folders_[i]->folder());
    bool mark = *wake == imap::IdleWake::kActivity;
    if (*wake == imap::IdleWake::kTimeout && SteadyClock::now() >= next_refresh) {
      // Once per idle_refresh a timeout too (belt and braces: Session::Idle
      // reports an EXISTS that came with DONE's answer). Not at each
      // liveness round trip: that would sync the folder every minute.
      mark = true;
      next_refresh = SteadyClock::now() + account_.idle_refresh;
    }
    if (mark) MarkChanged(i);
    if (*wake == imap::IdleWake::kStopped) break;
  }
  return util::Ok();
}

milliseconds AccountWatcher::LivenessWait() const {
  const milliseconds refresh = std::chrono::duration_cast<milliseconds>(account_.idle_refresh);
  const milliseconds interval = std::chrono::duration_cast<milliseconds>(account_.liveness_interval);
  return interval.count() > 0 ? std::min(refresh, interval) : refresh;
}

util::Status AccountWatcher::LivenessChecked(const util::Error& e, const std::string& role) const {
  // Only a round trip that went unanswered (timed out, or the connection
  // dropped meanwhile), not a refusal.
  const bool round_trip = e.code() == "imap.idle" || e.code() == "imap.idle_done" || e.code() == "imap.noop";
  if (stop_.fired() || !round_trip || !e.message().ends_with("connection lost or timed out")) return e;
  const auto deadline_s = std::chrono::duration_cast<std::chrono::seconds>(config::LivenessDeadline(account_)).count();
  util::Log(util::Area::kImap)
      .warn(
          "imap.liveness_failed account={} connection={} deadline_s={} cause=\"{}\" note=\"no answer to {} in time "
          "(or the connection dropped): the session is black-holed (a proxy or NAT stopped forwarding) or the server "
          "hung; it is replaced and its folders synced\"",
          account_.name, role, deadline_s, e.message(), e.code() == "imap.noop" ? "NOOP" : "DONE/IDLE");
  return e.WithMessage("liveness round trip failed (no answer within " + std::to_string(deadline_s) +
                       " s): " + e.message());
}

}  // namespace mailhook::daemon
