#include "daemon/folder_watcher.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <ctime>
#include <map>
#include <stdexcept>
#include <thread>

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
// UIDs per SEARCH window: an answer of ~800 KB, well inside a response's budget.
constexpr uint32_t kSearchWindow = 100000;

const char* kStateNames[] = {"starting", "connecting",     "catching_up", "idling",
                             "backoff",  "needs_operator", "stopped",     "crashed"};


/// Reads sections of one message over the watcher's session.
class ImapSectionSource : public mime::SectionSource {
 public:
  ImapSectionSource(imap::Session& session, uint32_t uid) : session_(session), uid_(uid) {}
  util::Result<std::string> Body(const std::string& section) override {
    // In pieces: the whole message ("") may be larger than one response may be.
    std::string out;
    if (auto s = StreamBody(section, [&](std::string_view piece) {
          out.append(piece);
          return util::Ok();
        });
        !s.ok()) {
      return s.error();
    }
    return out;
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
  util::Result<Prefix> BodyPrefix(const std::string& section, uint64_t max_bytes, bool raw) override {
    // One byte more than asked tells whether the body is longer
    // (BODY.PEEK[section]<0.N+1>, RFC 3501 §6.4.5).
    const uint32_t ask = static_cast<uint32_t>(std::min<uint64_t>(max_bytes + 1, UINT32_MAX));
    util::Result<std::string> head = session_.FetchSectionPart(uid_, section, 0, ask);
    if (!head.ok()) return head.error();
    Prefix out;
    out.cut = head->size() > max_bytes;
    if (out.cut) {
      head->resize(max_bytes);
      out.bytes = std::move(*head);
      return out;
    }
    if (!raw) {
      out.bytes = std::move(*head);
      return out;
    }
    // Within the limit: read it again with every byte intact (BINARY).
    util::Result<std::string> whole = RawBody(section);
    if (!whole.ok()) return whole.error();
    out.bytes = std::move(*whole);
    return out;
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
      on_committed_(std::move(on_committed)) {
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

void FolderWatcher::Start() { thread_ = std::thread([this] { Run(); }); }

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
      util::Logger("imap")->critical("imap.watcher_crashed account={} folder={} cause=\"{}\" note=\"restarting in 5s\"",
                                     account_.name, folder_, e.what());
      util::Metrics::Global().Inc("mailhook_watcher_crashes_total", {{"account", account_.name}, {"folder", folder_}});
      stop_.WaitFor(std::chrono::seconds(5));
    }
  }
  state_ = WatchState::kStopped;
}

void FolderWatcher::RunSessions() {
  auto log = util::Logger("imap");
  const util::Labels labels{{"account", account_.name}, {"folder", folder_}};
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
      stop_.WaitFor(backoff.Next());
      store = store::Store::Open(config_.state_dir);
    }

    while (!stop_.fired()) {
      state_ = WatchState::kConnecting;
      reached_idle_ = false;
      util::Status s = RunSessionGuarded(**store);
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
        if (state_ != WatchState::kCrashed) state_ = WatchState::kBackoff;
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
  }
}

// The work of one session: catching up, turning UIDs into events and
// committing them with the watermark. Lives as long as the session.
class FolderWatcher::SessionWork {
 public:
  SessionWork(FolderWatcher& w, imap::Session& session, store::Store& store, const imap::MailboxInfo& info)
      : w_(w),
        session_(session),
        store_(store),
        info_(info),
        labels_{{"account", w.account_.name}, {"folder", w.folder_}},
        log_(util::Logger("imap")) {}

  /// Decides where the folder starts (stored watermark, or a baseline for a
  /// first start or a changed UIDVALIDITY) and processes a first start's
  /// unseen messages.
  util::Status Start();
  /// The session's loop: resync by UID, process, post-actions, IDLE.
  util::Status Loop();

 private:
  util::Status Baseline();
  /// Turns `uids` into events, committing each batch with the new watermark
  /// (`final_mark` with the last one). `first_pass`: the unseen messages of a
  /// first start, which are not contiguous: the watermark stays unset until
  /// all are committed, so a crash midway starts the pass again (committed
  /// ones are deduplicated by the store) instead of resuming above the last
  /// one and sending the read messages between them.
  util::Status Process(const std::vector<uint32_t>& uids, uint32_t final_mark, bool first_pass);
  /// UIDs above the watermark: in windows of kSearchWindow below UIDNEXT,
  /// then `UID SEARCH UID n:*`.
  util::Result<std::vector<uint32_t>> SearchNew();
  /// The next batch from `uids[at]`: up to kFetchBatch UIDs, or one UID alone
  /// when it failed before (isolated, so a poison message is blamed alone).
  std::vector<uint32_t> NextBatch(const std::vector<uint32_t>& uids, size_t at) const;
  util::Status ProcessBatch(const std::vector<uint32_t>& batch, bool first_pass, bool last, uint32_t final_mark);
  /// One message into `items_`; exceptions become errors (a bug or a
  /// hostile message must not end the thread).
  util::Status Gather(const imap::MessageMeta& meta);
  util::Status GatherUnguarded(const imap::MessageMeta& meta);
  /// A message whose structure was too large to fetch: read whole (up to
  /// max_whole_fetch_bytes) and parsed locally under the part cap.
  util::Status GatherWhole(uint32_t uid);
  /// The events of one extracted message, one per matching target.
  util::Status AddEvent(const imap::MessageMeta& meta, const mime::MessageContent& content);
  /// The test-only fault point (see FolderWatcher::fault_subject_).
  void Fault(uint32_t uid);
  /// A message that failed max_attempts times: message.unprocessable.
  util::Status GatherUnprocessable(uint32_t uid, const store::Attempt& attempt);
  /// True for failures that say nothing about the message: a shutdown cut a
  /// command short, or the store failed.
  bool NotTheMessages(const util::Error& error) const {
    return w_.stop_.fired() || error.code().starts_with("store.");
  }
  /// Remembers why the attempt at `uid` failed (counting it when it failed
  /// `in_batch`, where it was not counted yet) and passes the error on.
  util::Status Blame(uint32_t uid, const util::Error& error, bool in_batch);
  util::Status Commit(uint32_t up_to, bool write_mark);
  void AddItems(const std::string& event_id, uint32_t uid, const mime::MessageContent* content,
                const std::function<std::vector<std::shared_ptr<const std::string>>(const Route&)>& payload);

  FolderWatcher& w_;
  imap::Session& session_;
  store::Store& store_;
  const imap::MailboxInfo info_;
  const util::Labels labels_;
  std::shared_ptr<spdlog::logger> log_;
  store::Watermark wm_;
  std::map<uint32_t, store::Attempt> attempts_;  // UIDs that failed before, by UID
  std::vector<store::OutboxItem> items_;         // gathered, not yet committed
  std::vector<store::PostAction> post_actions_;
  size_t pending_bytes_ = 0;
};

util::Status FolderWatcher::RunSessionGuarded(store::Store& store) {
  try {
    return RunSession(store);
  } catch (const std::exception& e) {
    // A bug or an input no one foresaw: the session is thrown away as for
    // any error, and the thread lives on. /readyz shows the state until the
    // next session is up.
    state_ = WatchState::kCrashed;
    util::Logger("imap")->critical("imap.session_crashed account={} folder={} cause=\"{}\"", account_.name,
                                   folder_, e.what());
    util::Metrics::Global().Inc("mailhook_watcher_crashes_total", {{"account", account_.name}, {"folder", folder_}});
    return util::Error("daemon.exception", util::RetryClass::kBackoff, std::string("the session crashed: ") + e.what());
  }
}

util::Status FolderWatcher::RunSession(store::Store& store) {
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
  util::Logger("imap")->info("imap.connected account={} folder={} uidvalidity={} uidnext={} exists={}",
                             account_.name, folder_, info->uidvalidity, info->uidnext, info->exists);
  util::Metrics::Global().Set("mailhook_imap_connected", {{"account", account_.name}, {"folder", folder_}}, 1);

  SessionWork work(*this, *session, store, *info);
  if (auto s = work.Start(); !s.ok()) return s;
  if (auto s = work.Loop(); !s.ok()) return s;
  session->Logout();
  util::Logger("imap")->info("imap.logout account={} folder={}", account_.name, folder_);
  return util::Ok();
}

util::Status FolderWatcher::SessionWork::Start() {
  auto mark = store_.GetWatermark(w_.account_.name, w_.folder_);
  if (!mark.ok()) return mark.error();
  auto attempts = store_.ListAttempts(w_.account_.name, w_.folder_, info_.uidvalidity);
  if (!attempts.ok()) return attempts.error();
  for (store::Attempt& a : *attempts) attempts_[a.uid] = std::move(a);
  if (!mark->has_value()) return Baseline();
  if ((*mark)->uidvalidity != info_.uidvalidity) {
    // RFC 3501 §2.3.1.1: every old UID is void. Replaying the whole folder
    // would flood the targets, so re-baseline like a first start.
    log_->error("imap.uidvalidity_changed account={} folder={} old={} new={} note=\"folder was recreated; "
                "starting from its current end\"",
                w_.account_.name, w_.folder_, (*mark)->uidvalidity, info_.uidvalidity);
    return Baseline();
  }
  wm_ = **mark;
  return util::Ok();
}

util::Status FolderWatcher::SessionWork::Baseline() {
  const config::Account& account = w_.account_;
  uint32_t end = info_.uidnext > 0 ? info_.uidnext - 1 : 0;
  if (info_.uidnext == 0) {
    auto all = session_.SearchUidsFrom(1);
    if (!all.ok()) return all.error();
    if (!all->empty()) end = all->back();
  }
  std::vector<uint32_t> initial;  // processed before the watermark moves past them
  if (account.start_from == config::StartFrom::kAll) {
    end = 0;
  } else if (account.start_from == config::StartFrom::kUnseen) {
    auto unseen = session_.SearchUnseen();
    if (!unseen.ok()) return unseen.error();
    initial = *unseen;
  }
  log_->info("imap.baseline account={} folder={} start_from={} last_uid={} unseen={}", account.name, w_.folder_,
             account.start_from == config::StartFrom::kAll      ? "all"
             : account.start_from == config::StartFrom::kUnseen ? "unseen"
                                                                 : "new",
             end, initial.size());
  // Unseen messages up to the end are processed first; the baseline is
  // stored after them (those above it are new and come with the catch-up).
  std::erase_if(initial, [end](uint32_t u) { return u > end; });
  wm_ = store::Watermark{info_.uidvalidity, 0};
  if (initial.empty()) {
    wm_.last_uid = end;
    return store_.SetWatermark(account.name, w_.folder_, wm_);
  }
  w_.state_ = WatchState::kCatchingUp;
  return Process(initial, end, true);
}

util::Status FolderWatcher::SessionWork::Loop() {
  const milliseconds refresh = w_.account_.idle_refresh;
  while (!w_.stop_.fired()) {
    w_.state_ = WatchState::kCatchingUp;
    // Always resync by UID: EXISTS counts are not trusted (DESIGN.md, libetpan
    // 1.9.4 IDLE bug). At the top UID nothing can follow (RFC 3501 §2.3.1.1:
    // the server must change UIDVALIDITY first), and last_uid + 1 would wrap.
    if (wm_.last_uid < UINT32_MAX) {
      auto uids = SearchNew();
      if (!uids.ok()) return uids.error();
      if (!uids->empty()) {
        log_->debug("imap.catch_up account={} folder={} from_uid={} count={}", w_.account_.name, w_.folder_,
                    wm_.last_uid + 1, uids->size());
        if (auto s = Process(*uids, 0, false); !s.ok()) return s;
        // Messages announced while we fetched (their EXISTS came then, and
        // IDLE does not repeat it) would wait in IDLE for an unrelated push:
        // search again until a search finds nothing new.
        continue;
      }
    }
    if (w_.HasPostActions()) {
      w_.wake_.Clear();  // before reading the store: a Wake() after this is not lost
      if (auto s = w_.ApplyPostActions(session_, store_, info_.uidvalidity); !s.ok()) return s;
    }
    w_.state_ = WatchState::kIdling;
    w_.reached_idle_ = true;
    auto wake = session_.Idle(refresh, w_.HasPostActions() ? w_.wake_.fd() : -1);
    if (!wake.ok()) return wake.error();
    if (*wake == imap::IdleWake::kStopped) break;
  }
  return util::Ok();
}

util::Result<std::vector<uint32_t>> FolderWatcher::SessionWork::SearchNew() {
  // Below the UIDNEXT that SELECT reported, search in windows: the answer to
  // `UID SEARCH UID n:*` in a folder of millions (start_from: all, a long
  // outage) would be larger than one response may be. No message can ever
  // appear in an empty window below UIDNEXT (RFC 3501 §2.3.1.1: new UIDs
  // are at least UIDNEXT), so the watermark moves past it.
  while (info_.uidnext > 0 && wm_.last_uid < info_.uidnext - 1 &&
         info_.uidnext - 1 - wm_.last_uid > kSearchWindow) {
    const uint32_t lo = wm_.last_uid + 1;
    const uint32_t hi = lo + kSearchWindow - 1;
    auto uids = session_.SearchUidRange(lo, hi);
    if (!uids.ok() || !uids->empty()) return uids;
    wm_.last_uid = hi;
    if (auto s = store_.SetWatermark(w_.account_.name, w_.folder_, wm_); !s.ok()) return s.error();
  }
  return session_.SearchUidsFrom(wm_.last_uid + 1);
}

util::Status FolderWatcher::SessionWork::Process(const std::vector<uint32_t>& uids, uint32_t final_mark,
                                                 bool first_pass) {
  for (size_t i = 0; i < uids.size();) {
    std::vector<uint32_t> batch = NextBatch(uids, i);
    i += batch.size();
    if (auto s = ProcessBatch(batch, first_pass, i >= uids.size(), final_mark); !s.ok()) {
      // Best effort: a shutdown or a full disk must not count against the
      // messages (three restarts would make a healthy message unprocessable).
      if (NotTheMessages(s.error())) (void)store_.RefundAttempts(w_.account_.name, w_.folder_, batch);
      return s;
    }
  }
  return util::Ok();
}

std::vector<uint32_t> FolderWatcher::SessionWork::NextBatch(const std::vector<uint32_t>& uids, size_t at) const {
  if (attempts_.contains(uids[at])) return {uids[at]};
  std::vector<uint32_t> batch;
  for (size_t i = at; i < uids.size() && batch.size() < kFetchBatch && !attempts_.contains(uids[i]); ++i) {
    batch.push_back(uids[i]);
  }
  return batch;
}

util::Status FolderWatcher::SessionWork::ProcessBatch(const std::vector<uint32_t>& batch, bool first_pass,
                                                      bool last, uint32_t final_mark) {
  const config::Account& account = w_.account_;
  // Count the attempt before it starts: a message that crashes or hangs the
  // process is counted too. A batch only marks its messages, so that after a
  // failure the next session takes them one at a time and counts only those
  // attempts: one poison message never dooms its neighbours.
  if (auto s = store_.BeginAttempts(account.name, w_.folder_, info_.uidvalidity, batch); !s.ok()) return s;
  for (uint32_t uid : batch) {
    store::Attempt& a = attempts_[uid];
    a.uid = uid;
    if (batch.size() == 1) ++a.count;
  }
  const store::Attempt& first = attempts_[batch.front()];
  if (batch.size() == 1 && first.count > account.limits.max_attempts) {
    if (auto s = GatherUnprocessable(batch.front(), first); !s.ok()) return s;
  } else if (batch.size() == 1 && first.last_code == "imap.response_too_large") {
    // Its structure alone was more than a meta fetch may read (a part bomb):
    // read the message whole and parse it here, under the part cap.
    if (auto s = GatherWhole(batch.front()); !s.ok()) return Blame(batch.front(), s.error(), false);
  } else {
    auto metas = session_.FetchMeta(batch);
    if (!metas.ok()) return batch.size() == 1 ? Blame(batch.front(), metas.error(), false) : metas.error();
    for (const imap::MessageMeta& meta : *metas) {
      if (auto s = Gather(meta); !s.ok()) return Blame(meta.uid, s.error(), batch.size() > 1);
      // Events with large attachment contents are committed early, so a
      // batch never holds more than about one large event at a time.
      if (pending_bytes_ >= kCommitBytes) {
        if (auto s = Commit(meta.uid, !first_pass); !s.ok()) return s;
      }
    }
  }
  for (uint32_t uid : batch) attempts_.erase(uid);  // committed below, or vanished
  return Commit(last ? std::max(final_mark, batch.back()) : batch.back(), !first_pass || last);
}

util::Status FolderWatcher::SessionWork::Blame(uint32_t uid, const util::Error& error, bool in_batch) {
  if (NotTheMessages(error)) return error;  // Process() takes the attempt back
  store::Attempt& a = attempts_[uid];
  if (in_batch) ++a.count;  // known to be this message's, though BeginAttempts did not count it
  a.last_code = error.code();
  a.last_error = error.message();
  log_->warn("imap.message_failed account={} folder={} uid={} attempt={} of={} cause=\"{}\"", w_.account_.name,
             w_.folder_, uid, a.count, w_.account_.limits.max_attempts, error.message());
  util::Metrics::Global().Inc("mailhook_message_failures_total", labels_);
  // Best effort: the count is what matters, and it is already durable.
  (void)store_.RecordAttemptFailure(w_.account_.name, w_.folder_, uid, error.code(), error.message(), in_batch);
  return error;
}

util::Status FolderWatcher::SessionWork::Gather(const imap::MessageMeta& meta) {
  try {
    if (!w_.fault_subject_.empty() && meta.header.find(w_.fault_subject_) != std::string::npos) Fault(meta.uid);
    return GatherUnguarded(meta);
  } catch (const std::exception& e) {
    return util::Error("daemon.exception", util::RetryClass::kBackoff,
                       std::string("extracting the message failed: ") + e.what());
  }
}

util::Status FolderWatcher::SessionWork::GatherWhole(uint32_t uid) {
  auto metas = session_.FetchMetaLight({uid});
  if (!metas.ok()) return metas.error();
  if (metas->empty()) return util::Ok();  // expunged meanwhile
  const imap::MessageMeta& meta = metas->front();
  mime::ExtractOptions options = w_.extract_options_;
  options.message_size = meta.size;
  if (meta.size > options.max_whole_fetch_bytes) {
    return util::Error("daemon.too_large", util::RetryClass::kBackoff,
                       "the message's structure is too large to read and the message (" +
                           std::to_string(meta.size >> 20) + " MiB) too large to parse here (over " +
                           std::to_string(options.max_whole_fetch_bytes >> 20) + " MiB)");
  }
  log_->info("imap.message_read_whole account={} folder={} uid={} size={} cause=\"structure too large\"",
             w_.account_.name, w_.folder_, uid, meta.size);
  std::string bytes;
  ImapSectionSource source(session_, uid);
  if (auto s = source.StreamBody("", [&](std::string_view piece) {
        if (bytes.size() + piece.size() > options.max_whole_fetch_bytes) {
          return util::Status(util::Error("daemon.too_large", util::RetryClass::kBackoff,
                                          "the message grew past its RFC822.SIZE while being read"));
        }
        bytes.append(piece);
        return util::Ok();
      });
      !s.ok()) {
    return s;
  }
  auto content = mime::ExtractWhole(std::move(bytes), options);
  if (!content.ok()) return content.error();
  return AddEvent(meta, *content);
}

// Turns one message into its events (one per matching target) in `items_`.
// The extracted content ends with this call; attachment contents live on in
// the items' pieces until they are committed.
void FolderWatcher::SessionWork::Fault(uint32_t uid) {
  const std::string& action = w_.fault_action_;
  log_->warn("test.fault account={} folder={} uid={} action={}", w_.account_.name, w_.folder_, uid, action);
  if (action == "abort") std::abort();
  if (action.starts_with("sleep:")) {
    std::this_thread::sleep_for(milliseconds(std::atoll(action.c_str() + 6)));
    return;
  }
  throw std::runtime_error("injected fault (MAILHOOK_TEST_FAULT_SUBJECT)");
}

util::Status FolderWatcher::SessionWork::GatherUnguarded(const imap::MessageMeta& meta) {
  ImapSectionSource source(session_, meta.uid);
  mime::ExtractOptions options = w_.extract_options_;
  options.message_size = meta.size;
  auto content = mime::Extract(meta.header, meta.structure, source, options);
  if (!content.ok()) {
    if (content.error().retry() == util::RetryClass::kRetryNow) {
      log_->warn("imap.message_vanished account={} folder={} uid={}", w_.account_.name, w_.folder_, meta.uid);
      return util::Ok();
    }
    return content.error();
  }
  if (meta.structure_cut) {
    // The server's structure was deeper or larger than we convert: say so.
    if (!content->truncated) content->truncated.emplace();
    content->truncated->attachments_omitted = std::max<uint64_t>(content->truncated->attachments_omitted, 1);
  }
  return AddEvent(meta, *content);
}

util::Status FolderWatcher::SessionWork::AddEvent(const imap::MessageMeta& meta,
                                                  const mime::MessageContent& content) {
  mime::EventMeta em{w_.account_.name, w_.folder_, info_.uidvalidity, meta.uid, meta.flags, meta.size,
                     mime::NowRfc3339()};
  const std::string event_id = mime::EventId(w_.account_.name, w_.folder_, info_.uidvalidity, meta.uid);
  // One event per attachment mode (and content limit), shared by the routes
  // that want the same: a hostile body escaped to JSON is large, and it is
  // built once, not once per target. Pieces: the attachment contents are
  // shared too and written to the store as they are, never joined here.
  using Pieces = std::vector<std::shared_ptr<const std::string>>;
  std::map<std::pair<config::AttachmentMode, uint64_t>, Pieces> built;
  AddItems(event_id, meta.uid, &content, [&](const Route& r) {
    const uint64_t limit = r.attachments == config::AttachmentMode::kContent ? r.max_attachment_bytes : 0;
    auto [it, fresh] = built.try_emplace({r.attachments, limit});
    if (fresh) it->second = mime::EventPieces(em, content, r.attachments, r.max_attachment_bytes);
    return it->second;
  });
  util::Metrics::Global().Inc("mailhook_messages_total", labels_);
  return util::Ok();
}

util::Status FolderWatcher::SessionWork::GatherUnprocessable(uint32_t uid, const store::Attempt& attempt) {
  const std::string reason = attempt.last_error.empty()
                                 ? "the process stopped while extracting this message (crash or kill)"
                                 : attempt.last_error;
  const int attempts = attempt.count - 1;  // the one just counted is not made
  log_->error("imap.message_unprocessable account={} folder={} uid={} attempts={} cause=\"{}\" note=\"sent as "
              "message.unprocessable; the folder moves on\"",
              w_.account_.name, w_.folder_, uid, attempts, reason);
  // What can still be read cheaply: the header (bounded) for the envelope.
  mime::EventMeta em{w_.account_.name, w_.folder_, info_.uidvalidity, uid, {}, 0, mime::NowRfc3339()};
  // This path must not fail because of the message, or the folder would be
  // stuck again: a header the server cannot send within the budget, or that
  // throws, leaves the envelope null. A broken session is retried as usual.
  std::string header;
  auto light = session_.FetchMetaLight({uid});  // no BODYSTRUCTURE; bounded
  if (light.ok() && light->empty()) return util::Ok();  // expunged meanwhile: nothing to report
  if (light.ok()) {
    em.size = light->front().size;
    em.flags = light->front().flags;
    header = std::move(light->front().header);
  } else if (light.error().code() != "imap.response_too_large") {
    return light.error();
  }
  mime::MessageContent partial;
  std::shared_ptr<const std::string> payload;
  try {
    // The header's fields, for routes that match on from/subject: a multipart
    // without children makes the Extractor read nothing but the header.
    mime::Part empty_root;
    empty_root.type = "multipart";
    empty_root.subtype = "mixed";
    ImapSectionSource unused(session_, uid);
    if (auto parsed = mime::Extract(header, empty_root, unused, w_.extract_options_); parsed.ok()) {
      partial = std::move(*parsed);
    }
    payload = std::make_shared<const std::string>(mime::UnprocessableEventJson(em, header, reason, attempts));
  } catch (const std::exception& e) {
    partial = mime::MessageContent{};
    payload = std::make_shared<const std::string>(mime::UnprocessableEventJson(em, "", reason, attempts));
  }
  const std::string event_id = mime::EventId(w_.account_.name, w_.folder_, info_.uidvalidity, uid);
  AddItems(event_id, uid, &partial, [&](const Route&) { return std::vector{payload}; });
  util::Metrics::Global().Inc("mailhook_messages_unprocessable_total", labels_);
  return util::Ok();
}

void FolderWatcher::SessionWork::AddItems(
    const std::string& event_id, uint32_t uid, const mime::MessageContent* content,
    const std::function<std::vector<std::shared_ptr<const std::string>>(const Route&)>& payload) {
  size_t before = items_.size();
  for (const Route& r : RoutesFor(w_.config_, w_.account_.name, w_.folder_, content)) {
    store::OutboxItem item{event_id, r.target, w_.account_.name, w_.folder_, info_.uidvalidity, uid, {}, {}};
    item.pieces = payload(r);
    for (const auto& piece : item.pieces) pending_bytes_ += piece->size();
    items_.push_back(std::move(item));
  }
  // Only a message that went somewhere is marked or moved afterwards.
  if (w_.HasPostActions() && items_.size() > before) {
    post_actions_.push_back(store::PostAction{event_id, w_.account_.name, w_.folder_, info_.uidvalidity, uid});
  }
  log_->debug("imap.message account={} folder={} uid={} event={} targets={}", w_.account_.name, w_.folder_, uid,
              event_id, items_.size() - before);
}

// Commits what is gathered with the watermark at `up_to` (when `write_mark`):
// every UID up to it has its events in `items_`.
util::Status FolderWatcher::SessionWork::Commit(uint32_t up_to, bool write_mark) {
  store::Watermark next{info_.uidvalidity, std::max(wm_.last_uid, up_to)};
  std::optional<store::Watermark> mark;
  if (write_mark) mark = next;
  if (auto s = store_.CommitMessages(w_.account_.name, w_.folder_, mark, items_, post_actions_); !s.ok()) return s;
  if (mark) wm_ = next;
  // Free the events (and their attachment contents) before the dispatcher
  // is woken to read them back.
  const bool committed_events = !items_.empty();
  items_.clear();
  post_actions_.clear();
  pending_bytes_ = 0;
  if (committed_events && w_.on_committed_) w_.on_committed_();
  if (!mark && committed_events && w_.fault_first_pass_commits_ > 0 && --w_.fault_first_pass_commits_ == 0) {
    Fault(up_to);  // a crash inside the first pass, its events stored, its watermark not
  }
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
