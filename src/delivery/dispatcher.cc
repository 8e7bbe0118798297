#include "delivery/dispatcher.h"

#include <utility>

#include "delivery/hook_target.h"
#include "delivery/oauth2_token_cache.h"
#include "delivery/smtp_target.h"
#include "delivery/webhook_target.h"
#include "store/open_store.h"
#include "util/log.h"

namespace mailhook::delivery {
namespace {

using Clock = std::chrono::system_clock;
using util::Error;
using util::RetryClass;

// Time an attempt needs beyond its target's timeout (recording the result):
// the lease must cover both, or another worker claims the row mid-delivery.
constexpr auto kLeaseMargin = std::chrono::minutes(1);

int64_t Ms(std::chrono::nanoseconds d) { return std::chrono::duration_cast<std::chrono::milliseconds>(d).count(); }

// An smtp target's SubmissionSender: its password checked now, or its OAuth2
// token cache, kept in `caches` (by target name) across rebuilds.
util::Result<MailSender> SmtpSender(const config::SmtpTarget& smtp,
                                    std::map<std::string, std::shared_ptr<OAuth2TokenCache>>& caches) {
  const std::string owner = util::TargetId::Smtp(smtp.name).ToString();
  if (smtp.oauth2) {
    // The refresh flow: tokens are fetched at the first send, not here. A
    // reload that keeps the oauth2 block keeps the cache (its token and a
    // rotated refresh token held in memory).
    std::shared_ptr<OAuth2TokenCache>& tokens = caches[smtp.name];
    if (!tokens || !tokens->SameSource(owner, smtp.oauth2, smtp.allow_insecure)) {
      tokens = std::make_shared<OAuth2TokenCache>(owner, *smtp.oauth2, smtp.allow_insecure);
      tokens->set_log_area(util::Area::kSmtp);
    }
    return SubmissionSender(smtp, tokens);
  }
  caches.erase(smtp.name);
  // Resolved here once so a missing file or command stops the start (never
  // while the config is read); the sender resolves it again before each send.
  auto secret = smtp.password.Resolve();
  if (!secret.ok()) return secret.error().WithMessage("smtp." + smtp.name + ": " + secret.error().message());
  return SubmissionSender(smtp);
}

// What smtp_sent must keep for the rate limits: the longest window.
std::chrono::milliseconds LongestSmtpWindow(const config::Config& config) {
  std::chrono::milliseconds longest{0};
  for (const auto& smtp : config.smtp) longest = std::max(longest, smtp.rate_limit.window);
  return longest;
}

}  // namespace

/// A delivery slot of one target, taken at claim time and given back when the
/// row is done, however that happens.
class Dispatcher::Slot {
 public:
  Slot(Dispatcher& d, const std::string& target) : d_(d), target_(target) {}
  ~Slot() {
    bool was_full = false;
    {
      util::MutexLock lock(d_.mu_);
      auto it = d_.targets_.find(target_);
      // Gone, or replaced by a reload after a remove (a fresh count): nothing to give back.
      if (it == d_.targets_.end() || it->second.in_flight == 0) return;
      was_full = it->second.in_flight >= it->second.concurrency;
      --it->second.in_flight;
      // Workers that found only rows of this target may sleep: let them look.
      if (was_full) ++d_.wake_seq_;
    }
    if (was_full) d_.cv_.SignalAll();
  }
  Slot(const Slot&) = delete;
  Slot& operator=(const Slot&) = delete;

 private:
  Dispatcher& d_;
  std::string target_;
};

Dispatcher::Dispatcher(const config::Config& config, const std::string& version, const util::MetricsCatalog& metrics,
                       DispatcherOptions options)
    : open_store_(options.open_store ? options.open_store : store::SqliteStoreOpener(config.state_dir)),
      version_(version),
      options_(options),
      metrics_(metrics),
      clock_(options.clock ? *options.clock : util::Clock::Real()) {
  for (auto& entry : Build(
           config, [](const util::TargetId&) { return true; }, setup_errors_)) {
    targets_.insert_or_assign(entry.id.ToString(), std::move(entry));
  }
  util::MutexLock lock(mu_);
  smtp_window_ = LongestSmtpWindow(config);
}

std::vector<Dispatcher::Entry> Dispatcher::Build(const config::Config& config,
                                                 const std::function<bool(const util::TargetId&)>& wanted,
                                                 std::vector<util::Error>& errors) {
  std::vector<Entry> out;
  auto check_timeout = [&](const std::string& key, config::Duration timeout) {
    if (timeout + kLeaseMargin > options_.lease) {
      errors.push_back(Error("delivery.timeout", RetryClass::kNeedsOperator,
                             key + ": timeout " + std::to_string(timeout.count()) +
                                 " ms does not fit the dispatcher's lease of " +
                                 std::to_string(options_.lease.count()) + " ms (minus 1 min); lower the timeout"));
    }
  };
  auto add = [&](util::TargetId id, auto target, const config::DeliveryOptions& d) {
    if (!target.ok()) {
      errors.push_back(target.error());
      return;
    }
    util::TargetMetrics bound = metrics_.ForTarget(id);
    out.push_back(Entry{std::move(id), bound, std::shared_ptr<Target>(std::move(target).value()),
                        RetryPolicy(d.retry_schedule), std::max(d.concurrency, 1)});
  };
  for (const auto& webhook : config.webhooks) {
    if (!wanted(util::TargetId::Webhook(webhook.name))) continue;
    check_timeout("webhooks." + webhook.name, webhook.timeout);
    add(util::TargetId::Webhook(webhook.name), WebhookTarget::Create(webhook, version_), webhook);
  }
  for (const auto& hook : config.hooks) {
    if (!wanted(util::TargetId::Hook(hook.name))) continue;
    check_timeout("hooks." + hook.name, hook.timeout);
    add(util::TargetId::Hook(hook.name), HookTarget::Create(hook), hook);  // resolves env secrets (may run commands)
  }
  for (const auto& smtp : config.smtp) {
    const util::TargetId id = util::TargetId::Smtp(smtp.name);
    if (!wanted(id)) continue;
    check_timeout("smtp." + smtp.name, smtp.timeout);
    add(id, BuildSmtpTarget(smtp), smtp);
  }
  return out;
}

util::Result<std::unique_ptr<SmtpTarget>> Dispatcher::BuildSmtpTarget(const config::SmtpTarget& smtp) {
  auto sender = SmtpSender(smtp, smtp_tokens_);
  if (!sender.ok()) return sender.error();
  if (!reply_ledger_) reply_ledger_ = StoreReplyLedger(open_store_);
  const util::MetricsCatalog& metrics = metrics_;
  return SmtpTarget::Create(
      smtp, std::move(*sender), reply_ledger_,
      [&metrics, name = smtp.name](std::string_view rule) { metrics.SmtpSkipped(name, rule).Inc(); });
}

util::Status Dispatcher::UpdateTargets(const config::Config& config, const std::set<std::string>& rebuild,
                                       const std::set<std::string>& remove) {
  std::vector<util::Error> errors;
  std::vector<Entry> built = Build(
      config, [&](const util::TargetId& id) { return rebuild.count(id.ToString()) > 0; }, errors);
  if (!errors.empty()) return errors.front();
  int needed = 1;
  {
    util::MutexLock lock(mu_);
    for (auto& entry : built) {
      std::string key = entry.id.ToString();
      auto it = targets_.find(key);
      // Slots taken by deliveries in flight are given back to the new entry.
      if (it != targets_.end()) entry.in_flight = it->second.in_flight;
      targets_.insert_or_assign(key, std::move(entry));
    }
    for (const auto& key : remove) targets_.erase(key);
    smtp_window_ = LongestSmtpWindow(config);
    for (const auto& [key, entry] : targets_) needed += entry.concurrency;
    ++wake_seq_;  // a new target's rows may be due now
  }
  cv_.SignalAll();
  const int have = static_cast<int>(workers_.size());
  if (!running_ || options_.workers > 0 || needed <= have) return util::Ok();
  return StartWorkers(needed - have);
}

util::Status Dispatcher::StartWorkers(int count) {
  metrics_.workers_running.Add(count);
  for (int i = 0; i < count; ++i) {
    const int index = static_cast<int>(workers_.size());
    workers_.emplace_back([this, index] { Run(index); });
  }
  return util::Ok();
}

std::optional<Dispatcher::Entry> Dispatcher::Find(const std::string& target) {
  util::MutexLock lock(mu_);
  auto it = targets_.find(target);
  if (it == targets_.end()) return std::nullopt;
  return it->second;
}

Dispatcher::~Dispatcher() { Stop(); }

void Dispatcher::RegisterTarget(const util::TargetId& id, std::shared_ptr<Target> target, RetryPolicy policy,
                                int concurrency) {
  targets_.insert_or_assign(
      id.ToString(), Entry{id, metrics_.ForTarget(id), std::move(target), std::move(policy), std::max(concurrency, 1)});
}

void Dispatcher::SetOnOutcome(std::function<void(const Report&)> callback) { on_outcome_ = std::move(callback); }

util::Status Dispatcher::Start() {
  if (!setup_errors_.empty()) return setup_errors_.front();
  int workers = options_.workers;
  if (workers <= 0) {
    workers = 1;
    util::MutexLock lock(mu_);
    for (const auto& [key, entry] : targets_) workers += entry.concurrency;
  }
  auto opened = open_store_();
  if (!opened.ok()) return opened.error();
  {
    util::MutexLock hold(store_mu_);
    store_ = std::move(opened).value();
    // Leases left by a previous run (crash, kill -9) would hold rows back for
    // the lease time; no other process delivers, so they are all stale.
    if (auto s = store_->outbox().ReleaseAllLeases(); !s) return s;
    UpdateGauges(*store_, false);
  }
  {
    util::MutexLock lock(mu_);
    stopping_ = false;
  }
  stop_.Reset();  // no worker runs yet: nothing observes it
  workers_down_ = 0;
  running_ = true;
  metrics_.workers_running.Set(workers);
  for (int i = 0; i < workers; ++i) workers_.emplace_back([this, i] { Run(i); });
  size_t targets = 0;
  {
    util::MutexLock lock(mu_);
    targets = targets_.size();
  }
  util::Log(util::Area::kDelivery).info("delivery.start workers={} targets={}", workers, targets);
  return util::Ok();
}

void Dispatcher::Wake() {
  {
    util::MutexLock lock(mu_);
    ++wake_seq_;
  }
  // One: it claims, and wakes the next when it leaves due rows behind.
  cv_.Signal();
}

void Dispatcher::Stop() {
  {
    util::MutexLock lock(mu_);
    if (stopping_ && workers_.empty()) return;
    stopping_ = true;
  }
  running_ = false;
  cv_.SignalAll();
  // Once: every Deliver observes the token itself, also one that a worker
  // starts after checking stopping_ just before it was set.
  stop_.Cancel();
  for (auto& t : workers_) t.join();
  if (!workers_.empty()) util::Log(util::Area::kDelivery).info("delivery.stopped");
  workers_.clear();
  RecordLeftMarks();
  ReleaseUnhanded();
}

void Dispatcher::ReleaseUnhanded() {
  std::deque<store::Delivery> left;
  {
    util::MutexLock lock(mu_);
    left.swap(ready_);
    claimers_ = 0;
  }
  // Every row set aside has a waiting worker, which takes it before it
  // stops; this only guards that rule.
  for (const auto& row : left) {
    Slot slot(*this, row.item.target);
    util::MutexLock hold(store_mu_);
    if (store_) (void)StoreLocked().outbox().ReleaseLease(row.id);
  }
}

void Dispatcher::RecordLeftMarks() {
  bool left = false;
  {
    util::MutexLock lock(mu_);
    left = !unmarked_.empty();
  }
  // Each worker records what waits as it stops; a worker that stopped while
  // it waited to restart after a crash did not.
  if (!left) return;
  {
    util::MutexLock hold(store_mu_);
    if (!store_) return;
  }
  Claimed last = Claim(std::nullopt, false);
  try {
    FinishRecorded(last);
  } catch (const std::exception& e) {
    util::Log(util::Area::kDelivery).error("delivery.observer_failed cause=\"{}\"", e.what());
  }
}

bool Dispatcher::Healthy() const { return running_ && workers_down_ == 0; }

bool Dispatcher::WaitUntil(Clock::time_point until, uint64_t seen) {
  util::MutexLock lock(mu_);
  while (!stopping_ && wake_seq_ == seen) {
    if (!cv_.WaitUntil(mu_, until)) return false;
  }
  return true;
}

bool Dispatcher::Stopping() {
  util::MutexLock lock(mu_);
  return stopping_;
}

void Dispatcher::Run(int index) {
  spdlog::logger* log = &util::Log(util::Area::kDelivery);
  // Per-worker RNG for jitter: no shared state between workers.
  std::mt19937_64 rng(std::random_device{}() + static_cast<uint64_t>(index));
  for (;;) {
    std::string cause;
    try {
      Loop(index, rng);
      return;  // stopping
    } catch (const std::exception& e) {
      cause = e.what();
    } catch (...) {
      cause = "unknown exception";
    }
    // A bug must neither end delivery for good nor go unnoticed: count it,
    // report not-ready while down, and start the loop again. Rows this worker
    // held stay leased and are claimed again when the lease ends.
    ++workers_down_;
    // The gauge first: whoever sees the restart counted sees the worker down.
    metrics_.workers_running.Add(-1);
    metrics_.worker_restarts.Inc();
    log->error("delivery.worker_crashed worker={} restart_in_ms={} cause=\"{}\"", index,
               options_.restart_backoff.count(), cause);
    uint64_t seen;
    {
      util::MutexLock lock(mu_);
      seen = wake_seq_;
    }
    // Only Stop ends the pause early: a Wake must not turn a crash loop into a spin.
    auto until = Clock::now() + options_.restart_backoff;
    while (Clock::now() < until) {
      const bool woken = WaitUntil(until, seen);
      util::MutexLock lock(mu_);
      if (stopping_) break;
      // A Wake meant for a worker that can claim: pass it on.
      if (woken) cv_.Signal();
      seen = wake_seq_;
    }
    metrics_.workers_running.Add(1);
    --workers_down_;
    {
      util::MutexLock lock(mu_);
      if (stopping_) return;
    }
    log->warn("delivery.worker_restarted worker={}", index);
  }
}

std::vector<std::string> Dispatcher::SaturatedTargets() {
  std::vector<std::string> out;
  for (const auto& [key, entry] : targets_) {
    if (entry.in_flight >= entry.concurrency) out.push_back(key);
  }
  return out;
}

Dispatcher::Claimed Dispatcher::Claim(std::optional<Finished> finished, bool want_row) {
  {
    util::MutexLock lock(mu_);
    if (finished) {
      if (unmarked_.empty()) marks_due_ = Clock::now() + kMarkDelay;
      unmarked_.push_back(std::move(*finished));
    }
    if (want_row) ++claimers_;
  }
  // Look and claim under one lock: two workers must not both take the last
  // free slot of a target. Whoever holds it records the deliveries that wait
  // to be marked (when they are due: see kMarkDelay) and claims a row for
  // every worker waiting here, in one write transaction; those workers then
  // find their row set aside.
  util::MutexLock hold(store_mu_);
  Claimed out;
  store::ClaimRequest request;
  bool served = !want_row;
  {
    util::MutexLock lock(mu_);
    if (want_row && !ready_.empty()) {
      out.rows->push_back(std::move(ready_.front()));
      ready_.pop_front();
      --claimers_;
      served = true;
    }
    if (!want_row || unmarked_.size() >= kMarkBatch || Clock::now() >= marks_due_) {
      TakeMarks(out.recorded, request.delivered);
    }
    // Workers waiting for a row that none is set aside for (this one included).
    request.limit = want_row ? claimers_ - static_cast<int>(ready_.size()) : 0;
    for (const auto& [key, entry] : targets_) {
      const int room = entry.concurrency - entry.in_flight;
      if (room <= 0)
        request.skip_targets.push_back(key);
      else
        request.room[key] = room;
    }
    // Every target at its limit: no row is ours until a slot frees (which
    // wakes us), and the store would walk every due row to find none.
    if (!targets_.empty() && request.room.empty()) request.limit = 0;
  }
  if (request.limit > 0 || !request.delivered.empty()) {
    request.now = clock_.Now();
    request.lease = options_.lease;
    auto rows = StoreLocked().outbox().Claim(request);
    out.marked = rows.ok() ? util::Ok() : util::Status(rows.error());
    // A claim that failed (a busy file, a row that cannot be read) must not
    // take the deliveries already done with it: they are recorded alone.
    if (!rows.ok() && !request.delivered.empty()) out.marked = StoreLocked().outbox().MarkDelivered(request.delivered);
    util::MutexLock lock(mu_);
    if (!rows.ok() && !served) out.rows = rows.error();
    out.more = rows.ok() && rows->more;
    for (auto& row : rows.ok() ? rows->rows : std::vector<store::Delivery>{}) {
      auto it = targets_.find(row.item.target);
      if (it != targets_.end()) ++it->second.in_flight;
      if (!served) {
        out.rows->push_back(std::move(row));
        --claimers_;
        served = true;
      } else {
        ready_.push_back(std::move(row));
      }
    }
  }
  if (!served && request.delivered.empty()) RecordWhenLast(out, request.delivered);
  {
    util::MutexLock lock(mu_);
    if (!served) --claimers_;
    if (!unmarked_.empty()) out.marks_due = marks_due_;
  }
  // The counts changed: the gauges follow before anyone reports the outcome
  // (at most every kGaugesEvery while this worker has more to deliver).
  if (!request.delivered.empty()) UpdateGauges(StoreLocked(), out.rows.ok() && !out.rows->empty());
  return out;
}

void Dispatcher::TakeMarks(std::vector<Finished>& taken, std::vector<int64_t>& ids) {
  for (Finished& done : unmarked_) {
    ids.push_back(done.report.id);
    taken.push_back(std::move(done));
  }
  unmarked_.clear();
}

void Dispatcher::RecordWhenLast(Claimed& out, std::vector<int64_t>& ids) {
  {
    util::MutexLock lock(mu_);
    // A delivery in flight comes back to claim and records them then.
    for (const auto& [key, entry] : targets_) {
      if (entry.in_flight > 0) return;
    }
    TakeMarks(out.recorded, ids);
  }
  if (!ids.empty()) out.marked = StoreLocked().outbox().MarkDelivered(ids);
}

void Dispatcher::Loop(int index, std::mt19937_64& rng) {
  spdlog::logger* log = &util::Log(util::Area::kDelivery);
  bool polled = false;  // the last sleep was the poller's, and it timed out
  // A delivery that succeeded; its row is marked delivered by a later claim.
  std::optional<Finished> finished;
  for (;;) {
    uint64_t seen;
    std::vector<std::string> skip;
    bool stopping = false;
    {
      util::MutexLock lock(mu_);
      stopping = stopping_;
      seen = wake_seq_;  // read before looking, so a Wake during the look is not lost
    }
    if (stopping) {
      Claimed last = Claim(std::exchange(finished, std::nullopt), false);
      FinishRecorded(last);
      return;
    }
    HousekeepSmtp();
    Claimed claimed = Claim(std::exchange(finished, std::nullopt), true);
    FinishBeforeNext(claimed);
    if (!claimed.rows.ok()) {
      log->error("delivery.store_error worker={} cause=\"{}\"", index, claimed.rows.error().ToString());
      WaitUntil(Clock::now() + options_.store_error_backoff, seen);
      continue;
    }
    // The poll found rows another process added: more may be due, and the
    // other workers sleep until a Wake.
    if ((polled || claimed.more) && !claimed.rows->empty()) Wake();
    polled = false;
    if (claimed.rows->empty()) {
      bool all_saturated = false;
      {
        util::MutexLock lock(mu_);
        skip = SaturatedTargets();
        all_saturated = !targets_.empty() && skip.size() == targets_.size();
      }
      // Rows of a target at its limit are not due for us: a freed slot wakes
      // us. When that is every target, the store is not asked (it would read
      // every row of the outbox to find none: a backlog's drain is n² then).
      util::Result<std::optional<Clock::time_point>> next = std::optional<Clock::time_point>();
      if (!all_saturated) next = NextDueAt(skip);
      // No row due: sleep until a Wake (a commit), the next due time or a
      // freed slot. One idle worker, the poller, also looks again every
      // idle_poll: `mailhook deadletters replay` runs in another process and
      // cannot Wake() us; the others need not wake for that.
      if (on_idle_) on_idle_(index);
      bool poller = false;
      {
        util::MutexLock lock(mu_);
        poller = !poller_taken_;
        poller_taken_ = true;
      }
      Clock::time_point until = Clock::now() + (poller ? options_.idle_poll : std::chrono::hours(24));
      if (!next.ok()) {
        until = Clock::now() + options_.store_error_backoff;
      } else if (next->has_value()) {
        // Due on clock_, slept on the real clock.
        until = std::min(until, Clock::now() + (**next - clock_.Now()));
      }
      if (claimed.marks_due) until = std::min(until, *claimed.marks_due);
      bool woken = WaitUntil(until, seen);
      if (poller) {
        util::MutexLock lock(mu_);
        poller_taken_ = false;
      }
      polled = poller && !woken;
      continue;
    }
    for (const auto& row : *claimed.rows) finished = Process(row, rng);
  }
}

util::Result<std::optional<std::chrono::system_clock::time_point>> Dispatcher::NextDueAt(
    const std::vector<std::string>& skip) {
  util::MutexLock hold(store_mu_);
  return StoreLocked().outbox().NextDueAt(skip);
}

void Dispatcher::FinishBeforeNext(Claimed& claimed) {
  try {
    FinishRecorded(claimed);
  } catch (...) {
    // An observer's bug restarts the worker: the row just claimed goes back
    // (lease and slot), or it would wait for its lease to end.
    if (claimed.rows.ok()) {
      for (const auto& row : *claimed.rows) {
        Slot slot(*this, row.item.target);
        ReleaseLease(row.id);
      }
    }
    throw;
  }
}

void Dispatcher::FinishRecorded(Claimed& claimed) {
  // Every one, also after an observer threw for one of them; the first
  // exception then restarts the worker.
  std::exception_ptr thrown;
  for (Finished& done : claimed.recorded) {
    try {
      Finish(done, claimed.marked);
    } catch (...) {
      if (!thrown) thrown = std::current_exception();
    }
  }
  claimed.recorded.clear();
  if (thrown) std::rethrow_exception(thrown);
}

void Dispatcher::Finish(Finished& done, const util::Status& recorded) {
  spdlog::logger* log = &util::Log(util::Area::kDelivery);
  const std::string& event = done.report.event_id;
  if (!recorded) {
    log->error("delivery.store_error event={} cause=\"{}\"", event, recorded.error().ToString());
    return;  // the lease expires and the row is delivered again: at-least-once
  }
  // Counted before the log line: whoever sees "delivery.ok" in the log sees
  // it in /metrics too.
  done.entry.metrics.success.Inc();
  log->info("delivery.ok {}={} event={} status={} ms={}", done.entry.id.KindName(), done.entry.id.name, event,
            done.report.outcome.http_status, Ms(done.elapsed));
  if (on_outcome_) on_outcome_(done.report);
}

std::optional<Dispatcher::Finished> Dispatcher::Process(const store::Delivery& row, std::mt19937_64& rng) {
  Slot slot(*this, row.item.target);
  Report report{row.id, row.item.event_id, row.item.target,  OutcomeKind::kPermanent,
                {},     row.attempts + 1,  row.item.account, row.item.folder};
  std::optional<Finished> finished;
  try {
    if (!Attempt(row, rng, report, finished)) return std::nullopt;
    if (finished) return finished;  // recorded by a later claim
  } catch (const std::exception& e) {
    // A target or the recording threw: the row must not be lost nor stay
    // leased, so it counts as a failed attempt like any other.
    std::optional<Entry> entry = Find(row.item.target);
    report.outcome = Outcome{};
    report.outcome.error = std::string("internal error: ") + e.what();
    if (!RecordFailure(row, entry ? &*entry : nullptr, rng, report)) {
      return std::nullopt;
    }
  }
  {
    // A retry leaves the counts as they were; a dead letter changes them.
    util::MutexLock hold(store_mu_);
    UpdateGauges(StoreLocked(), report.result == OutcomeKind::kRetry);
  }
  // Outside the catch above: an observer's exception is a worker bug (restart).
  if (on_outcome_) on_outcome_(report);
  return std::nullopt;
}

bool Dispatcher::Attempt(const store::Delivery& row, std::mt19937_64& rng, Report& report,
                         std::optional<Finished>& finished) {
  spdlog::logger* log = &util::Log(util::Area::kDelivery);
  const std::string& event = row.item.event_id;
  // A copy: a reload may replace the entry while this attempt runs; the
  // attempt ends with the target it started with.
  std::optional<Entry> entry = Find(row.item.target);
  if (!entry) {
    report.outcome.kind = OutcomeKind::kPermanent;
    report.outcome.error = "target " + row.item.target +
                           " is not configured; add it back to the config and replay the "
                           "dead letter, or drop it";
    return RecordFailure(row, nullptr, rng, report);
  }
  const std::string_view kind = entry->id.KindName();
  const std::string& name = entry->id.name;
  if (Stopping()) {
    ReleaseLease(row.id);
    return false;
  }
  // A Stop() from here on is not missed: Deliver observes stop_ itself.
  if (before_deliver_) before_deliver_(stop_);
  auto start = std::chrono::steady_clock::now();
  report.outcome = entry->target->Deliver(row, stop_);
  auto elapsed = std::chrono::steady_clock::now() - start;
  if (report.outcome.cancelled) {
    // Shutdown interrupted the request: not a real attempt. Give the row back
    // unrecorded; the next run delivers it (the receiver dedupes by webhook-id).
    ReleaseLease(row.id);
    log->info("delivery.abandoned {}={} event={}", kind, name, event);
    return false;
  }
  if (elapsed + kLeaseMargin > options_.lease) {
    // Cannot happen while targets keep their timeouts (checked at start).
    log->error(
        "delivery.lease_overrun {}={} event={} ms={} cause=\"the attempt outlived its "
        "lease; the event may have been sent twice\"",
        kind, name, event, Ms(elapsed));
  }
  entry->metrics.seconds.Observe(std::chrono::duration<double>(elapsed).count());
  report.result = report.outcome.kind;
  const auto& o = report.outcome;
  if (o.kind != OutcomeKind::kSuccess) return RecordFailure(row, &*entry, rng, report);
  // Marked delivered (and logged, counted, reported) by a later claim, in
  // one transaction with others that finished meanwhile (see kMarkDelay).
  finished = Finished{report, std::move(*entry), elapsed};
  return true;
}

void Dispatcher::ReleaseLease(int64_t id) {
  util::MutexLock hold(store_mu_);
  (void)StoreLocked().outbox().ReleaseLease(id);
}

bool Dispatcher::RecordFailure(const store::Delivery& row, const Entry* entry, std::mt19937_64& rng, Report& report) {
  spdlog::logger* log = &util::Log(util::Area::kDelivery);
  const RetryPolicy* policy = entry != nullptr ? &entry->policy : nullptr;
  // A row of a target no longer configured is still named (and counted) by
  // its stored id; one that does not parse is only logged, under "target".
  std::optional<util::TargetId> stored;
  if (entry == nullptr) stored = util::TargetId::Parse(row.item.target);
  const util::TargetId* id = entry != nullptr ? &entry->id : stored ? &*stored : nullptr;
  const std::string_view kind = id != nullptr ? id->KindName() : "target";
  const std::string_view name = id != nullptr ? std::string_view(id->name) : row.item.target;
  const std::string& event = row.item.event_id;
  const int attempts = row.attempts + 1;
  auto count = [&](OutcomeKind outcome) {
    if (id == nullptr) return;
    const util::TargetMetrics m = entry != nullptr ? entry->metrics : metrics_.ForTarget(*id);
    (outcome == OutcomeKind::kRetry ? m.retry : m.dead).Inc();
  };
  const auto& o = report.outcome;
  report.result = o.kind;
  if (o.kind == OutcomeKind::kRetry && policy != nullptr) {
    if (auto wait = policy->NextWait(attempts, o.retry_after, rng)) {
      util::Status s = util::Ok();
      {
        util::MutexLock hold(store_mu_);
        s = StoreLocked().outbox().ScheduleRetry(row.id, attempts, clock_.Now() + *wait, o.error);
      }
      if (!s) {
        log->error("delivery.store_error event={} cause=\"{}\"", event, s.error().ToString());
        return false;
      }
      count(OutcomeKind::kRetry);
      log->warn("delivery.retry {}={} event={} status={} attempt={} next_in_ms={} cause=\"{}\"", kind, name, event,
                o.http_status, attempts, wait->count(), o.error);
      return true;
    }
    report.outcome.error = "retries exhausted after " + std::to_string(attempts) + " attempts; last: " + o.error;
  }
  report.result = OutcomeKind::kPermanent;
  util::Status s = util::Ok();
  {
    util::MutexLock hold(store_mu_);
    s = StoreLocked().outbox().MoveToDeadLetters(row.id, attempts, report.outcome.error);
  }
  if (!s) {
    log->error("delivery.store_error event={} cause=\"{}\"", event, s.error().ToString());
    return false;
  }
  count(OutcomeKind::kPermanent);
  log->error("delivery.dead {}={} event={} status={} attempt={} cause=\"{}\"", kind, name, event,
             report.outcome.http_status, attempts, report.outcome.error);
  return true;
}

void Dispatcher::HousekeepSmtp() {
  std::chrono::milliseconds window{0};
  const auto now = clock_.Now();
  {
    util::MutexLock lock(mu_);
    if (now < smtp_housekeep_at_) return;
    smtp_housekeep_at_ = now + kSmtpHousekeepEvery;  // a failure waits for the next round too
    window = smtp_window_;
  }
  util::Status s = util::Ok();
  {
    util::MutexLock hold(store_mu_);
    s = StoreLocked().HousekeepSmtp(now, window);
  }
  if (!s) {
    util::Log(util::Area::kDelivery).error("delivery.store_error cause=\"{}\"", s.error().ToString());
  }
}

store::Store& Dispatcher::StoreLocked() {
  if (!store_->broken()) return *store_;
  // One attempt per store_error_backoff: a connect to an unreachable server
  // can take its whole timeout, and every worker waits for this lock.
  const auto now = std::chrono::steady_clock::now();
  if (now < next_reopen_) return *store_;
  next_reopen_ = now + options_.store_error_backoff;
  // The PostgreSQL server ended the session (a restart, a failover): every
  // call on it would fail. Open a new one; until that works, the calls fail
  // with the connection's error and the workers back off as for any store error.
  auto opened = open_store_();
  if (!opened.ok()) {
    // Once per outage, not once per worker and second.
    if (!std::exchange(store_reopen_failing_, true)) {
      util::Log(util::Area::kDelivery).warn("delivery.store_reopen_failed cause=\"{}\"", opened.error().ToString());
    }
    return *store_;
  }
  store_ = std::move(opened).value();
  store_reopen_failing_ = false;
  util::Log(util::Area::kDelivery).info("delivery.store_reopened where={}", store_->path());
  return *store_;
}

void Dispatcher::UpdateGauges(store::Store& store, bool busy) {
  const auto now = std::chrono::steady_clock::now();
  // The counts hold the claim lock: while busy, they take at most a tenth of
  // it (PostgreSQL counts 100,000 outbox rows in 70-120 ms).
  const auto every = std::max<std::chrono::steady_clock::duration>(kGaugesEvery, 10 * gauges_took_);
  if (busy && gauges_at_ && now - *gauges_at_ < every) return;
  gauges_at_ = now;
  if (auto n = store.outbox().PendingCount(); n.ok()) metrics_.outbox_pending.Set(static_cast<double>(*n));
  if (auto n = store.dead_letters().Count(); n.ok()) {
    metrics_.deadletters.Set(static_cast<double>(*n));
  }
  gauges_took_ = std::chrono::steady_clock::now() - now;
}

}  // namespace mailhook::delivery
