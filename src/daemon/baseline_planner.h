#pragma once
/// Baseline planner: where a folder's processing starts when a session
/// begins, as a pure function of the stored watermark, what the server said
/// and the account's start_from. No I/O: the watcher asks the server what
/// the plan needs (NeedsHighestUid, NeedsUnseen) and then calls PlanStart.

#include <cstdint>
#include <optional>
#include <vector>

#include "config/config.h"
#include "store/store.h"

namespace mailhook::daemon {

/// Why a session starts where it starts.
enum class StartKind {
  kResume,              ///< a watermark of this UIDVALIDITY is stored: go on from it
  kFirstStart,          ///< nothing stored: baseline by start_from
  kUidValidityChanged,  ///< stored under another UIDVALIDITY: every old UID is void; baseline
};

/// What the server said about the folder (SELECT, and the searches the plan
/// asked for).
struct ServerStatus {
  uint32_t uidvalidity = 0;
  uint32_t uidnext = 0;  ///< 0: the server did not say
  /// The highest UID in the folder (asked for when uidnext is 0); nullopt
  /// when the folder is empty or it was not asked.
  std::optional<uint32_t> highest_uid;
  /// UIDs without \Seen, ascending (asked for with start_from: unseen).
  std::vector<uint32_t> unseen;
};

/// Where to start.
struct StartPlan {
  StartKind kind = StartKind::kResume;
  /// The watermark the session works from. kResume: the stored one. A
  /// baseline without a first pass: {uidvalidity, end}, to be stored at
  /// once. A baseline with a first pass: {uidvalidity, 0}, stored only when
  /// the pass is committed whole (see first_pass_end).
  store::Watermark mark;
  /// UIDs processed before the watermark is first stored (start_from:
  /// unseen, those up to first_pass_end); empty otherwise.
  std::vector<uint32_t> first_pass;
  /// The watermark's last_uid once the first pass is committed: the end of
  /// the folder when the session began (start_from: all → 0).
  uint32_t first_pass_end = 0;
  /// True when `mark` is a new baseline to store before anything else.
  bool store_mark_now = false;
};

/// kResume, kFirstStart or kUidValidityChanged.
StartKind ClassifyStart(const std::optional<store::Watermark>& stored, uint32_t uidvalidity);
/// True when the plan needs the folder's highest UID: a baseline on a server
/// that did not report UIDNEXT.
bool NeedsHighestUid(StartKind kind, uint32_t uidnext);
/// True when the plan needs the unseen UIDs (a baseline with start_from: unseen).
bool NeedsUnseen(StartKind kind, config::StartFrom start_from);
/// The plan. Rules: a stored watermark of the same UIDVALIDITY is resumed;
/// otherwise the folder's current end (UIDNEXT - 1, or the highest UID) is
/// the baseline: start_from new starts after it, all starts at 0 (every
/// message is new), unseen processes the unseen messages up to the end
/// first and stores the baseline after them (those above it are new anyway).
StartPlan PlanStart(const std::optional<store::Watermark>& stored, const ServerStatus& server,
                    config::StartFrom start_from);

/// "new", "all" or "unseen", for logs.
const char* StartFromName(config::StartFrom start_from);

}  // namespace mailhook::daemon
