#include "store/outbox.h"

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

util::Status Outbox::MarkDelivered(int64_t id) { return MarkDelivered(std::vector<int64_t>{id}); }

util::Result<std::optional<TimePoint>> Outbox::NextDueAt() { return NextDueAt(std::vector<std::string>{}); }

}  // namespace mailhook::store
