#include "store/outbox.h"

#include <map>
#include <string>
#include <utility>

#include "store/claim_rows.h"

namespace mailhook::store {

util::Result<std::vector<Delivery>> Outbox::ClaimDue(TimePoint now, int limit, std::chrono::milliseconds lease,
                                                     const std::vector<std::string>& skip_targets) {
  ClaimRequest request;
  request.now = now;
  request.limit = limit;
  request.lease = lease;
  request.skip_targets = skip_targets;
  auto claimed = Claim(request);
  if (!claimed.ok()) return claimed.error();
  return std::move(claimed->rows);
}

std::string InlinePayload(const OutboxItem& item, uint64_t size) {
  std::string out;
  if (size == 0 || size > kInlinePiecesMax) return out;
  out.reserve(size);
  for (const auto& piece : item.pieces) out += *piece;
  return out;
}

ClaimResult ChooseClaimed(const ClaimRequest& request, std::vector<Delivery> due) {
  ClaimResult out;
  std::map<std::string, int> room = request.room;
  for (auto& d : due) {
    auto it = room.find(d.item.target);
    if (it != room.end() && it->second-- <= 0) {
      out.more = true;
      continue;
    }
    out.rows.push_back(std::move(d));
  }
  if (out.rows.size() > static_cast<size_t>(request.limit)) {
    out.rows.resize(static_cast<size_t>(request.limit));
    out.more = true;
  }
  return out;
}

util::Status Outbox::MarkDelivered(int64_t id) { return MarkDelivered(std::vector<int64_t>{id}); }

util::Result<std::optional<TimePoint>> Outbox::NextDueAt() { return NextDueAt(std::vector<std::string>{}); }

}  // namespace mailhook::store
