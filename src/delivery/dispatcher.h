#pragma once
/// Dispatcher: the delivery pool. Worker threads claim due outbox rows (a
/// lease keeps a row with one worker: in this process for SQLite, so a claim
/// writes nothing; in the row for PostgreSQL), deliver them to the
/// Target named in the row and record the result: success
/// deletes the row, a retryable failure reschedules it per the target's
/// RetryPolicy, a permanent failure or an exhausted schedule moves it to the
/// dead letters. Idle workers sleep until the next due time or a Wake();
/// one of them also looks again every idle_poll (rows from another process).
///
/// Store writes (issue 8): the workers share one store connection, so its
/// page cache stays warm. A success is marked delivered after the 2xx by a
/// later claim (a crash in between sends it again: at least once; its lease
/// keeps it from every other worker meanwhile). Marks wait for company: a
/// claim records them once kMarkBatch wait or the oldest has waited
/// kMarkDelay, and a worker that finds nothing to claim records them when no
/// other delivery is in flight (else it sleeps until kMarkDelay is up).
/// The worker that holds the claim lock records the marks and claims a row
/// for every worker waiting for the lock, all in one write transaction, so a
/// delivery costs at most one write transaction and a burst's deliveries
/// share one per kMarkDelay. A success is logged, counted and reported once
/// its mark is recorded (by the worker that recorded it). A Wake wakes one
/// idle worker, and a worker that leaves due rows behind wakes the next, so
/// a commit of one message does not wake every idle worker to find nothing.
///
/// Lifecycle: construct, RegisterTarget/SetOnOutcome (optional), Start, Wake any
/// number of times from any thread, Stop (also run by the destructor). Stop
/// order: refuse new claims, fire the stop token every Deliver gets (in-flight
/// requests end; their rows are released unrecorded, so they are redelivered:
/// at-least-once), join the workers.
///
/// Thread-safety: Wake, Stop and Healthy are thread-safe; RegisterTarget and
/// SetOnOutcome only before Start. The on-outcome callback runs on a worker thread.
///
/// Isolation: each target has a concurrency limit (config `concurrency`,
/// default 4); a worker never claims a row of a target that has that many
/// deliveries in flight, and there are more workers than all limits together,
/// so a hanging target holds at most its own share. An exception from a
/// delivery reschedules its row as a failed attempt; an exception that escapes
/// a worker's loop restarts that worker after a pause (counted in
/// mailhook_dispatcher_worker_restarts_total); Healthy() is false meanwhile.

#include <atomic>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "config/config.h"
#include "delivery/retry_policy.h"
#include "delivery/target.h"
#include "store/open_store.h"
#include "store/store.h"
#include "util/cancel_token.h"
#include "util/clock.h"
#include "util/metrics_catalog.h"
#include "util/mutex.h"
#include "util/result.h"
#include "util/target_id.h"
#include "util/thread_annotations.h"

namespace mailhook::delivery {

class ReplyLedger;       // smtp_target.h
class OAuth2TokenCache;  // oauth2_token_cache.h
class SmtpTarget;

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
  /// Worker threads; 0: one more than the sum of the targets' concurrency,
  /// so that no set of hanging targets can take every worker.
  int workers = 0;
  /// How long a claimed row stays with its worker; longer than any timeout.
  std::chrono::milliseconds lease = std::chrono::minutes(15);
  /// Wait after a store error before the worker tries again.
  std::chrono::milliseconds store_error_backoff = std::chrono::seconds(1);
  /// Longest sleep of the one idle worker that polls: rows replayed by
  /// another process are noticed within this time. The other idle workers
  /// sleep until a Wake (a commit), a due time or a freed slot.
  std::chrono::milliseconds idle_poll = std::chrono::seconds(2);
  /// Pause before a worker whose loop threw starts again.
  std::chrono::milliseconds restart_backoff = std::chrono::seconds(1);
  /// Where "now" is read for what is due and when a retry is due (tests pass
  /// a util::ManualClock); nullptr: util::Clock::Real(). Sleeps stay on the
  /// real clock and are bounded by idle_poll.
  const util::Clock* clock = nullptr;
  /// Opens the workers' store and the reply ledger's; empty: SQLite in the
  /// config's state_dir (the daemon passes its configured store's opener).
  store::StoreOpener open_store;
};

/// The delivery pool.
class Dispatcher {
 public:
  /// Registers a WebhookTarget for every config webhook and a HookTarget for
  /// every config hook, resolving their secrets (this may run *_command
  /// helpers). A bad webhook definition or a secret that cannot be resolved
  /// surfaces as an error from Start(). Attempts, durations, gauges and worker restarts are recorded in
  /// `metrics`, which must outlive this.
  Dispatcher(const config::Config& config, const std::string& version, const util::MetricsCatalog& metrics,
             DispatcherOptions options = {});
  ~Dispatcher();
  Dispatcher(const Dispatcher&) = delete;
  Dispatcher& operator=(const Dispatcher&) = delete;

  /// Extension point: adds or replaces a target, with at most `concurrency`
  /// deliveries in flight to it. Before Start.
  void RegisterTarget(const util::TargetId& id, std::shared_ptr<Target> target, RetryPolicy policy,
                      int concurrency = config::kDefaultConcurrency);

  /// A config reload: builds the targets of `config` named in `rebuild`
  /// (added or changed, as util::TargetId::ToString) and, only when every one
  /// of them built, swaps them in and drops those in `remove`; otherwise
  /// changes nothing and returns the first error. Other targets keep their
  /// objects (and connections). A delivery in flight keeps the target it
  /// started with and is recorded as usual; rows waiting for a changed target
  /// go to the new one; rows of a removed target become dead letters when due
  /// (as after a restart without it: replayable). Starts more workers when
  /// the new limits need them. From the thread that calls Start and Stop.
  util::Status UpdateTargets(const config::Config& config, const std::set<std::string>& rebuild,
                             const std::set<std::string>& remove);

  /// Called after every recorded attempt. Before Start.
  void SetOnOutcome(std::function<void(const Report&)> callback);

  /// Opens the workers' Store, frees stale leases of a previous run and starts
  /// the workers. Fails (starting nothing) when a target or the store is bad.
  util::Status Start();

  /// New rows were committed: idle workers look again.
  void Wake();

  /// Stops and joins the workers (see the order above). Idempotent.
  void Stop();

  /// True while started and every worker runs its loop (false while one waits
  /// to restart after a crash). For /readyz.
  bool Healthy() const;

  /// Test seam: runs on the worker after its last stop check, right before
  /// Deliver, with the token Deliver gets (a test lands a Stop() there).
  void SetBeforeDeliverForTest(std::function<void(const util::CancelToken&)> hook) {
    before_deliver_ = std::move(hook);
  }

  /// Test seam: runs on a worker that found nothing it may claim, right
  /// before it sleeps, with the worker's index. Before Start.
  void SetOnIdleForTest(std::function<void(int worker)> hook) { on_idle_ = std::move(hook); }

 private:
  struct Entry {
    util::TargetId id;
    util::TargetMetrics metrics;  // bound at registration
    std::shared_ptr<Target> target;
    RetryPolicy policy;
    int concurrency = config::kDefaultConcurrency;
    int in_flight = 0;  // guarded by mu_ (a member of a map entry: not annotatable)
  };
  class Slot;
  /// A delivery that got its 2xx; its row is still to be marked delivered
  /// (by a later claim, see kMarkDelay), then it is logged and reported.
  struct Finished {
    Report report;
    Entry entry;
    std::chrono::nanoseconds elapsed{0};
  };
  /// What Claim did for the calling worker.
  struct Claimed {
    /// The row claimed for it (none: nothing it may claim is due).
    util::Result<std::vector<store::Delivery>> rows = std::vector<store::Delivery>{};
    /// More rows are due than this claim took: another worker should look.
    bool more = false;
    /// Successes whose marks this claim recorded (any worker's), to be
    /// finished by the caller, and whether the record committed.
    std::vector<Finished> recorded;
    util::Status marked = util::Ok();
    /// When the marks still waiting are due to be recorded (none waiting: unset).
    std::optional<std::chrono::system_clock::time_point> marks_due;
  };
  /// The targets of `config` that `wanted` selects, built (secrets resolved);
  /// problems go to `errors`.
  std::vector<Entry> Build(const config::Config& config, const std::function<bool(const util::TargetId&)>& wanted,
                           std::vector<util::Error>& errors);
  /// One smtp target: sending through SubmissionSender with its password
  /// resolved now, or with its OAuth2 token cache (smtp_tokens_); its replies
  /// in the shared ledger.
  util::Result<std::unique_ptr<SmtpTarget>> BuildSmtpTarget(const config::SmtpTarget& smtp);
  /// A copy of a target's entry (the workers' view, taken under mu_: a
  /// reload may replace it meanwhile); nullopt when it is not configured.
  std::optional<Entry> Find(const std::string& target) EXCLUDES(mu_);
  /// Starts `count` more workers.
  util::Status StartWorkers(int count);
  void Run(int index) EXCLUDES(mu_);
  /// The claim-deliver loop; returns on Stop, throws on a bug.
  void Loop(int index, std::mt19937_64& rng) EXCLUDES(mu_);
  /// Adds `finished` (a row of this worker that got its 2xx) to the marks
  /// waiting, records them when due (all when not `want_row`: stopping) and,
  /// when `want_row`, takes one due row of a target below its limit (set
  /// aside for it by another worker's claim, or claimed now) with a slot for it.
  Claimed Claim(std::optional<Finished> finished, bool want_row) EXCLUDES(mu_, store_mu_);
  /// Moves the waiting marks to `taken`, their ids to `ids`.
  void TakeMarks(std::vector<Finished>& taken, std::vector<int64_t>& ids) REQUIRES(mu_);
  /// A worker that found nothing to claim: records the waiting marks into
  /// `out` when no delivery is in flight (none would come back to claim).
  void RecordWhenLast(Claimed& out, std::vector<int64_t>& ids) REQUIRES(store_mu_) EXCLUDES(mu_);
  /// After the workers stopped: records marks none of them recorded.
  void RecordLeftMarks() EXCLUDES(mu_, store_mu_);
  /// Logs, counts and reports a success once its row is recorded.
  void Finish(Finished& done, const util::Status& recorded);
  /// Finishes every success the claim recorded; rethrows the first exception.
  void FinishRecorded(Claimed& claimed);
  /// FinishRecorded; when it throws, gives back the row claimed with the record.
  void FinishBeforeNext(Claimed& claimed);
  /// Rows set aside that no worker took (Stop): their leases and slots back.
  void ReleaseUnhanded() EXCLUDES(mu_, store_mu_);
  util::Result<std::optional<std::chrono::system_clock::time_point>> NextDueAt(const std::vector<std::string>& skip)
      EXCLUDES(store_mu_);
  void ReleaseLease(int64_t id) EXCLUDES(store_mu_);
  /// Targets at their concurrency limit.
  std::vector<std::string> SaturatedTargets() REQUIRES(mu_);
  bool Stopping() EXCLUDES(mu_);
  /// Delivers one row and records a failure; a success comes back to be
  /// recorded by a later claim.
  std::optional<Finished> Process(const store::Delivery& row, std::mt19937_64& rng);
  /// Delivers one row and records a failure; false when nothing was recorded
  /// (shutdown, store error): no report then. A success goes to `finished`.
  bool Attempt(const store::Delivery& row, std::mt19937_64& rng, Report& report, std::optional<Finished>& finished);
  /// Records a failed attempt: a retry per the policy, else a dead letter.
  /// False when the store failed (the row stays leased).
  /// `entry` is null for a row whose target is not configured.
  bool RecordFailure(const store::Delivery& row, const Entry* entry, std::mt19937_64& rng, Report& report)
      EXCLUDES(store_mu_);
  /// store_, replaced by a new one first when it broke (Store::broken).
  store::Store& StoreLocked() REQUIRES(store_mu_);
  /// Counts the outbox and the dead letters into their gauges. `busy`: more
  /// work follows at once (this worker got another row, or a retry was
  /// recorded), so a count less than kGaugesEvery after the last one is left
  /// out (or less than ten times what the last count took). Counting after
  /// every delivery would make draining a backlog of n rows cost n² (on
  /// PostgreSQL, two table scans per message under the claim lock); the count
  /// that leaves a worker without work is always made, so the gauges of a
  /// dispatcher that caught up are exact before its last outcome is reported.
  void UpdateGauges(store::Store& store, bool busy) REQUIRES(store_mu_);
  /// At most once per kSmtpHousekeepEvery (by clock_), on whichever worker
  /// comes first: store::Store::HousekeepSmtp with the longest smtp window.
  void HousekeepSmtp() EXCLUDES(mu_, store_mu_);
  /// Sleeps until `until`, a Wake after `seen`, or Stop; false when `until` came first.
  bool WaitUntil(std::chrono::system_clock::time_point until, uint64_t seen) EXCLUDES(mu_);

  const store::StoreOpener open_store_;
  const std::string version_;
  const DispatcherOptions options_;
  const util::MetricsCatalog& metrics_;
  const util::Clock& clock_;
  std::shared_ptr<ReplyLedger> reply_ledger_;  // smtp targets' replies; made by the first Build that needs it
  std::map<std::string, Entry> targets_;       // by the stored text of the id; under mu_ once started (UpdateTargets)
  std::vector<util::Error> setup_errors_;
  std::function<void(const Report&)> on_outcome_;
  std::function<void(const util::CancelToken&)> before_deliver_;  // test seam; before Start
  std::function<void(int)> on_idle_;                              // test seam; before Start

  /// smtp targets' OAuth2 token caches by target name, kept across a reload
  /// while the oauth2 block stays the same (Build's, as reply_ledger_).
  std::map<std::string, std::shared_ptr<OAuth2TokenCache>> smtp_tokens_;

  /// How often smtp_sent and smtp_recipients are pruned.
  static constexpr std::chrono::hours kSmtpHousekeepEvery{1};
  static constexpr std::chrono::milliseconds kGaugesEvery{250};
  /// How long a success's mark waits for others to share its write
  /// transaction, and how many may share one. Its log line, counts and
  /// report wait as long (the webhook was already sent).
  static constexpr std::chrono::milliseconds kMarkDelay{20};
  static constexpr size_t kMarkBatch = 64;

  /// Fired by Stop and passed to every Deliver: the one way a delivery is
  /// cancelled. Reset by Start.
  util::CancelToken stop_;
  /// The one store connection of the workers, and one claim at a time (so
  /// limits hold between look and claim). Opened by Start.
  util::Mutex store_mu_ ACQUIRED_BEFORE(mu_);
  std::unique_ptr<store::Store> store_ PT_GUARDED_BY(store_mu_);
  bool store_reopen_failing_ GUARDED_BY(store_mu_) = false;
  std::chrono::steady_clock::time_point next_reopen_ GUARDED_BY(store_mu_);
  std::optional<std::chrono::steady_clock::time_point> gauges_at_ GUARDED_BY(store_mu_);
  std::chrono::steady_clock::duration gauges_took_ GUARDED_BY(store_mu_){};
  mutable util::Mutex mu_;
  util::CondVar cv_;
  bool stopping_ GUARDED_BY(mu_) = false;
  uint64_t wake_seq_ GUARDED_BY(mu_) = 0;      // bumped by Wake and by a freed slot
  bool poller_taken_ GUARDED_BY(mu_) = false;  // an idle worker sleeps at most idle_poll
  /// Workers in Claim that want a row and have none yet.
  int claimers_ GUARDED_BY(mu_) = 0;
  /// Rows claimed for workers in Claim that are still waiting for the lock
  /// (each takes one): leased, with their slots taken.
  std::deque<store::Delivery> ready_ GUARDED_BY(mu_);
  /// Successes waiting to be marked delivered by a claim, and when the
  /// first of them is due to be (kMarkDelay after it came).
  std::vector<Finished> unmarked_ GUARDED_BY(mu_);
  std::chrono::system_clock::time_point marks_due_ GUARDED_BY(mu_);
  /// The longest rate_limit.window of the config's smtp targets (what
  /// smtp_sent must keep), and when its housekeeping is due next.
  std::chrono::milliseconds smtp_window_ GUARDED_BY(mu_){0};
  std::chrono::system_clock::time_point smtp_housekeep_at_ GUARDED_BY(mu_);
  std::atomic<int> workers_down_{0};
  std::atomic<bool> running_{false};
  std::vector<std::thread> workers_;
};

}  // namespace mailhook::delivery
