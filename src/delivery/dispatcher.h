#pragma once
/// Dispatcher: the delivery pool. Worker threads, each with its own Store,
/// claim due outbox rows (a lease in the database keeps a row with one worker),
/// deliver them to the Target named in the row and record the result: success
/// deletes the row, a retryable failure reschedules it per the target's
/// RetryPolicy, a permanent failure or an exhausted schedule moves it to the
/// dead letters. Idle workers sleep until the next due time or a Wake().
///
/// Lifecycle: construct, RegisterTarget/SetOnOutcome (optional), Start, Wake any
/// number of times from any thread, Stop (also run by the destructor). Stop
/// order: refuse new claims, cancel in-flight requests (their rows are released
/// unrecorded, so they are redelivered: at-least-once), join the workers.
///
/// Thread-safety: Wake and Stop are thread-safe; RegisterTarget and SetOnOutcome
/// only before Start. The on-outcome callback runs on a worker thread.

#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "config/config.h"
#include "delivery/retry_policy.h"
#include "delivery/target.h"
#include "util/result.h"

namespace mailhook::delivery {

/// What happened to one attempt, for observers (tests, post-actions).
struct Report {
  int64_t id = 0;
  std::string event_id;
  std::string target;
  /// kSuccess: delivered; kRetry: rescheduled; kPermanent: moved to dead letters
  /// (a permanent failure or an exhausted schedule).
  OutcomeKind result = OutcomeKind::kRetry;
  Outcome outcome;  ///< the attempt's raw outcome
  int attempts = 0;
  std::string account;  ///< where the event's message lives
  std::string folder;
};

/// Tunables; the defaults suit the daemon.
struct DispatcherOptions {
  int workers = 2;
  /// How long a claimed row stays with its worker; longer than any timeout.
  std::chrono::milliseconds lease = std::chrono::minutes(15);
  /// Wait after a store error before the worker tries again.
  std::chrono::milliseconds store_error_backoff = std::chrono::seconds(1);
  /// Longest sleep with nothing due: rows replayed by another process are
  /// noticed within this time.
  std::chrono::milliseconds idle_poll = std::chrono::seconds(2);
};

/// The delivery pool.
class Dispatcher {
 public:
  /// Registers a WebhookTarget for every config webhook as "webhook:<name>"
  /// and a HookTarget for every config hook as "hook:<name>".
  /// Bad webhook definitions surface as an error from Start().
  Dispatcher(const config::Config& config, std::string version, DispatcherOptions options = {});
  ~Dispatcher();
  Dispatcher(const Dispatcher&) = delete;
  Dispatcher& operator=(const Dispatcher&) = delete;

  /// Extension point (e.g. "hook:<name>"): adds or replaces a target. Before Start.
  void RegisterTarget(const std::string& key, std::shared_ptr<Target> target,
                      RetryPolicy policy);

  /// Called after every recorded attempt. Before Start.
  void SetOnOutcome(std::function<void(const Report&)> callback);

  /// Opens one Store per worker, frees stale leases of a previous run and starts
  /// the workers. Fails (starting nothing) when a target or the store is bad.
  util::Status Start();

  /// New rows were committed: idle workers look again.
  void Wake();

  /// Stops and joins the workers (see the order above). Idempotent.
  void Stop();

 private:
  struct Entry {
    std::shared_ptr<Target> target;
    RetryPolicy policy;
  };
  void Run(int index, std::unique_ptr<store::Store> store);
  void Process(store::Store& store, const store::Delivery& row, std::mt19937_64& rng);
  void UpdateGauges(store::Store& store);
  /// Sleeps until `until`, a Wake after `seen`, or Stop.
  void WaitUntil(std::chrono::system_clock::time_point until, uint64_t seen);

  const std::string state_dir_;
  const DispatcherOptions options_;
  std::map<std::string, Entry> targets_;  // fixed after Start
  std::vector<util::Error> setup_errors_;
  std::function<void(const Report&)> on_outcome_;

  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;  // guarded by mu_
  uint64_t wake_seq_ = 0;  // guarded by mu_; bumped by Wake
  std::vector<std::thread> workers_;
};

}  // namespace mailhook::delivery
