#include "daemon/folder_watcher.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <ctime>

#include "config/secret_source.h"
#include "daemon/backoff.h"
#include "daemon/router.h"
#include "imap/session.h"
#include "mime/event.h"
#include "mime/extractor.h"
#include "store/store.h"
#include "util/log.h"
#include "util/metrics.h"

namespace mailhook::daemon {
namespace {

using std::chrono::milliseconds;

constexpr size_t kFetchBatch = 25;  // messages per UID FETCH and per transaction
constexpr size_t kCommitBytes = 8 << 20;  // ... or fewer, once their payloads reach this

const char* kStateNames[] = {"starting", "connecting", "catching_up", "idling",
                             "backoff",  "needs_operator", "stopped"};


/// Reads sections of one message over the watcher's session.
class ImapSectionSource : public mime::SectionSource {
 public:
  ImapSectionSource(imap::Session& session, uint32_t uid) : session_(session), uid_(uid) {}
  util::Result<std::string> Body(const std::string& section) override {
    return session_.FetchSection(uid_, section);
  }
  util::Result<std::string> RawBody(const std::string& section) override {
    util::Result<std::optional<std::string>> binary = session_.FetchBinary(uid_, section);
    if (!binary.ok()) return binary.error();
    if (binary->has_value()) return std::move(**binary);
    return session_.FetchSection(uid_, section);
  }
  util::Status StreamBody(const std::string& section,
                          const std::function<util::Status(std::string_view)>& sink) override {
    // Piece by piece (BODY.PEEK[section]<offset.length>): a 50 MiB attachment
    // costs one piece of memory here and in libetpan, not the whole body.
    constexpr uint32_t kPiece = 1 << 20;
    for (uint64_t offset = 0;; offset += kPiece) {
      if (offset > UINT32_MAX - kPiece) {
        return util::Error("imap.too_large", util::RetryClass::kNeedsOperator,
                           "part " + section + " of UID " + std::to_string(uid_) +
                               " is over 4 GiB; mailhook cannot read it (remove the message from the folder)");
      }
      util::Result<std::string> piece = session_.FetchSectionPart(uid_, section, static_cast<uint32_t>(offset), kPiece);
      if (!piece.ok()) return piece.error();
      if (!piece->empty()) {
        if (util::Status s = sink(*piece); !s.ok()) return s;
      }
      if (piece->size() < kPiece) return util::Ok();
    }
  }
  util::Result<std::string> MimeHeaders(const std::string& section) override {
    return session_.FetchMimeHeaders(uid_, section);
  }
  util::Result<std::optional<uint64_t>> DecodedSize(const std::string& section) override {
    return session_.FetchBinarySize(uid_, section);
  }

 private:
  imap::Session& session_;
  uint32_t uid_;
};

}  // namespace

const char* WatchStateName(WatchState s) { return kStateNames[static_cast<int>(s)]; }

FolderWatcher::FolderWatcher(const config::Config& config, const config::Account& account,
                             std::string folder, const StopSignal& stop, std::function<void()> on_committed)
    : config_(config),
      account_(account),
      folder_(std::move(folder)),
      stop_(stop),
      on_committed_(std::move(on_committed)) {}

FolderWatcher::~FolderWatcher() { Join(); }

void FolderWatcher::Start() { thread_ = std::thread([this] { Run(); }); }

void FolderWatcher::Join() {
  if (thread_.joinable()) thread_.join();
}

void FolderWatcher::Run() {
  auto log = util::Logger("imap");
  const util::Labels labels{{"account", account_.name}, {"folder", folder_}};
  try {
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
      stop_.WaitFor(backoff.Next());
      store = store::Store::Open(config_.state_dir);
    }

    while (!stop_.fired()) {
      state_ = WatchState::kConnecting;
      reached_idle_ = false;
      util::Status s = RunSession(**store);
      // A session that got as far as IDLE was healthy: start the backoff over.
      if (reached_idle_) backoff.Reset();
      util::Metrics::Global().Set("mailhook_imap_connected", labels, 0);
      if (stop_.fired()) break;
      milliseconds delay;
      if (!s.ok() && s.error().NeedsOperator()) {
        state_ = WatchState::kNeedsOperator;
        delay = slow.Next();
        if (s.error().message() != last_operator_error) {
          log->error("imap.needs_operator account={} folder={} retry_in_ms={} cause=\"{}\"", account_.name,
                     folder_, delay.count(), s.error().message());
          last_operator_error = s.error().message();
        } else {
          log->debug("imap.needs_operator account={} folder={} retry_in_ms={} (same error as before)",
                     account_.name, folder_, delay.count());
        }
      } else {
        state_ = WatchState::kBackoff;
        slow.Reset();
        last_operator_error.clear();
        delay = backoff.Next();
        // The store failing (disk full, read-only) heals only when someone
        // frees space: say so at error level, but keep retrying quickly.
        const bool store_trouble = !s.ok() && s.error().code().rfind("store", 0) == 0;
        log->log(store_trouble ? spdlog::level::err : spdlog::level::warn,
                 "imap.reconnect account={} folder={} attempt={} delay_ms={} cause=\"{}\"", account_.name, folder_,
                 backoff.attempts(), delay.count(), s.ok() ? "session ended" : s.error().message());
      }
      util::Metrics::Global().Inc("mailhook_imap_reconnects_total", labels);
      stop_.WaitFor(delay);
    }
  } catch (const std::exception& e) {
    log->critical("imap.watcher_crashed account={} folder={} cause=\"{}\"", account_.name, folder_, e.what());
  }
  state_ = WatchState::kStopped;
}

util::Status FolderWatcher::RunSession(store::Store& store) {
  auto log = util::Logger("imap");
  auto& metrics = util::Metrics::Global();
  const util::Labels labels{{"account", account_.name}, {"folder", folder_}};

  imap::SessionOptions options = imap::SessionOptions::FromAccount(account_, stop_.fd());
  if (!account_.password_command.empty()) {
    // OAuth2 access tokens expire within the hour: ask again before each login.
    auto fresh = config::RunSecretCommand(account_.password_command);
    if (!fresh.ok()) {
      return util::Error("imap.password_command", util::RetryClass::kBackoff, fresh.error().message());
    }
    options.password = std::move(*fresh);
  }
  auto opened = imap::Session::Open(options);
  if (!opened.ok()) return opened.error();
  std::unique_ptr<imap::Session> session = std::move(*opened);
  auto info = session->Select(folder_);
  if (!info.ok()) return info.error();
  log->info("imap.connected account={} folder={} uidvalidity={} uidnext={} exists={}", account_.name, folder_,
            info->uidvalidity, info->uidnext, info->exists);
  metrics.Set("mailhook_imap_connected", labels, 1);

  auto mark = store.GetWatermark(account_.name, folder_);
  if (!mark.ok()) return mark.error();
  store::Watermark wm{info->uidvalidity, 0};
  bool baseline = false;
  if (!mark->has_value()) {
    baseline = true;
  } else if ((*mark)->uidvalidity != info->uidvalidity) {
    // RFC 3501 §2.3.1.1: every old UID is void. Replaying the whole folder
    // would flood the targets, so re-baseline like a first start.
    log->error("imap.uidvalidity_changed account={} folder={} old={} new={} note=\"folder was recreated; "
               "starting from its current end\"",
               account_.name, folder_, (*mark)->uidvalidity, info->uidvalidity);
    baseline = true;
  } else {
    wm = **mark;
  }

  std::vector<uint32_t> initial;  // messages to process before the watermark moves past them
  if (baseline) {
    uint32_t end = info->uidnext > 0 ? info->uidnext - 1 : 0;
    if (info->uidnext == 0) {
      auto all = session->SearchUidsFrom(1);
      if (!all.ok()) return all.error();
      if (!all->empty()) end = all->back();
    }
    if (account_.start_from == config::StartFrom::kAll) {
      end = 0;
    } else if (account_.start_from == config::StartFrom::kUnseen) {
      auto unseen = session->SearchUnseen();
      if (!unseen.ok()) return unseen.error();
      initial = *unseen;
    }
    log->info("imap.baseline account={} folder={} start_from={} last_uid={} unseen={}", account_.name, folder_,
              account_.start_from == config::StartFrom::kAll     ? "all"
              : account_.start_from == config::StartFrom::kUnseen ? "unseen"
                                                                  : "new",
              end, initial.size());
    wm = store::Watermark{info->uidvalidity, 0};
    // Unseen messages up to the end are processed first; the baseline is
    // stored after them (those above it are new and come with the catch-up).
    initial.erase(std::remove_if(initial.begin(), initial.end(), [end](uint32_t u) { return u > end; }),
                  initial.end());
    wm.last_uid = end;  // with `initial`: applied once all of it is committed
    if (initial.empty()) {
      if (auto s = store.SetWatermark(account_.name, folder_, wm); !s.ok()) return s.error();
    }
  }

  // Fetch attachment content only when some target wants it, up to the largest
  // limit; the routes that decide it depend on the folder only.
  mime::ExtractOptions extract_options;
  extract_options.max_content_bytes = 0;
  for (const Route& r : RoutesFor(config_, account_.name, folder_, nullptr)) {
    if (r.attachments != config::AttachmentMode::kContent) continue;
    extract_options.fetch_content = true;
    extract_options.max_content_bytes = std::max(extract_options.max_content_bytes, r.max_attachment_bytes);
  }

  // Turns a list of UIDs into events, committing each batch with the new
  // watermark. `first_pass`: the unseen messages of a first start, which are
  // not contiguous: the watermark stays unset until all are committed, so a
  // crash midway starts the pass again (committed ones are deduplicated by
  // the store) instead of resuming above the last one and sending the read
  // messages between them.
  auto process = [&](const std::vector<uint32_t>& uids, uint32_t final_mark, bool first_pass) -> util::Status {
    for (size_t i = 0; i < uids.size(); i += kFetchBatch) {
      std::vector<uint32_t> batch(uids.begin() + static_cast<long>(i),
                                  uids.begin() + static_cast<long>(std::min(uids.size(), i + kFetchBatch)));
      auto metas = session->FetchMeta(batch);
      if (!metas.ok()) return metas.error();
      std::vector<store::OutboxItem> items;
      std::vector<store::PostAction> post_actions;
      size_t pending_bytes = 0;
      // Commits what is gathered with the watermark at `up_to`: every UID of
      // the batch up to it has its events in `items`.
      auto commit = [&](uint32_t up_to, bool last) -> util::Status {
        store::Watermark next{info->uidvalidity, std::max(wm.last_uid, up_to)};
        std::optional<store::Watermark> mark_to_write;
        if (!first_pass || last) mark_to_write = next;
        if (auto s = store.CommitMessages(account_.name, folder_, mark_to_write, items, post_actions); !s.ok())
          return s.error();
        if (mark_to_write) wm = next;
        // Free the events (and their attachment contents) before the
        // dispatcher is woken to read them back.
        const bool committed_events = !items.empty();
        items.clear();
        post_actions.clear();
        pending_bytes = 0;
        if (committed_events && on_committed_) on_committed_();
        return util::Ok();
      };
      // Turns one message into its events (one per matching target) in
      // `items`. The extracted content ends with this call; attachment
      // contents live on in the items' pieces until they are committed.
      auto gather = [&](const imap::MessageMeta& meta) -> util::Status {
        ImapSectionSource source(*session, meta.uid);
        auto content = mime::Extract(meta.header, meta.structure, source, extract_options);
        if (!content.ok()) {
          if (content.error().retry() == util::RetryClass::kRetryNow) {
            log->warn("imap.message_vanished account={} folder={} uid={}", account_.name, folder_, meta.uid);
            return util::Ok();
          }
          return content.error();
        }
        mime::EventMeta em{account_.name, folder_, info->uidvalidity, meta.uid, meta.flags, meta.size,
                           mime::NowRfc3339()};
        std::string event_id = mime::EventId(account_.name, folder_, info->uidvalidity, meta.uid);
        size_t before = items.size();
        for (const Route& r : RoutesFor(config_, account_.name, folder_, &*content)) {
          // Pieces: the attachment contents are shared by every target's
          // event and written to the store as they are, never joined here.
          store::OutboxItem item{event_id, r.target, account_.name, folder_, info->uidvalidity, meta.uid, {}, {}};
          item.pieces = mime::EventPieces(em, *content, r.attachments, r.max_attachment_bytes);
          for (const auto& piece : item.pieces) pending_bytes += piece->size();
          items.push_back(std::move(item));
        }
        // Only a message that went somewhere is marked or moved afterwards.
        if (HasPostActions() && items.size() > before) {
          post_actions.push_back(store::PostAction{event_id, account_.name, folder_, info->uidvalidity, meta.uid});
        }
        metrics.Inc("mailhook_messages_total", labels);
        log->debug("imap.message account={} folder={} uid={} event={} targets={}", account_.name, folder_,
                   meta.uid, event_id, items.size() - before);
        return util::Ok();
      };
      for (const imap::MessageMeta& meta : *metas) {
        if (auto s = gather(meta); !s.ok()) return s;
        // Events with large attachment contents are committed early, so a
        // batch never holds more than about one large event at a time.
        if (pending_bytes >= kCommitBytes) {
          if (auto s = commit(meta.uid, false); !s.ok()) return s;
        }
      }
      bool last_batch = i + kFetchBatch >= uids.size();
      if (auto s = commit(last_batch ? std::max(final_mark, batch.back()) : batch.back(), last_batch); !s.ok())
        return s;
    }
    return util::Ok();
  };

  if (baseline && !initial.empty()) {
    state_ = WatchState::kCatchingUp;
    uint32_t end = wm.last_uid;
    wm.last_uid = 0;
    if (auto s = process(initial, end, true); !s.ok()) return s;
  }

  const milliseconds refresh = account_.idle_refresh;
  while (!stop_.fired()) {
    state_ = WatchState::kCatchingUp;
    // Always resync by UID: EXISTS counts are not trusted (DESIGN.md, libetpan 1.9.4 IDLE bug).
    auto uids = session->SearchUidsFrom(wm.last_uid + 1);
    if (!uids.ok()) return uids.error();
    if (!uids->empty()) {
      log->debug("imap.catch_up account={} folder={} from_uid={} count={}", account_.name, folder_,
                 wm.last_uid + 1, uids->size());
      if (auto s = process(*uids, 0, false); !s.ok()) return s;
    }
    if (HasPostActions()) {
      wake_.Clear();  // before reading the store: a Wake() after this is not lost
      if (auto s = ApplyPostActions(*session, store, info->uidvalidity); !s.ok()) return s;
    }
    state_ = WatchState::kIdling;
    reached_idle_ = true;
    auto wake = session->Idle(refresh, HasPostActions() ? wake_.fd() : -1);
    if (!wake.ok()) return wake.error();
    if (*wake == imap::IdleWake::kStopped) break;
  }
  session->Logout();
  log->info("imap.logout account={} folder={}", account_.name, folder_);
  return util::Ok();
}

bool FolderWatcher::HasPostActions() const {
  const config::OnDelivered& od = account_.on_delivered;
  return od.mark_seen || od.move_to.has_value() || !od.add_flags.empty();
}

util::Status FolderWatcher::ApplyPostActions(imap::Session& session, store::Store& store,
                                             uint32_t uidvalidity) {
  auto log = util::Logger("imap");
  const config::OnDelivered& od = account_.on_delivered;
  std::vector<std::string> flags = od.add_flags;
  if (od.mark_seen) flags.push_back("\\Seen");
  for (;;) {
    auto ready = store.ReadyPostActions(account_.name, folder_, 50);
    if (!ready.ok()) return ready.error();
    if (ready->empty()) return util::Ok();
    for (const store::PostAction& p : *ready) {
      if (p.uidvalidity != uidvalidity) {
        log->warn("post_action.stale account={} folder={} uid={} note=\"folder was recreated; skipped\"",
                  account_.name, folder_, p.uid);
      } else {
        util::Status s = session.AddFlags(p.uid, flags);
        if (s.ok() && od.move_to) s = session.Move(p.uid, *od.move_to);
        if (!s.ok()) {
          // A broken session is retried after reconnecting (the row stays);
          // a refusal (missing folder...) would fail forever: report, give up.
          if (!s.error().NeedsOperator()) return s;
          log->error("post_action.failed account={} folder={} uid={} event={} cause=\"{}\"", account_.name,
                     folder_, p.uid, p.event_id, s.error().message());
        } else {
          log->info("post_action.done account={} folder={} uid={} event={} seen={} flags={} moved_to={}",
                    account_.name, folder_, p.uid, p.event_id, od.mark_seen, od.add_flags.size(),
                    od.move_to.value_or("-"));
        }
      }
      if (auto s = store.FinishPostAction(p.event_id); !s.ok()) return s;
    }
  }
}

}  // namespace mailhook::daemon
