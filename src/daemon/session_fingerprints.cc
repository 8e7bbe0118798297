// FolderWatcher::SessionWork, the UIDVALIDITY part: fingerprints of handled
// messages, and matching a recreated folder's messages to them.

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <optional>
#include <utility>

#include "daemon/message_fingerprint.h"
#include "daemon/session_work.h"

namespace mailhook::daemon {
namespace {

using std::chrono::steady_clock;

// UIDs per SEARCH window, as SessionWork::SearchNew.
constexpr uint32_t kFingerprintSearchWindow = 100000;
// Headers per whole-header fetch: as many as a meta fetch takes (a batch).
constexpr size_t kHeaderWindow = 25;
// The folder's fingerprints are pruned when there are more than this many
// beyond twice its message count.
constexpr int64_t kPruneSlack = 10000;

int64_t MsSince(steady_clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(steady_clock::now() - start).count();
}

}  // namespace

util::Result<StartPlan> FolderWatcher::SessionWork::PlanAfterChange(const store::Watermark& old) {
  const std::string& account = w_.account_.name;
  auto floor = store_.watermarks().FingerprintFloor(account, w_.folder_);
  if (!floor.ok()) return floor.error();
  ServerStatus server{info_.uidvalidity, info_.uidnext, std::nullopt, {}};
  if (info_.uidnext == 0) {
    auto all = session_.SearchUidsFrom(1);
    if (!all.ok()) return all.error();
    if (!all->empty()) server.highest_uid = all->back();
  }
  const uint32_t end = info_.uidnext > 0 ? info_.uidnext - 1 : server.highest_uid.value_or(0);
  if (*floor > 0) {
    // Messages were handled under the old UIDVALIDITY without a fingerprint
    // (before this version, or passed over by a baseline not yet covered):
    // an unmatched message may be one of them, so nothing can be told apart.
    log_->error(
        "imap.uidvalidity_changed account={} folder={} old={} new={} matched=0 new_messages=0 note=\"folder was "
        "recreated; the old folder's messages have no fingerprints, so it starts from its current end\"",
        account, w_.folder_, old.uidvalidity, info_.uidvalidity);
    StartPlan plan = PlanStart(std::nullopt, server, config::StartFrom::kNew);
    plan.kind = StartKind::kUidValidityChanged;
    // The new folder's messages up to its end are passed over: CoverHandled
    // gives them fingerprints, so the next change can be matched. Set on
    // the old row first: a crash before the new watermark falls back again.
    if (auto s = store_.watermarks().SetFingerprintFloor(account, w_.folder_, end); !s.ok()) return s.error();
    if (auto s = store_.fingerprints().KeepGenerations(account, w_.folder_, info_.uidvalidity, info_.uidvalidity);
        !s.ok()) {
      return s.error();
    }
    return plan;
  }
  // Rows of older generations can match nothing any more (bounded store).
  if (auto s = store_.fingerprints().KeepGenerations(account, w_.folder_, old.uidvalidity, info_.uidvalidity);
      !s.ok()) {
    return s.error();
  }
  const auto start = steady_clock::now();
  size_t matched = 0;
  auto unmatched = MatchFolder(end, matched);
  if (!unmatched.ok()) return unmatched.error();
  log_->warn(
      "imap.uidvalidity_changed account={} folder={} old={} new={} matched={} new_messages={} ms={} note=\"folder "
      "was recreated; only messages not handled before become events\"",
      account, w_.folder_, old.uidvalidity, info_.uidvalidity, matched, unmatched->size(), MsSince(start));
  StartPlan plan;
  plan.kind = StartKind::kUidValidityChanged;
  plan.first_pass = std::move(*unmatched);
  plan.first_pass_end = end;
  // Like start_from: unseen's first pass: the watermark is stored only once
  // every unmatched message below the end is committed; a crash midway
  // matches again (the messages committed meanwhile have fingerprints).
  plan.store_mark_now = plan.first_pass.empty();
  plan.mark = store::Watermark{info_.uidvalidity, plan.store_mark_now ? end : 0};
  return plan;
}

util::Result<std::vector<uint32_t>> FolderWatcher::SessionWork::MatchFolder(uint32_t end, size_t& matched) {
  std::vector<uint32_t> unmatched;
  auto s = ForEachWindow(1, end, [&](uint32_t, uint32_t, std::vector<uint32_t> uids) -> util::Status {
    auto fps = FingerprintsOf(uids);
    if (!fps.ok()) return fps.error();
    auto missed = store_.fingerprints().Claim(w_.account_.name, w_.folder_, *fps);
    if (!missed.ok()) return missed.error();
    matched += fps->size() - missed->size();
    // Those whose fields were too large to read are matched to nothing.
    for (uint32_t uid : uids) {
      if (w_.unmatchable_.contains(uid)) missed->push_back(uid);
    }
    std::sort(missed->begin(), missed->end());
    unmatched.insert(unmatched.end(), missed->begin(), missed->end());
    return util::Ok();
  });
  if (!s.ok()) return s.error();
  return unmatched;
}

util::Status FolderWatcher::SessionWork::ForEachWindow(
    uint32_t lo, uint32_t hi, const std::function<util::Status(uint32_t, uint32_t, std::vector<uint32_t>)>& fn) {
  while (lo != 0 && lo <= hi && !w_.stop_.fired()) {
    const uint32_t top = hi - lo < kFingerprintSearchWindow ? hi : lo + kFingerprintSearchWindow - 1;
    auto uids = session_.SearchUidRange(lo, top);
    if (!uids.ok()) return uids.error();
    if (auto s = fn(lo, top, std::move(*uids)); !s.ok()) return s;
    lo = top + 1;  // 0 after UINT32_MAX: the loop ends
  }
  if (w_.stop_.fired()) return util::Error("daemon.stopping", util::RetryClass::kBackoff, "stopping");
  return util::Ok();
}

util::Result<std::vector<store::Fingerprint>> FolderWatcher::SessionWork::FingerprintsOf(
    const std::vector<uint32_t>& uids) {
  std::vector<store::Fingerprint> out;
  std::vector<std::pair<uint32_t, uint64_t>> no_id;  // UID, size
  std::vector<uint32_t> chunk;
  for (size_t i = 0; i < uids.size();) {
    chunk.clear();
    for (; i < uids.size() && chunk.size() < w_.match_window_; ++i) {
      if (!w_.unmatchable_.contains(uids[i])) chunk.push_back(uids[i]);
    }
    if (chunk.empty()) continue;
    auto metas = session_.FetchMatchMeta(chunk);
    if (!metas.ok()) {
      // The session is gone; the next one asks for less, down to one UID,
      // and a single UID still too large is matched to nothing.
      if (metas.error().IsResponseTooLarge()) {
        if (chunk.size() > 1) w_.match_window_ = std::max<size_t>(1, chunk.size() / 2);
        if (chunk.size() == 1) w_.unmatchable_.insert(chunk.front());
      }
      return metas.error();
    }
    for (const imap::MessageMeta& meta : *metas) {
      if (std::optional<std::string> id = MessageIdKey(meta.header)) {
        out.push_back(store::Fingerprint{info_.uidvalidity, meta.uid, std::move(*id), meta.size});
      } else {
        no_id.emplace_back(meta.uid, meta.size);
      }
    }
  }
  for (size_t i = 0; i < no_id.size(); i += kHeaderWindow) {
    std::vector<uint32_t> batch;
    for (size_t j = i; j < no_id.size() && batch.size() < kHeaderWindow; ++j) batch.push_back(no_id[j].first);
    auto metas = session_.FetchMetaLight(batch);
    if (!metas.ok()) return metas.error();
    for (const imap::MessageMeta& meta : *metas) {
      out.push_back(FingerprintOf(info_.uidvalidity, meta.uid, meta.size, meta.header));
    }
  }
  return out;
}

uint32_t FolderWatcher::SessionWork::CoverWindow() {
  const char* v = std::getenv("MAILHOOK_TEST_COVER_WINDOW");
  if (v == nullptr || *v == '\0') return kCoverWindow;
  return std::max<uint32_t>(1, static_cast<uint32_t>(std::strtoul(v, nullptr, 10)));
}

util::Status FolderWatcher::SessionWork::CoverHandled() {
  const std::string& account = w_.account_.name;
  auto floor = store_.watermarks().FingerprintFloor(account, w_.folder_);
  if (!floor.ok()) return floor.error();
  cover_left_ = false;
  if (*floor == 0 || w_.stop_.fired()) return util::Ok();
  // From the top down: the most recent messages, the likeliest to be copied
  // into a recreated folder, are covered first.
  const auto start = steady_clock::now();
  const uint32_t hi = *floor;
  const uint32_t lo = hi > CoverWindow() ? hi - CoverWindow() + 1 : 1;
  auto uids = session_.SearchUidRange(lo, hi);
  if (!uids.ok()) return uids.error();
  auto fps = FingerprintsOf(*uids);
  if (!fps.ok()) return fps.error();
  if (auto s = store_.fingerprints().Add(account, w_.folder_, *fps); !s.ok()) return s;
  // Persisted per window: a dropped session goes on below it.
  if (auto s = store_.watermarks().SetFingerprintFloor(account, w_.folder_, lo - 1); !s.ok()) return s;
  cover_left_ = lo > 1;
  log_->info("imap.fingerprints_covered account={} folder={} from_uid={} up_to_uid={} messages={} left_up_to={} ms={}",
             account, w_.folder_, lo, hi, fps->size(), lo - 1, MsSince(start));
  return util::Ok();
}

util::Status FolderWatcher::SessionWork::PruneFingerprints() {
  const std::string& account = w_.account_.name;
  auto count = store_.fingerprints().Count(account, w_.folder_);
  if (!count.ok()) return count.error();
  if (*count <= 2 * static_cast<int64_t>(info_.exists) + kPruneSlack) return util::Ok();
  const uint32_t last = committer_->mark().last_uid;
  auto s = ForEachWindow(1, last, [&](uint32_t lo, uint32_t hi, std::vector<uint32_t> present) {
    return store_.fingerprints().ForgetAbsent(account, w_.folder_, info_.uidvalidity, lo, hi, present);
  });
  if (!s.ok()) return s;
  auto after = store_.fingerprints().Count(account, w_.folder_);
  if (!after.ok()) return after.error();
  log_->info("imap.fingerprints_pruned account={} folder={} before={} after={}", account, w_.folder_, *count, *after);
  return util::Ok();
}

util::Status FolderWatcher::SessionWork::SkipHandledBefore(std::vector<imap::MessageMeta>& metas) {
  std::vector<store::Fingerprint> fps;
  for (const imap::MessageMeta& meta : metas) {
    fps.push_back(FingerprintOf(info_.uidvalidity, meta.uid, meta.size, meta.header));
  }
  if (old_generation_) {
    auto missed = store_.fingerprints().Claim(w_.account_.name, w_.folder_, fps);
    if (!missed.ok()) return missed.error();
    std::erase_if(metas, [&](const imap::MessageMeta& meta) {
      if (std::find(missed->begin(), missed->end(), meta.uid) != missed->end()) return false;
      log_->info("imap.message_matched account={} folder={} uid={} note=\"handled before the UIDVALIDITY change\"",
                 w_.account_.name, w_.folder_, meta.uid);
      return true;
    });
    std::erase_if(fps, [&](const store::Fingerprint& fp) {
      return std::find(missed->begin(), missed->end(), fp.uid) == missed->end();
    });
  }
  for (store::Fingerprint& fp : fps) committer_->AddFingerprint(std::move(fp));
  return util::Ok();
}

}  // namespace mailhook::daemon
