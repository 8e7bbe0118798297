#include "daemon/baseline_planner.h"

#include <algorithm>

namespace mailhook::daemon {

StartKind ClassifyStart(const std::optional<store::Watermark>& stored, uint32_t uidvalidity) {
  if (!stored) return StartKind::kFirstStart;
  // RFC 3501 §2.3.1.1: under a new UIDVALIDITY every old UID is void.
  // Replaying the whole folder would flood the targets, so re-baseline like
  // a first start.
  if (stored->uidvalidity != uidvalidity) return StartKind::kUidValidityChanged;
  return StartKind::kResume;
}

bool NeedsHighestUid(StartKind kind, uint32_t uidnext) { return kind != StartKind::kResume && uidnext == 0; }

bool NeedsUnseen(StartKind kind, config::StartFrom start_from) {
  return kind != StartKind::kResume && start_from == config::StartFrom::kUnseen;
}

StartPlan PlanStart(const std::optional<store::Watermark>& stored, const ServerStatus& server,
                    config::StartFrom start_from) {
  StartPlan plan;
  plan.kind = ClassifyStart(stored, server.uidvalidity);
  if (plan.kind == StartKind::kResume) {
    plan.mark = *stored;
    return plan;
  }
  uint32_t end = server.uidnext > 0 ? server.uidnext - 1 : server.highest_uid.value_or(0);
  if (start_from == config::StartFrom::kAll) end = 0;
  if (start_from == config::StartFrom::kUnseen) {
    // Those above the end are new and come with the catch-up.
    for (uint32_t uid : server.unseen) {
      if (uid <= end) plan.first_pass.push_back(uid);
    }
  }
  plan.first_pass_end = end;
  plan.mark = store::Watermark{server.uidvalidity, plan.first_pass.empty() ? end : 0};
  plan.store_mark_now = plan.first_pass.empty();
  return plan;
}

const char* StartFromName(config::StartFrom start_from) {
  switch (start_from) {
    case config::StartFrom::kAll: return "all";
    case config::StartFrom::kUnseen: return "unseen";
    case config::StartFrom::kNew: break;
  }
  return "new";
}

}  // namespace mailhook::daemon
