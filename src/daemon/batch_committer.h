#pragma once
/// BatchCommitter: gathers the events of a folder's messages and makes them
/// durable together with the watermark, in one store transaction per
/// commit. It owns the commit rules:
///   - UIDs are taken in batches of at most max_messages (a UID that failed
///     before alone, so a poison message is blamed alone); every batch ends
///     in a commit;
///   - inside a batch, a commit comes early once the pending events reach
///     max_bytes (large attachment contents), so memory holds about one
///     large event at a time;
///   - every commit moves the watermark to the last UID handled, except in a
///     first pass (start_from: unseen), whose UIDs are not contiguous: there
///     the watermark stays unset until the pass's last commit, which sets it
///     to the pass's end, so a crash midway starts the pass again (the store
///     deduplicates what was committed) instead of skipping the read
///     messages between unseen ones.
/// One per session; used by the watcher thread only.

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "store/store.h"
#include "util/result.h"

namespace mailhook::daemon {

/// See the file comment.
class BatchCommitter {
 public:
  struct Limits {
    size_t max_messages = 25;       ///< messages per UID FETCH and per transaction
    uint64_t max_bytes = 8u << 20;  ///< ... or fewer, once their payloads reach this
  };

  /// `mark`: the watermark the session starts from (its UIDVALIDITY is the
  /// one every commit uses). `on_committed` runs after a commit that wrote
  /// events (to wake the dispatcher). `store` must outlive this.
  BatchCommitter(store::Store& store, std::string account, std::string folder, store::Watermark mark,
                 std::function<void()> on_committed, Limits limits);

  /// The watermark as last committed (or as the session started).
  const store::Watermark& mark() const { return mark_; }
  /// The next batch from `uids[at]`: up to max_messages UIDs, or one UID
  /// alone when `failed_before` says it failed before.
  std::vector<uint32_t> NextBatch(const std::vector<uint32_t>& uids, size_t at,
                                  const std::function<bool(uint32_t)>& failed_before) const;

  /// Starts a pass over a list of UIDs. `first_pass`: the watermark is
  /// written only by the pass's last commit, as `final_mark` (or the last UID,
  /// if higher). For an ordinary pass final_mark is 0.
  void BeginPass(bool first_pass, uint32_t final_mark);
  /// One event for one target, made durable by the next commit.
  void Add(store::OutboxItem item);
  /// A post-action recorded with the next commit.
  void AddPostAction(store::PostAction action) { post_actions_.push_back(std::move(action)); }
  /// A message's fingerprint, held until the message is handled
  /// (MessageDone for its UID, or BatchDone): only then is it recorded, in
  /// the same commit as the message's events. A fingerprint committed ahead
  /// of its message (an early commit, then the message fails) would make the
  /// retry take the message for one handled before and drop it.
  void AddFingerprint(store::Fingerprint fp) { held_fingerprints_.push_back(std::move(fp)); }
  /// After each message of a batch (events added or not): its fingerprint
  /// joins the pending commit, which comes early, up to `uid`, when the
  /// pending events reached max_bytes.
  util::Status MessageDone(uint32_t uid);
  /// After each batch: commits up to `last_uid` (every UID up to it was
  /// handled: made events, unprocessable, or vanished), with every held
  /// fingerprint. `last_of_pass`:
  /// the pass's last batch.
  util::Status BatchDone(uint32_t last_uid, bool last_of_pass);
  /// Moves the watermark past UIDs that hold no message (an empty search
  /// window below UIDNEXT) and stores it. Nothing may be pending.
  util::Status SkipTo(uint32_t last_uid);

  /// Test seam: runs after every commit with its upper UID, whether it wrote
  /// the watermark and whether it stored events (a crash point inside a
  /// first pass hangs here).
  void SetAfterCommit(std::function<void(uint32_t up_to, bool wrote_mark, bool stored_events)> hook) {
    after_commit_ = std::move(hook);
  }

  size_t pending_events() const { return items_.size(); }
  uint64_t pending_bytes() const { return pending_bytes_; }

 private:
  /// Commits what is pending; with `write_mark`, the watermark moves to
  /// `up_to` in the same transaction.
  util::Status Commit(uint32_t up_to, bool write_mark);
  /// Moves the held fingerprints of the UIDs `handled` says were handled to
  /// the pending commit.
  void ReleaseFingerprints(const std::function<bool(uint32_t)>& handled);

  store::Store& store_;
  const std::string account_;
  const std::string folder_;
  store::Watermark mark_;
  std::function<void()> on_committed_;
  const Limits limits_;
  bool first_pass_ = false;
  uint32_t final_mark_ = 0;
  std::vector<store::OutboxItem> items_;  // gathered, not yet committed
  std::vector<store::PostAction> post_actions_;
  std::vector<store::Fingerprint> fingerprints_;       // of handled messages: go with the next commit
  std::vector<store::Fingerprint> held_fingerprints_;  // of messages not handled yet
  uint64_t pending_bytes_ = 0;
  std::function<void(uint32_t, bool, bool)> after_commit_;
};

}  // namespace mailhook::daemon
