#pragma once
/// FolderWatcher::SessionWork: the work of one session of a folder watcher,
/// a short I/O loop around two pieces that hold the rules: the baseline
/// planner (where to start: baseline_planner.h) and the batch committer
/// (when events and the watermark become durable: batch_committer.h).
/// Private to the watcher (folder_watcher.cc and session_work.cc).

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "daemon/baseline_planner.h"
#include "daemon/batch_committer.h"
#include "daemon/folder_watcher.h"
#include "daemon/router.h"
#include "imap/mailbox.h"
#include "mime/message.h"
#include "store/store.h"
#include "util/log.h"

namespace mailhook::daemon {

/// Catching up, turning UIDs into events and handing them to the batch
/// committer. Lives as long as the session; watcher thread only.
class FolderWatcher::SessionWork {
 public:
  SessionWork(FolderWatcher& w, imap::Mailbox& session, store::Store& store, const imap::MailboxInfo& info)
      : w_(w),
        session_(session),
        store_(store),
        info_(info),
        log_(&util::Log(util::Area::kImap)),
        whole_fetch_max_(WholeFetchMaxBytes()) {}

  /// Messages under this RFC822.SIZE are fetched whole with their batch
  /// (BODY.PEEK[]) and parsed here: one round trip for all of them instead
  /// of one per section and per size query.
  static constexpr uint64_t kWholeFetchMaxBytes = 256 << 10;
  /// The most RFC822.SIZE one whole-message FETCH asks for: well inside a
  /// command's response budget (SessionOptions::kDefaultMaxResponseBytes,
  /// 16 MiB), and small enough that libetpan's copy of the answer (~3 bytes
  /// per byte) stays a few MB. A batch of 25 messages under 256 KiB takes
  /// at most 4 commands; a burst of typical mail, one.
  static constexpr uint64_t kWholeFetchCommandBytes = 2 << 20;
  /// kWholeFetchMaxBytes, or MAILHOOK_TEST_WHOLE_FETCH_MAX_BYTES (tests
  /// only: 0 takes every message the server path).
  static uint64_t WholeFetchMaxBytes();
  /// The committer's limits: the defaults, or max_bytes from
  /// MAILHOOK_TEST_COMMIT_MAX_BYTES (tests only: 1 commits after every
  /// message).
  static BatchCommitter::Limits CommitLimits();
  /// UIDs CoverHandled fingerprints per sync: a slice that holds new mail
  /// up by a few seconds at most (a Message-ID fetch per match window).
  static constexpr uint32_t kCoverWindow = 5000;
  /// kCoverWindow, or MAILHOOK_TEST_COVER_WINDOW (tests only).
  static uint32_t CoverWindow();

  /// Decides where the folder starts (stored watermark, or a baseline for a
  /// first start or a changed UIDVALIDITY) and processes a first start's
  /// unseen messages.
  util::Status Start();
  /// Resyncs by UID and processes until a search finds nothing new, then
  /// the post-actions.
  util::Status CatchUp();
  /// True when CatchUp processed new messages.
  bool found_new() const { return found_new_; }
  /// Gives fingerprints to one window of handled messages without one (at
  /// or below the fingerprint floor: a baseline's, or an older version's),
  /// the highest UIDs first, and lowers the floor below the window. Runs
  /// after the catch-up, one window per sync, so new mail never waits for
  /// more than one window, and a dropped session resumes from the floor.
  util::Status CoverHandled();
  /// True when handled messages without a fingerprint are left after
  /// CoverHandled (the folder should be synced again soon).
  bool cover_left() const { return cover_left_; }

 private:
  /// Asks the server what the plan of a `kind` start needs, and plans it.
  util::Result<StartPlan> Plan(const std::optional<store::Watermark>& stored, StartKind kind);
  // UIDVALIDITY changes (session_fingerprints.cc).

  /// The plan after a UIDVALIDITY change from `old`: when every message
  /// handled under the old UIDVALIDITY has a fingerprint, the folder's
  /// messages are matched to them (MatchFolder) and the unmatched ones are
  /// the first pass, with the watermark rebuilt at the folder's end once it
  /// is committed; otherwise the folder's end, as before (nothing to match).
  util::Result<StartPlan> PlanAfterChange(const store::Watermark& old);
  /// The UIDs in [1, end] that match no message handled before, ascending;
  /// `matched` counts the others.
  util::Result<std::vector<uint32_t>> MatchFolder(uint32_t end, size_t& matched);
  /// The fingerprints of `uids` (present ones), in match_window_ UIDs per
  /// Message-ID fetch, and the whole header of those without a Message-ID.
  util::Result<std::vector<store::Fingerprint>> FingerprintsOf(const std::vector<uint32_t>& uids);
  /// Calls `fn` with the UIDs present in each search window of [lo, hi].
  util::Status ForEachWindow(uint32_t lo, uint32_t hi,
                             const std::function<util::Status(uint32_t, uint32_t, std::vector<uint32_t>)>& fn);
  /// Drops the fingerprints of expunged messages once the folder has far
  /// more of them than messages.
  util::Status PruneFingerprints();
  /// Removes from `metas` the messages handled under an earlier UIDVALIDITY
  /// (copied into a recreated folder after the session's start) and queues
  /// the fingerprints of the others with their commit.
  util::Status SkipHandledBefore(std::vector<imap::MessageMeta>& metas);

  /// Turns `uids` into events, committed batch by batch with the watermark
  /// by the committer; `first_pass` and `final_mark` as BatchCommitter::BeginPass.
  util::Status Process(const std::vector<uint32_t>& uids, uint32_t final_mark, bool first_pass);
  /// UIDs above the watermark: in windows of kSearchWindow below UIDNEXT,
  /// then `UID SEARCH UID n:*`.
  util::Result<std::vector<uint32_t>> SearchNew();
  /// One batch: counts its attempts, gathers its events, commits.
  util::Status ProcessBatch(const std::vector<uint32_t>& batch, bool last);
  /// The messages of a batch: one FETCH of metadata and structure, one
  /// BODY.PEEK[] of the small ones (FetchSmallWhole), then each message.
  util::Status GatherBatch(const std::vector<uint32_t>& batch);
  /// The whole bytes of the small messages among `metas` (RFC822.SIZE under
  /// whole_fetch_max_, structure complete), by UID, in as few `UID FETCH
  /// <set> BODY.PEEK[]` as kWholeFetchCommandBytes allows. `asked` gets the
  /// UIDs asked for: one of them absent from the result was expunged.
  util::Result<std::map<uint32_t, std::string>> FetchSmallWhole(const std::vector<imap::MessageMeta>& metas,
                                                                std::vector<uint32_t>& asked);
  /// One message into the committer; exceptions become errors (a bug or a
  /// hostile message must not end the thread). `whole`: the message's bytes
  /// when it was fetched whole (GatherLocal), else nullptr (the server path).
  util::Status Gather(const imap::MessageMeta& meta, std::string* whole = nullptr);
  util::Status GatherUnguarded(const imap::MessageMeta& meta);
  /// A small message fetched whole: parsed here and extracted as `mailhook
  /// parse` does; the event is the one the server path would make.
  util::Status GatherLocal(const imap::MessageMeta& meta, std::string whole);
  /// A message whose structure was too large to fetch: read whole (up to
  /// max_whole_fetch_bytes) and parsed locally under the part cap.
  util::Status GatherWhole(uint32_t uid);
  /// The events of one extracted message, one per matching target. `whole`:
  /// the message's bytes when it was read whole, for the forwards that
  /// attach the original (else it is fetched when one does).
  util::Status AddEvent(const imap::MessageMeta& meta, const mime::MessageContent& content,
                        const std::string* whole = nullptr);
  /// The original as base64 for Route::original_message: encoded from
  /// `whole`, or read with BODY.PEEK[] in pieces; null (not attached) when
  /// it is over mime::kMaxOriginalBytes. An IMAP error is passed on (the
  /// message is tried again; a forward is never sent without its original
  /// because of a dropped connection; see OriginalUnreadable).
  util::Result<std::shared_ptr<const std::string>> OriginalBase64(const imap::MessageMeta& meta,
                                                                  const std::string* whole);
  /// True when reading the original failed for a reason of the message's
  /// own (the server refuses its bytes while the session still answers a
  /// NOOP): the forwards get "original_rfc822": null, "original_omitted":
  /// "unreadable" instead of the message failing for every route. A lost
  /// connection or a busy server is false: the message is tried again; so is
  /// any refusal before the message's last allowed attempt (max_attempts).
  bool OriginalUnreadable(uint32_t uid, const util::Error& error);
  /// The test-only fault point (see FolderWatcher::fault_subject_).
  void Fault(uint32_t uid);
  /// Ok for a message expunged while it was read (ErrorKind::kVanished): it
  /// is skipped and the watermark moves past it. Any other error is passed
  /// on, so the message is tried again (a transient one must never skip it).
  util::Status Skipped(uint32_t uid, const util::Error& error);
  /// The error "transient_once" injects into the extraction, once per watcher.
  std::optional<util::Error> TakeInjectedError();
  /// A message that failed max_attempts times: message.unprocessable.
  util::Status GatherUnprocessable(uint32_t uid, const store::Attempt& attempt);
  /// True for failures that say nothing about the message: a shutdown cut a
  /// command short, or the store failed.
  bool NotTheMessages(const util::Error& error) const { return w_.stop_.fired() || error.IsStore(); }
  /// Remembers why the attempt at `uid` failed (counting it when it failed
  /// `in_batch`, where it was not counted yet) and passes the error on.
  util::Status Blame(uint32_t uid, const util::Error& error, bool in_batch);
  void AddItems(const std::string& event_id, uint32_t uid, const std::vector<Route>& routes,
                const std::function<std::vector<std::shared_ptr<const std::string>>(const Route&)>& payload);

  FolderWatcher& w_;
  imap::Mailbox& session_;
  store::Store& store_;
  const imap::MailboxInfo info_;
  spdlog::logger* log_;                          // the area logger, cached
  std::map<uint32_t, store::Attempt> attempts_;  // UIDs that failed before, by UID
  std::optional<BatchCommitter> committer_;      // set by Start(), from the plan's watermark
  bool inject_transient_ = false;                // set by Fault() for the message being gathered
  bool found_new_ = false;                       // CatchUp processed new messages
  bool cover_left_ = false;                      // CoverHandled left UIDs below the floor
  uint64_t whole_fetch_max_;                     // kWholeFetchMaxBytes, or the test override
  bool old_generation_ = false;                  // fingerprints of another UIDVALIDITY exist
};

}  // namespace mailhook::daemon
