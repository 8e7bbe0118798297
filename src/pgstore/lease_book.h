#pragma once
/// LeaseBook and the quota rules: the decisions of LeaseKeeper (lease_keeper.h)
/// as plain values, with no database, thread or clock of their own, so that
/// they are tested alone (tests/pgstore/lease_book_test.cc).
///
/// A LeaseBook is what one replica believes it holds: each lease's Fence and
/// the monotonic time taken just BEFORE the request that last claimed or
/// renewed it. The server set the lease's expiry to its own clock + TTL at
/// some moment after that request began, so the lease is safe to use until
/// `confirmed + ttl - margin` on the local monotonic clock whatever the
/// server's clock says: the margin covers the two clocks' rates and the time
/// a writer needs to stop. Past that deadline the book hands the lease out no
/// more (Find) and Expire drops it.
///
/// Not thread-safe: LeaseKeeper keeps it under its mutex.

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "pgstore/pg_leases.h"

namespace mailhook::pgstore {

/// The leases one replica holds, with their local deadlines; see the file comment.
class LeaseBook {
 public:
  using SteadyTime = std::chrono::steady_clock::time_point;

  /// `margin` < `ttl`: how long before the TTL ends a lease counts as gone.
  LeaseBook(std::chrono::milliseconds ttl, std::chrono::milliseconds margin) : ttl_(ttl), margin_(margin) {}

  /// The fence of `account` while its deadline is after `now`, else nullopt.
  std::optional<Fence> Find(const std::string& account, SteadyTime now) const;

  /// The server's answer to a renewal or claim asked at `asked`: the leases
  /// it holds now. Leases of the book missing from `fences`, or there at
  /// another generation (lost and taken again), leave the book and are
  /// returned (sorted): their sessions must stop. Those present are confirmed
  /// at `asked` (never moved back). Fences not in the book are not added.
  std::vector<std::string> Confirm(std::span<const Fence> fences, SteadyTime asked);
  /// Adds the fences of `fences` the book lacks (claimed, or dropped by
  /// Expire while the server still held them), confirmed at `asked`; returns
  /// their accounts, sorted: their sessions may start.
  std::vector<std::string> Adopt(std::span<const Fence> fences, SteadyTime asked);
  /// Removes the leases whose deadline is at or before `now`; returns them, sorted.
  std::vector<std::string> Expire(SteadyTime now);
  /// Removes `accounts` (those held); returns the ones removed, sorted.
  std::vector<std::string> Remove(std::span<const std::string> accounts);
  /// Removes every lease; returns their accounts, sorted.
  std::vector<std::string> RemoveAll();

  /// The earliest deadline of the book, nullopt when it is empty.
  std::optional<SteadyTime> NextDeadline() const;
  /// The accounts held, sorted.
  std::vector<std::string> Accounts() const;
  int64_t size() const { return static_cast<int64_t>(held_.size()); }

 private:
  struct Held {
    Fence fence;
    SteadyTime confirmed;
  };
  SteadyTime DeadlineOf(const Held& held) const { return held.confirmed + ttl_ - margin_; }

  std::chrono::milliseconds ttl_;
  std::chrono::milliseconds margin_;
  std::map<std::string, Held> held_;  ///< by account
};

/// How many of `account_count` accounts the replica `me` should hold among
/// `live` replicas (sorted ids; `me` counted even when missing): the count
/// divided evenly, the remainder going one each to the lowest ids, so the
/// quotas of the live replicas add up to the account count exactly and no
/// replica holds more than one above another.
int64_t QuotaOf(int64_t account_count, std::span<const std::string> live, std::string_view me);

/// The accounts to give back this round when holding `held` (sorted) above
/// `quota`: at most `per_round` of them, the last by name (a replica that
/// joined takes them over bit by bit, not in one storm of session restarts).
std::vector<std::string> SurplusToGiveBack(std::span<const std::string> held, int64_t quota, int64_t per_round);

}  // namespace mailhook::pgstore
