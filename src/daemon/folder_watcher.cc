#include "daemon/folder_watcher.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <thread>
#include <utility>

#include "daemon/backoff.h"
#include "daemon/router.h"
#include "daemon/session_work.h"
#include "imap/session.h"
#include "store/store.h"
#include "util/log.h"

namespace mailhook::daemon {
namespace {

using std::chrono::milliseconds;

const char* kStateNames[] = {"starting", "connecting",     "catching_up", "idling",
                             "backoff",  "needs_operator", "stopped",     "crashed"};

}  // namespace

const char* WatchStateName(WatchState s) { return kStateNames[static_cast<int>(s)]; }

FolderWatcher::FolderWatcher(const config::Config& config, const config::Account& account, std::string folder,
                             const StopSignal& stop, std::function<void()> on_committed,
                             const util::MetricsCatalog& metrics, WatcherSeams seams)
    : config_(config),
      account_(account),
      folder_(std::move(folder)),
      stop_(stop),
      on_committed_(std::move(on_committed)),
      metrics_(metrics.ForFolder(account_.name, folder_)),
      open_mailbox_(std::move(seams.open_mailbox)),
      clock_(seams.clock ? *seams.clock : util::Clock::Real()) {
  if (!open_mailbox_) {
    open_mailbox_ = [](const imap::SessionOptions& options) -> util::Result<std::unique_ptr<imap::Mailbox>> {
      auto session = imap::Session::Open(options);
      if (!session.ok()) return session.error();
      return std::unique_ptr<imap::Mailbox>(std::move(*session));
    };
  }
  // Fetch attachment content only when some target wants it, up to the
  // largest limit; the routes that decide it depend on the folder only.
  extract_options_.max_content_bytes = 0;
  for (const Route& r : RoutesFor(config_, account_.name, folder_, nullptr)) {
    if (r.attachments != config::AttachmentMode::kContent) continue;
    extract_options_.fetch_content = true;
    extract_options_.max_content_bytes = std::max(extract_options_.max_content_bytes, r.max_attachment_bytes);
  }
  extract_options_.max_parts = account_.limits.max_parts;
  extract_options_.max_text_bytes = account_.limits.max_text_bytes;
  if (const char* f = std::getenv("MAILHOOK_TEST_FAULT_SUBJECT"); f && *f) {
    fault_subject_ = f;
    const char* a = std::getenv("MAILHOOK_TEST_FAULT_ACTION");
    fault_action_ = a && *a ? a : "throw";
  }
  if (const char* n = std::getenv("MAILHOOK_TEST_FAULT_FIRST_PASS_COMMITS"); n && *n) {
    fault_first_pass_commits_ = std::atoi(n);
    const char* a = std::getenv("MAILHOOK_TEST_FAULT_ACTION");
    fault_action_ = a && *a ? a : "throw";
  }
}

FolderWatcher::~FolderWatcher() { Join(); }

void FolderWatcher::Start() {
  thread_ = std::thread([this] { Run(); });
}

void FolderWatcher::Join() {
  if (thread_.joinable()) thread_.join();
}

void FolderWatcher::Run() {
  // No exception ends the thread: a folder that is not watched misses mail.
  while (!stop_.fired()) {
    try {
      RunSessions();
    } catch (const std::exception& e) {
      state_ = WatchState::kCrashed;
      util::Log(util::Area::kImap)
          .critical("imap.watcher_crashed account={} folder={} cause=\"{}\" note=\"restarting in 5s\"", account_.name,
                    folder_, e.what());
      metrics_.watcher_crashes.Inc();
      clock_.WaitFd(stop_.fd(), std::chrono::seconds(5));
    }
  }
  state_ = WatchState::kStopped;
}

void FolderWatcher::RunSessions() {
  spdlog::logger* log = &util::Log(util::Area::kImap);
  {
    Backoff backoff(milliseconds(1000), milliseconds(5 * 60 * 1000));
    // Operator-fixable failures (bad password, untrusted certificate, missing
    // folder) are retried slowly, never in a hot loop, and logged once.
    Backoff slow(milliseconds(60 * 1000), milliseconds(30 * 60 * 1000));
    std::string last_operator_error;

    auto store = store::Store::Open(config_.state_dir);
    while (!store.ok() && !stop_.fired()) {
      log->error("store.open_failed account={} folder={} cause=\"{}\"", account_.name, folder_,
                 store.error().message());
      state_ = WatchState::kBackoff;
      clock_.WaitFd(stop_.fd(), backoff.Next());
      store = store::Store::Open(config_.state_dir);
    }

    while (!stop_.fired()) {
      state_ = WatchState::kConnecting;
      reached_idle_ = false;
      util::Status s = RunSessionGuarded(**store);
      // A session that got as far as IDLE was healthy: start the backoff over.
      if (reached_idle_) backoff.Reset();
      metrics_.imap_connected.Set(0);
      if (stop_.fired()) break;
      milliseconds delay;
      if (!s.ok() && s.error().NeedsOperator()) {
        state_ = WatchState::kNeedsOperator;
        delay = slow.Next();
        if (s.error().message() != last_operator_error) {
          log->error("imap.needs_operator account={} folder={} retry_in_ms={} cause=\"{}\"", account_.name, folder_,
                     delay.count(), s.error().message());
          last_operator_error = s.error().message();
        } else {
          log->debug("imap.needs_operator account={} folder={} retry_in_ms={} (same error as before)", account_.name,
                     folder_, delay.count());
        }
      } else {
        if (state_ != WatchState::kCrashed) state_ = WatchState::kBackoff;
        slow.Reset();
        last_operator_error.clear();
        delay = backoff.Next();
        // The store failing (disk full, read-only) heals only when someone
        // frees space: say so at error level, but keep retrying quickly.
        const bool store_trouble = !s.ok() && s.error().IsStore();
        log->log(store_trouble ? spdlog::level::err : spdlog::level::warn,
                 "imap.reconnect account={} folder={} attempt={} delay_ms={} cause=\"{}\"", account_.name, folder_,
                 backoff.attempts(), delay.count(), s.ok() ? "session ended" : s.error().message());
      }
      metrics_.imap_reconnects.Inc();
      clock_.WaitFd(stop_.fd(), delay);
    }
  }
}

util::Status FolderWatcher::RunSessionGuarded(store::Store& store) {
  try {
    return RunSession(store);
  } catch (const std::exception& e) {
    // A bug or an input no one foresaw: the session is thrown away as for
    // any error, and the thread lives on. /readyz shows the state until the
    // next session is up.
    state_ = WatchState::kCrashed;
    util::Log(util::Area::kImap)
        .critical("imap.session_crashed account={} folder={} cause=\"{}\"", account_.name, folder_, e.what());
    metrics_.watcher_crashes.Inc();
    return util::Error("daemon.exception", util::RetryClass::kBackoff, std::string("the session crashed: ") + e.what());
  }
}

util::Status FolderWatcher::RunSession(store::Store& store) {
  // Resolved before each login: OAuth2 access tokens expire within the hour,
  // and a password file may have been rotated.
  auto password = account_.password.Resolve();
  if (!password.ok()) {
    return util::Error("imap.password_command", util::RetryClass::kBackoff, password.error().message());
  }
  imap::SessionOptions options = imap::SessionOptions::FromAccount(account_, std::move(*password), stop_.fd());
  auto opened = open_mailbox_(options);
  if (!opened.ok()) return opened.error();
  std::unique_ptr<imap::Mailbox> session = std::move(*opened);
  auto info = session->Select(folder_);
  if (!info.ok()) return info.error();
  util::Log(util::Area::kImap)
      .info("imap.connected account={} folder={} uidvalidity={} uidnext={} exists={}", account_.name, folder_,
            info->uidvalidity, info->uidnext, info->exists);
  metrics_.imap_connected.Set(1);

  SessionWork work(*this, *session, store, *info);
  if (auto s = work.Start(); !s.ok()) return s;
  if (auto s = work.Loop(); !s.ok()) return s;
  session->Logout();
  util::Log(util::Area::kImap).info("imap.logout account={} folder={}", account_.name, folder_);
  return util::Ok();
}

bool FolderWatcher::HasPostActions() const {
  const config::OnDelivered& od = account_.on_delivered;
  return od.mark_seen || od.move_to.has_value() || !od.add_flags.empty();
}

util::Status FolderWatcher::ApplyPostActions(imap::Mailbox& session, store::Store& store, uint32_t uidvalidity) {
  spdlog::logger* log = &util::Log(util::Area::kImap);
  const config::OnDelivered& od = account_.on_delivered;
  std::vector<std::string> flags = od.add_flags;
  if (od.mark_seen) flags.push_back("\\Seen");
  for (;;) {
    auto ready = store.post_actions().Ready(account_.name, folder_, 50);
    if (!ready.ok()) return ready.error();
    if (ready->empty()) return util::Ok();
    for (const store::PostAction& p : *ready) {
      if (p.uidvalidity != uidvalidity) {
        log->warn("post_action.stale account={} folder={} uid={} note=\"folder was recreated; skipped\"", account_.name,
                  folder_, p.uid);
      } else {
        util::Status s = session.AddFlags(p.uid, flags);
        if (s.ok() && od.move_to) s = session.Move(p.uid, *od.move_to);
        if (!s.ok()) {
          // A broken session is retried after reconnecting (the row stays);
          // a refusal (missing folder...) would fail forever: report, give up.
          if (!s.error().NeedsOperator()) return s;
          log->error("post_action.failed account={} folder={} uid={} event={} cause=\"{}\"", account_.name, folder_,
                     p.uid, p.event_id, s.error().message());
        } else {
          log->info("post_action.done account={} folder={} uid={} event={} seen={} flags={} moved_to={}", account_.name,
                    folder_, p.uid, p.event_id, od.mark_seen, od.add_flags.size(), od.move_to.value_or("-"));
        }
      }
      if (auto s = store.post_actions().Finish(p.event_id); !s.ok()) return s;
    }
  }
}

}  // namespace mailhook::daemon
