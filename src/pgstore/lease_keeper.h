#pragma once
/// LeaseKeeper: the thread that keeps one replica's leases (issue #11) over
/// PgLeases (pg_leases.h). Every round (ttl/3, woken early by SetAccounts or
/// Stop) it heartbeats, renews what it holds, claims accounts up to its
/// quota, and gives back at most `give_back_per_round` accounts when it
/// holds more (a replica joined): a joiner takes its share bit by bit, with
/// no storm of session restarts. The quota divides the configured accounts
/// among the live replicas exactly (lease_book.h: QuotaOf), so every replica
/// ends within one account of every other.
///
/// Sessions follow the leases through two callbacks: `acquired` once the
/// account's Fence is visible through FenceFor, `released` before a lease is
/// given back and whenever a lease may end unrenewed. Safety does not wait
/// for the database: each lease has a deadline on the local monotonic clock
/// (the start of the round that last renewed or claimed it + ttl - ttl/6,
/// LeaseBook; FenceFor hides the fence from then on), and a second thread
/// calls `released` at that deadline even while the round thread is stuck in
/// a call to an unreachable server. So a replica that cannot renew stops its
/// sessions before the TTL ends, and PgStore's fence check (CheckFence)
/// refuses whatever it might still try.
///
/// A broken connection is thrown away; the keeper reconnects with a backoff
/// (up to ttl/3) and goes on as the same replica (PgLeases::Rejoin). A
/// replica paused past its TTL (SIGSTOP) finds its leases expired: Renew
/// skips them, `released` is called, and it rejoins as a member with the
/// next Heartbeat. Errors are logged (store area, no URL password: messages
/// come from PgConnection, which redacts it) and counted, never thrown.
///
/// Thread-safety: every public method is thread-safe, except that the
/// callbacks must not call Stop (it joins the thread that runs them).

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "pgstore/lease_book.h"
#include "pgstore/pg_connection.h"
#include "pgstore/pg_leases.h"
#include "pgstore/pg_store.h"
#include "util/mutex.h"
#include "util/result.h"
#include "util/thread_annotations.h"

namespace mailhook::pgstore {

/// What a LeaseKeeper works with.
struct LeaseKeeperOptions {
  /// Opens a fresh, migrated connection to the store (called again after a
  /// break). Its failures are logged as they come: no password in them.
  std::function<util::Result<std::unique_ptr<PgConnection>>()> connect;
  /// store.lease_ttl: rounds run every ttl/3; a lease counts as gone locally
  /// ttl/6 before the TTL ends.
  std::chrono::milliseconds ttl{30000};
  /// Written in replicas.host (cluster status).
  std::string host;
  /// The configured accounts: the same list on every replica.
  std::vector<std::string> accounts;
  /// At most this many accounts given back per round when above the quota.
  int64_t give_back_per_round = 1;
};

/// Where the sessions start and stop. Both run on the keeper's threads (the
/// first round's on Run's caller), one call at a time, never both at once;
/// they must not throw.
struct LeaseKeeperCallbacks {
  /// Start these accounts' sessions: their Fences are visible through FenceFor.
  std::function<void(const std::vector<std::string>& accounts)> acquired;
  /// Stop these accounts' sessions, returning only when they can no longer
  /// commit. FenceFor returns nullopt for them from before this call.
  std::function<void(const std::vector<std::string>& accounts)> released;
};

/// Counters for /metrics (monotonic, except `owned`).
struct LeaseKeeperStats {
  int64_t owned = 0;          ///< leases held now
  int64_t renewals = 0;       ///< leases renewed (one per lease per round)
  int64_t losses = 0;         ///< leases that ended unrenewed (expired locally, or taken over)
  int64_t rounds_failed = 0;  ///< rounds that did not reach the database or failed in it
  int64_t given_back = 0;     ///< leases given back to rebalance or after a config change
};

/// One replica's lease keeper; see the file comment.
class LeaseKeeper {
 public:
  using SteadyTime = std::chrono::steady_clock::time_point;

  /// Connects and registers a fresh replica; no round yet, no thread. The
  /// caller can now give replica_id() and fences() to what its `acquired`
  /// callback will start (PgStoreOptions), then Run(). Fails when the first
  /// connection or Register fails (the Error of PgConnection / PgLeases).
  static util::Result<std::unique_ptr<LeaseKeeper>> Open(LeaseKeeperOptions options, LeaseKeeperCallbacks callbacks);
  /// Runs the first round on the caller's thread (its `acquired` call
  /// included), then starts the threads. A failed first round is counted and
  /// retried by the thread like any other. Once; a no-op after Stop.
  void Run() EXCLUDES(stop_mu_, mu_, cb_mu_);
  /// Open, then Run.
  static util::Result<std::unique_ptr<LeaseKeeper>> Start(LeaseKeeperOptions options, LeaseKeeperCallbacks callbacks);

  /// Stop()s.
  ~LeaseKeeper();
  LeaseKeeper(const LeaseKeeper&) = delete;
  LeaseKeeper& operator=(const LeaseKeeper&) = delete;

  /// The Fence of `account` while this replica holds its lease and its local
  /// deadline has not passed; nullopt otherwise. Cheap (a map lookup under a
  /// mutex): PgStore's FenceSource.
  std::optional<Fence> FenceFor(const std::string& account) const EXCLUDES(mu_);
  /// A FenceSource bound to this keeper (which must outlive it).
  FenceSource fences() const;
  /// This replica's uuid (replicas.id, the outbox's lease_owner).
  const std::string& replica_id() const { return id_; }
  /// Whether the last round reached the database and completed (/readyz).
  bool reachable() const EXCLUDES(mu_);
  LeaseKeeperStats stats() const EXCLUDES(mu_);
  /// The accounts held now, sorted.
  std::vector<std::string> owned() const EXCLUDES(mu_);

  /// Replaces the configured accounts (a config reload) and runs a round
  /// soon: leases of accounts no longer configured are released and given back.
  void SetAccounts(std::vector<std::string> accounts) EXCLUDES(mu_);
  /// Releases every lease (`released`), then leaves the cluster
  /// (PgLeases::Leave: the others take the accounts over at once, not after
  /// the TTL) and joins the threads; an Open keeper never Run leaves too.
  /// Idempotent.
  void Stop() EXCLUDES(stop_mu_, mu_, cb_mu_);

 private:
  LeaseKeeper(LeaseKeeperOptions options, LeaseKeeperCallbacks callbacks);

  /// The round thread: rounds until Stop, then Leave.
  void RunRounds(SteadyTime next) EXCLUDES(mu_, cb_mu_);
  /// The deadline thread: releases leases whose local deadline passed.
  void RunDeadlines() EXCLUDES(mu_, cb_mu_);
  /// One round with its bookkeeping; returns when the next one is due.
  SteadyTime Round() EXCLUDES(mu_, cb_mu_);
  util::Status RoundSteps(SteadyTime started) EXCLUDES(mu_, cb_mu_);
  /// Connects (and rejoins as id_) unless connected.
  util::Status EnsureConnected();
  util::Status RenewHeld(SteadyTime started, std::vector<std::string>& unconfigured) EXCLUDES(mu_, cb_mu_);
  util::Status ClaimQuota(SteadyTime started, const std::vector<std::string>& accounts) EXCLUDES(mu_, cb_mu_);
  /// Releases `accounts` (those in the book), then gives them back.
  util::Status GiveBack(const std::vector<std::string>& accounts) EXCLUDES(mu_, cb_mu_);
  /// After `gone` left the book: logs `event` (a warning when `lost`: the
  /// lease ended unrenewed), then calls `released`.
  void Released(const std::vector<std::string>& gone, const char* event, bool lost) REQUIRES(cb_mu_) EXCLUDES(mu_);
  /// The end: everything released, then Leave (one reconnect if needed).
  void Leave() EXCLUDES(mu_, cb_mu_);

  const LeaseKeeperOptions options_;
  const LeaseKeeperCallbacks callbacks_;
  std::string id_;  ///< set by Open, before any thread

  // The round thread's own (Open's and Run's before it runs, Stop's if it never ran).
  std::unique_ptr<PgConnection> conn_;
  std::unique_ptr<PgLeases> leases_;
  std::chrono::milliseconds backoff_{0};
  int64_t round_count_ = 0;

  /// Held while the book changes together with a callback, so that the
  /// callbacks of the two threads never overlap or run out of order.
  mutable util::Mutex cb_mu_ ACQUIRED_BEFORE(mu_);
  mutable util::Mutex mu_;
  util::CondVar wake_rounds_;     ///< Stop, SetAccounts
  util::CondVar wake_deadlines_;  ///< Stop, a book change
  LeaseBook book_ GUARDED_BY(mu_);
  std::vector<std::string> accounts_ GUARDED_BY(mu_);
  bool accounts_changed_ GUARDED_BY(mu_) = false;
  bool stop_ GUARDED_BY(mu_) = false;            ///< the round thread ends
  bool stop_deadlines_ GUARDED_BY(mu_) = false;  ///< the deadline thread ends (after it)
  bool reachable_ GUARDED_BY(mu_) = false;
  LeaseKeeperStats stats_ GUARDED_BY(mu_);

  util::Mutex stop_mu_ ACQUIRED_BEFORE(cb_mu_);  ///< one Stop at a time
  bool stopped_ GUARDED_BY(stop_mu_) = false;
  bool ran_ GUARDED_BY(stop_mu_) = false;
  std::thread rounds_;
  std::thread deadlines_;
};

}  // namespace mailhook::pgstore
