#include "delivery/dispatcher.h"

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
    : state_dir_(config.state_dir),
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
  if (!reply_ledger_) reply_ledger_ = StoreReplyLedger(state_dir_);
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
  std::vector<std::unique_ptr<store::Store>> stores;
  for (int i = 0; i < count; ++i) {
    auto store = store::OpenStore({.state_dir = state_dir_});
    if (!store.ok()) return store.error();
    stores.push_back(std::move(store).value());
  }
  metrics_.workers_running.Add(count);
  for (auto& store : stores) {
    const int index = static_cast<int>(workers_.size());
    workers_.emplace_back([this, index, store = std::move(store)]() mutable { Run(index, std::move(store)); });
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
  std::vector<std::unique_ptr<store::Store>> stores;
  for (int i = 0; i < workers; ++i) {
    auto store = store::OpenStore({.state_dir = state_dir_});
    if (!store.ok()) return store.error();
    stores.push_back(std::move(store).value());
  }
  // Leases left by a previous run (crash, kill -9) would hold rows back for
  // the lease time; no other process delivers, so they are all stale.
  if (auto s = stores.front()->outbox().ReleaseAllLeases(); !s) return s;
  UpdateGauges(*stores.front());
  {
    util::MutexLock lock(mu_);
    stopping_ = false;
  }
  stop_.Reset();  // no worker runs yet: nothing observes it
  workers_down_ = 0;
  running_ = true;
  metrics_.workers_running.Set(workers);
  for (int i = 0; i < workers; ++i) {
    workers_.emplace_back(
        [this, i, store = std::move(stores[static_cast<size_t>(i)])]() mutable { Run(i, std::move(store)); });
  }
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
  cv_.SignalAll();
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

void Dispatcher::Run(int index, std::unique_ptr<store::Store> store) {
  spdlog::logger* log = &util::Log(util::Area::kDelivery);
  // Per-worker RNG for jitter: no shared state between workers.
  std::mt19937_64 rng(std::random_device{}() + static_cast<uint64_t>(index));
  for (;;) {
    std::string cause;
    try {
      Loop(index, *store, rng);
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
      WaitUntil(until, seen);
      util::MutexLock lock(mu_);
      if (stopping_) break;
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

util::Result<std::vector<store::Delivery>> Dispatcher::Claim(store::Store& store) {
  // Look and claim under one lock: two workers must not both take the last
  // free slot of a target.
  util::MutexLock claim(claim_mu_);
  std::vector<std::string> skip;
  {
    util::MutexLock lock(mu_);
    skip = SaturatedTargets();
  }
  auto claimed = store.outbox().ClaimDue(clock_.Now(), 1, options_.lease, skip);
  if (claimed.ok() && !claimed->empty()) {
    util::MutexLock lock(mu_);
    auto it = targets_.find(claimed->front().item.target);
    if (it != targets_.end()) ++it->second.in_flight;
  }
  return claimed;
}

void Dispatcher::Loop(int index, store::Store& store, std::mt19937_64& rng) {
  spdlog::logger* log = &util::Log(util::Area::kDelivery);
  bool polled = false;  // the last sleep was the poller's, and it timed out
  for (;;) {
    uint64_t seen;
    std::vector<std::string> skip;
    {
      util::MutexLock lock(mu_);
      if (stopping_) return;
      seen = wake_seq_;  // read before looking, so a Wake during the look is not lost
    }
    HousekeepSmtp(store);
    auto claimed = Claim(store);
    if (!claimed.ok()) {
      log->error("delivery.store_error worker={} cause=\"{}\"", index, claimed.error().ToString());
      WaitUntil(Clock::now() + options_.store_error_backoff, seen);
      continue;
    }
    // The poll found rows another process added: more may be due, and the
    // other workers sleep until a Wake.
    if (polled && !claimed->empty()) Wake();
    polled = false;
    if (claimed->empty()) {
      {
        util::MutexLock lock(mu_);
        skip = SaturatedTargets();
      }
      // Rows of a target at its limit are not due for us: a freed slot wakes us.
      auto next = store.outbox().NextDueAt(skip);
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
      bool woken = WaitUntil(until, seen);
      if (poller) {
        util::MutexLock lock(mu_);
        poller_taken_ = false;
      }
      polled = poller && !woken;
      continue;
    }
    for (const auto& row : *claimed) Process(store, row, rng);
  }
}

void Dispatcher::Process(store::Store& store, const store::Delivery& row, std::mt19937_64& rng) {
  Slot slot(*this, row.item.target);
  Report report{row.id, row.item.event_id, row.item.target,  OutcomeKind::kPermanent,
                {},     row.attempts + 1,  row.item.account, row.item.folder};
  try {
    if (!Attempt(store, row, rng, report)) return;
  } catch (const std::exception& e) {
    // A target or the recording threw: the row must not be lost nor stay
    // leased, so it counts as a failed attempt like any other.
    std::optional<Entry> entry = Find(row.item.target);
    report.outcome = Outcome{};
    report.outcome.error = std::string("internal error: ") + e.what();
    if (!RecordFailure(store, row, entry ? &*entry : nullptr, rng, report)) {
      return;
    }
  }
  UpdateGauges(store);
  // Outside the catch above: an observer's exception is a worker bug (restart).
  if (on_outcome_) on_outcome_(report);
}

bool Dispatcher::Attempt(store::Store& store, const store::Delivery& row, std::mt19937_64& rng, Report& report) {
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
    return RecordFailure(store, row, nullptr, rng, report);
  }
  const std::string_view kind = entry->id.KindName();
  const std::string& name = entry->id.name;
  if (Stopping()) {
    (void)store.outbox().ReleaseLease(row.id);
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
    (void)store.outbox().ReleaseLease(row.id);
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
  if (o.kind != OutcomeKind::kSuccess) return RecordFailure(store, row, &*entry, rng, report);
  if (auto s = store.outbox().MarkDelivered(row.id); !s) {
    log->error("delivery.store_error event={} cause=\"{}\"", event, s.error().ToString());
    return false;  // the lease expires and the row is delivered again: at-least-once
  }
  // Counted before the log line: whoever sees "delivery.ok" in the log sees
  // it in /metrics too.
  entry->metrics.success.Inc();
  log->info("delivery.ok {}={} event={} status={} ms={}", kind, name, event, o.http_status, Ms(elapsed));
  return true;
}

bool Dispatcher::RecordFailure(store::Store& store, const store::Delivery& row, const Entry* entry,
                               std::mt19937_64& rng, Report& report) {
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
      if (auto s = store.outbox().ScheduleRetry(row.id, attempts, clock_.Now() + *wait, o.error); !s) {
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
  if (auto s = store.outbox().MoveToDeadLetters(row.id, attempts, report.outcome.error); !s) {
    log->error("delivery.store_error event={} cause=\"{}\"", event, s.error().ToString());
    return false;
  }
  count(OutcomeKind::kPermanent);
  log->error("delivery.dead {}={} event={} status={} attempt={} cause=\"{}\"", kind, name, event,
             report.outcome.http_status, attempts, report.outcome.error);
  return true;
}

void Dispatcher::HousekeepSmtp(store::Store& store) {
  std::chrono::milliseconds window{0};
  const auto now = clock_.Now();
  {
    util::MutexLock lock(mu_);
    if (now < smtp_housekeep_at_) return;
    smtp_housekeep_at_ = now + kSmtpHousekeepEvery;  // a failure waits for the next round too
    window = smtp_window_;
  }
  if (auto s = store.HousekeepSmtp(now, window); !s) {
    util::Log(util::Area::kDelivery).error("delivery.store_error cause=\"{}\"", s.error().ToString());
  }
}

void Dispatcher::UpdateGauges(store::Store& store) {
  if (auto n = store.outbox().PendingCount(); n.ok()) metrics_.outbox_pending.Set(static_cast<double>(*n));
  if (auto n = store.dead_letters().Count(); n.ok()) {
    metrics_.deadletters.Set(static_cast<double>(*n));
  }
}

}  // namespace mailhook::delivery
