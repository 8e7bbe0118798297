#include "daemon/folder_watcher.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <utility>

#include "daemon/router.h"
#include "daemon/session_work.h"
#include "store/store.h"
#include "util/log.h"

namespace mailhook::daemon {
namespace {

const char* kStateNames[] = {"starting", "connecting",     "catching_up", "idling",
                             "backoff",  "needs_operator", "stopped",     "crashed"};

}  // namespace

const char* WatchStateName(WatchState s) { return kStateNames[static_cast<int>(s)]; }

FolderWatcher::FolderWatcher(const config::Config& config, const config::Account& account, std::string folder,
                             const StopSignal& stop, std::function<void()> on_committed,
                             const util::MetricsCatalog& metrics)
    : config_(config),
      account_(account),
      folder_(std::move(folder)),
      stop_(stop),
      on_committed_(std::move(on_committed)),
      metrics_(metrics.ForFolder(account_.name, folder_)) {
  UpdateExtractOptions();
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

void FolderWatcher::set_routes(const RouteTable* routes) {
  routes_ = routes;
  UpdateExtractOptions();
}

std::vector<Route> FolderWatcher::Routes(const mime::MessageContent* content) const {
  return routes_ ? routes_->RoutesFor(account_.name, folder_, content)
                 : RoutesFor(config_, account_.name, folder_, content);
}

void FolderWatcher::UpdateExtractOptions() {
  // Fetch attachment content only when some target wants it, up to the
  // largest limit; the routes that decide it depend on the folder only.
  extract_options_.fetch_content = false;
  extract_options_.max_content_bytes = 0;
  for (const Route& r : Routes(nullptr)) {
    if (r.attachments != config::AttachmentMode::kContent) continue;
    extract_options_.fetch_content = true;
    extract_options_.max_content_bytes = std::max(extract_options_.max_content_bytes, r.max_attachment_bytes);
  }
}

util::Status FolderWatcher::Sync(imap::Mailbox& session, store::Store& store, bool still_selected) {
  try {
    return SyncUnguarded(session, store, still_selected);
  } catch (const std::exception& e) {
    // A bug or an input no one foresaw: the session is thrown away as for
    // any error, and the account watcher lives on. /readyz shows the state
    // until the next session is up.
    state_ = WatchState::kCrashed;
    util::Log(util::Area::kImap)
        .critical("imap.session_crashed account={} folder={} cause=\"{}\"", account_.name, folder_, e.what());
    metrics_.watcher_crashes.Inc();
    return util::Error("daemon.exception", util::RetryClass::kBackoff, std::string("the session crashed: ") + e.what());
  }
}

util::Status FolderWatcher::SyncUnguarded(imap::Mailbox& session, store::Store& store, bool still_selected) {
  if (routes_) UpdateExtractOptions();  // a reload may have added a target that wants content
  if (still_selected && selected_info_) {
    // Dovecot runs a command on its view of the mailbox as of the end of the
    // previous command: a UID SEARCH alone would miss what came since, and
    // report it only afterwards (verified on 2.3.19: SEARCH empty, then
    // `* 1 EXISTS`). NOOP brings the view up to date first.
    if (auto s = session.Noop(); !s.ok()) return s;
  } else {
    selected_info_.reset();
    auto info = session.Select(folder_);
    if (!info.ok()) return info.error();
    util::Log(util::Area::kImap)
        .log(synced_once_ ? spdlog::level::debug : spdlog::level::info,
             "imap.connected account={} folder={} uidvalidity={} uidnext={} exists={}", account_.name, folder_,
             info->uidvalidity, info->uidnext, info->exists);
    selected_info_ = *info;
  }
  // Only now: /readyz counts catching_up as ready, and a message appended
  // once it says so must come after the baseline the SELECT just fixed (with
  // start_from: new, one appended before the SELECT's answer is skipped).
  if (state_ != WatchState::kIdling) state_ = WatchState::kCatchingUp;
  // Still selected: the last SELECT's UIDNEXT is only a floor, which is all
  // SessionWork needs of it (search windows below it; a first start always
  // SELECTs).
  SessionWork work(*this, session, store, *selected_info_);
  if (auto s = work.Start(); !s.ok()) return s;
  if (auto s = work.CatchUp(); !s.ok()) return s;
  if (auto s = work.CoverHandled(); !s.ok()) return s;
  synced_once_ = true;
  // A cover not finished counts as new: the folder is looked at again soon
  // for its next window.
  last_sync_found_new_ = work.found_new() || work.cover_left();
  metrics_.imap_connected.Set(1);
  state_ = WatchState::kIdling;
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
