#include "daemon/batch_committer.h"

#include <algorithm>
#include <optional>

namespace mailhook::daemon {

BatchCommitter::BatchCommitter(store::Store& store, std::string account, std::string folder, store::Watermark mark,
                               std::function<void()> on_committed, Limits limits)
    : store_(store),
      account_(std::move(account)),
      folder_(std::move(folder)),
      mark_(mark),
      on_committed_(std::move(on_committed)),
      limits_(limits) {}

std::vector<uint32_t> BatchCommitter::NextBatch(const std::vector<uint32_t>& uids, size_t at,
                                                const std::function<bool(uint32_t)>& failed_before) const {
  if (failed_before(uids[at])) return {uids[at]};
  std::vector<uint32_t> batch;
  for (size_t i = at; i < uids.size() && batch.size() < limits_.max_messages && !failed_before(uids[i]); ++i) {
    batch.push_back(uids[i]);
  }
  return batch;
}

void BatchCommitter::BeginPass(bool first_pass, uint32_t final_mark) {
  first_pass_ = first_pass;
  final_mark_ = final_mark;
}

void BatchCommitter::Add(store::OutboxItem item) {
  for (const auto& piece : item.pieces) pending_bytes_ += piece->size();
  pending_bytes_ += item.payload.size();
  items_.push_back(std::move(item));
}

void BatchCommitter::ReleaseFingerprints(const std::function<bool(uint32_t)>& handled) {
  std::erase_if(held_fingerprints_, [&](store::Fingerprint& fp) {
    if (!handled(fp.uid)) return false;
    fingerprints_.push_back(std::move(fp));
    return true;
  });
}

util::Status BatchCommitter::MessageDone(uint32_t uid) {
  ReleaseFingerprints([uid](uint32_t held) { return held == uid; });
  // Events with large attachment contents are committed early, so a batch
  // never holds more than about one large event at a time.
  if (pending_bytes_ < limits_.max_bytes) return util::Ok();
  return Commit(uid, !first_pass_);
}

util::Status BatchCommitter::BatchDone(uint32_t last_uid, bool last_of_pass) {
  ReleaseFingerprints([](uint32_t) { return true; });
  const uint32_t up_to = last_of_pass ? std::max(final_mark_, last_uid) : last_uid;
  return Commit(up_to, !first_pass_ || last_of_pass);
}

util::Status BatchCommitter::SkipTo(uint32_t last_uid) {
  store::Watermark next{mark_.uidvalidity, std::max(mark_.last_uid, last_uid)};
  if (auto s = store_.watermarks().Set(account_, folder_, next); !s.ok()) return s;
  mark_ = next;
  return util::Ok();
}

util::Status BatchCommitter::Commit(uint32_t up_to, bool write_mark) {
  store::Watermark next{mark_.uidvalidity, std::max(mark_.last_uid, up_to)};
  std::optional<store::Watermark> mark;
  if (write_mark) mark = next;
  if (auto s = store_.CommitMessages(account_, folder_, mark, items_, post_actions_, fingerprints_); !s.ok()) {
    return s;
  }
  if (mark) mark_ = next;
  // Free the events (and their attachment contents) before the dispatcher
  // is woken to read them back.
  const bool committed_events = !items_.empty();
  items_.clear();
  post_actions_.clear();
  fingerprints_.clear();
  pending_bytes_ = 0;
  if (committed_events && on_committed_) on_committed_();
  if (after_commit_) after_commit_(up_to, mark.has_value(), committed_events);
  return util::Ok();
}

}  // namespace mailhook::daemon
