#include "pgstore/lease_book.h"

#include <algorithm>

namespace mailhook::pgstore {

std::optional<Fence> LeaseBook::Find(const std::string& account, SteadyTime now) const {
  auto it = held_.find(account);
  if (it == held_.end() || DeadlineOf(it->second) <= now) return std::nullopt;
  return it->second.fence;
}

std::vector<std::string> LeaseBook::Confirm(std::span<const Fence> fences, SteadyTime asked) {
  std::map<std::string, const Fence*> by_account;
  for (const Fence& f : fences) by_account[f.account] = &f;
  std::vector<std::string> lost;
  for (auto it = held_.begin(); it != held_.end();) {
    auto found = by_account.find(it->first);
    if (found == by_account.end() || !(*found->second == it->second.fence)) {
      lost.push_back(it->first);
      it = held_.erase(it);
      continue;
    }
    it->second.confirmed = std::max(it->second.confirmed, asked);
    ++it;
  }
  return lost;  // sorted: the map's order
}

std::vector<std::string> LeaseBook::Adopt(std::span<const Fence> fences, SteadyTime asked) {
  std::vector<std::string> added;
  for (const Fence& f : fences) {
    if (held_.count(f.account) != 0) continue;
    held_.emplace(f.account, Held{f, asked});
    added.push_back(f.account);
  }
  std::sort(added.begin(), added.end());
  return added;
}

std::vector<std::string> LeaseBook::Expire(SteadyTime now) {
  std::vector<std::string> gone;
  for (auto it = held_.begin(); it != held_.end();) {
    if (DeadlineOf(it->second) <= now) {
      gone.push_back(it->first);
      it = held_.erase(it);
    } else {
      ++it;
    }
  }
  return gone;
}

std::vector<std::string> LeaseBook::Remove(std::span<const std::string> accounts) {
  std::vector<std::string> removed;
  for (const std::string& account : accounts) {
    if (held_.erase(account) != 0) removed.push_back(account);
  }
  std::sort(removed.begin(), removed.end());
  return removed;
}

std::vector<std::string> LeaseBook::RemoveAll() {
  std::vector<std::string> all = Accounts();
  held_.clear();
  return all;
}

std::optional<LeaseBook::SteadyTime> LeaseBook::NextDeadline() const {
  std::optional<SteadyTime> next;
  for (const auto& [account, held] : held_) {
    if (!next || DeadlineOf(held) < *next) next = DeadlineOf(held);
  }
  return next;
}

std::vector<std::string> LeaseBook::Accounts() const {
  std::vector<std::string> out;
  out.reserve(held_.size());
  for (const auto& [account, held] : held_) out.push_back(account);
  return out;
}

int64_t QuotaOf(int64_t account_count, std::span<const std::string> live, std::string_view me) {
  std::vector<std::string_view> ids(live.begin(), live.end());
  if (std::find(ids.begin(), ids.end(), me) == ids.end()) ids.push_back(me);
  std::sort(ids.begin(), ids.end());
  const int64_t replicas = static_cast<int64_t>(ids.size());
  const int64_t rank = std::find(ids.begin(), ids.end(), me) - ids.begin();
  return account_count / replicas + (rank < account_count % replicas ? 1 : 0);
}

std::vector<std::string> SurplusToGiveBack(std::span<const std::string> held, int64_t quota, int64_t per_round) {
  const int64_t surplus = static_cast<int64_t>(held.size()) - std::max<int64_t>(quota, 0);
  const int64_t n = std::min(surplus, per_round);
  if (n <= 0) return {};
  return std::vector<std::string>(held.end() - n, held.end());
}

}  // namespace mailhook::pgstore
