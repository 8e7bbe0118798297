#include "delivery/dispatcher.h"

#include "delivery/hook_target.h"
#include "delivery/webhook_target.h"
#include "util/log.h"
#include "util/metrics.h"

namespace mailhook::delivery {
namespace {

using Clock = std::chrono::system_clock;
using util::Error;
using util::RetryClass;

// Webhooks are counted under the contract's names with a `webhook` label; hook
// commands under their own names with a `hook` label, so each metric family
// keeps one label set (as Prometheus expects).
constexpr const char* kDeliveries = "mailhook_deliveries_total";
constexpr const char* kDeliverySeconds = "mailhook_delivery_seconds";
constexpr const char* kHookRuns = "mailhook_hook_runs_total";
constexpr const char* kHookSeconds = "mailhook_hook_seconds";
constexpr const char* kPending = "mailhook_outbox_pending";
constexpr const char* kDeadLetters = "mailhook_deadletters";

/// "webhook:tickets" -> {"webhook", "tickets"}.
std::pair<std::string, std::string> SplitTarget(const std::string& target) {
  auto colon = target.find(':');
  if (colon == std::string::npos) return {"target", target};
  return {target.substr(0, colon), target.substr(colon + 1)};
}

const char* OutcomeLabel(OutcomeKind kind) {
  switch (kind) {
    case OutcomeKind::kSuccess: return "success";
    case OutcomeKind::kRetry: return "retry";
    case OutcomeKind::kPermanent: return "dead";
  }
  return "unknown";
}

int64_t Ms(std::chrono::nanoseconds d) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
}

}  // namespace

Dispatcher::Dispatcher(const config::Config& config, std::string version,
                       DispatcherOptions options)
    : state_dir_(config.state_dir), options_(options) {
  for (const auto& webhook : config.webhooks) {
    auto target = WebhookTarget::Create(webhook, version);
    if (!target.ok()) {
      setup_errors_.push_back(target.error());
      continue;
    }
    RegisterTarget("webhook:" + webhook.name, std::shared_ptr<Target>(std::move(target).value()),
                   RetryPolicy(webhook.retry_schedule));
  }
  for (const auto& hook : config.hooks) {
    RegisterTarget("hook:" + hook.name, std::make_shared<HookTarget>(hook),
                   RetryPolicy(hook.retry_schedule));
  }
}

Dispatcher::~Dispatcher() { Stop(); }

void Dispatcher::RegisterTarget(const std::string& key, std::shared_ptr<Target> target,
                                RetryPolicy policy) {
  targets_.insert_or_assign(key, Entry{std::move(target), std::move(policy)});
}

void Dispatcher::SetOnOutcome(std::function<void(const Report&)> callback) {
  on_outcome_ = std::move(callback);
}

util::Status Dispatcher::Start() {
  if (!setup_errors_.empty()) return setup_errors_.front();
  std::vector<std::unique_ptr<store::Store>> stores;
  for (int i = 0; i < options_.workers; ++i) {
    auto store = store::Store::Open(state_dir_);
    if (!store.ok()) return store.error();
    stores.push_back(std::move(store).value());
  }
  // Leases left by a previous run (crash, kill -9) would hold rows back for
  // the lease time; no other process delivers, so they are all stale.
  if (auto s = stores.front()->ReleaseAllLeases(); !s) return s;
  UpdateGauges(*stores.front());
  {
    std::lock_guard lock(mu_);
    stopping_ = false;
  }
  for (int i = 0; i < options_.workers; ++i) {
    workers_.emplace_back(&Dispatcher::Run, this, i, std::move(stores[static_cast<size_t>(i)]));
  }
  util::Logger("delivery")
      ->info("delivery.start workers={} targets={}", options_.workers, targets_.size());
  return util::Ok();
}

void Dispatcher::Wake() {
  {
    std::lock_guard lock(mu_);
    ++wake_seq_;
  }
  cv_.notify_all();
}

void Dispatcher::Stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_ && workers_.empty()) return;
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& [key, entry] : targets_) entry.target->Cancel();
  for (auto& t : workers_) t.join();
  if (!workers_.empty()) util::Logger("delivery")->info("delivery.stopped");
  workers_.clear();
}

void Dispatcher::WaitUntil(Clock::time_point until, uint64_t seen) {
  std::unique_lock lock(mu_);
  cv_.wait_until(lock, until, [&] { return stopping_ || wake_seq_ != seen; });
}

void Dispatcher::Run(int index, std::unique_ptr<store::Store> store) {
  auto log = util::Logger("delivery");
  // Per-worker RNG for jitter: no shared state between workers.
  std::mt19937_64 rng(std::random_device{}() + static_cast<uint64_t>(index));
  try {
    for (;;) {
      uint64_t seen;
      {
        std::lock_guard lock(mu_);
        if (stopping_) break;
        seen = wake_seq_;  // read before looking, so a Wake during the look is not lost
      }
      auto claimed = store->ClaimDue(Clock::now(), 1, options_.lease);
      if (!claimed.ok()) {
        log->error("delivery.store_error worker={} cause=\"{}\"", index,
                   claimed.error().ToString());
        WaitUntil(Clock::now() + options_.store_error_backoff, seen);
        continue;
      }
      if (claimed->empty()) {
        auto next = store->NextDueAt();
        // No row due: sleep until woken or the next due time, but look again
        // at least every few seconds: `mailhook deadletters replay` runs in
        // another process and cannot Wake() us.
        Clock::time_point until = Clock::now() + options_.idle_poll;
        if (!next.ok()) {
          until = Clock::now() + options_.store_error_backoff;
        } else if (next->has_value()) {
          until = std::min(until, **next);
        }
        WaitUntil(until, seen);
        continue;
      }
      for (const auto& row : *claimed) Process(*store, row, rng);
    }
  } catch (const std::exception& e) {
    // Every thread's entry point catches: a bug here must not take the daemon
    // down silently; the rows stay leased and are redelivered after a restart.
    log->error("delivery.worker_crashed worker={} cause=\"{}\"", index, e.what());
  }
}

void Dispatcher::Process(store::Store& store, const store::Delivery& row,
                         std::mt19937_64& rng) {
  auto log = util::Logger("delivery");
  auto [kind, name] = SplitTarget(row.item.target);
  const std::string& event = row.item.event_id;
  int attempts = row.attempts + 1;
  Report report{row.id, event, row.item.target, OutcomeKind::kPermanent, {}, attempts,
                row.item.account, row.item.folder};
  const bool is_hook = kind == "hook";
  auto count = [&](OutcomeKind outcome) {
    util::Metrics::Global().Inc(is_hook ? kHookRuns : kDeliveries,
                                {{kind, name}, {"outcome", OutcomeLabel(outcome)}});
  };

  auto it = targets_.find(row.item.target);
  if (it == targets_.end()) {
    report.outcome.kind = OutcomeKind::kPermanent;
    report.outcome.error = "target " + row.item.target +
                           " is not configured; add it back to the config and replay the "
                           "dead letter, or drop it";
  } else {
    {
      std::lock_guard lock(mu_);
      if (stopping_) {
        (void)store.ReleaseLease(row.id);
        return;
      }
    }
    auto start = std::chrono::steady_clock::now();
    report.outcome = it->second.target->Deliver(row);
    auto elapsed = std::chrono::steady_clock::now() - start;
    if (report.outcome.cancelled) {
      // Shutdown interrupted the request: not a real attempt. Give the row back
      // unrecorded; the next run delivers it (the receiver dedupes by webhook-id).
      (void)store.ReleaseLease(row.id);
      log->info("delivery.abandoned {}={} event={}", kind, name, event);
      return;
    }
    util::Metrics::Global().Observe(is_hook ? kHookSeconds : kDeliverySeconds, {{kind, name}},
                                    std::chrono::duration<double>(elapsed).count());
    report.result = report.outcome.kind;
    const auto& o = report.outcome;
    // Counted before the log line: whoever sees "delivery.ok" in the log sees
    // it in /metrics too.
    if (o.kind == OutcomeKind::kSuccess) {
      if (auto s = store.MarkDelivered(row.id); !s) {
        log->error("delivery.store_error event={} cause=\"{}\"", event, s.error().ToString());
        return;  // the lease expires and the row is delivered again: at-least-once
      }
      count(OutcomeKind::kSuccess);
      log->info("delivery.ok {}={} event={} status={} ms={}", kind, name, event, o.http_status,
                Ms(elapsed));
    } else if (o.kind == OutcomeKind::kRetry) {
      auto wait = it->second.policy.NextWait(attempts, o.retry_after, rng);
      if (wait) {
        if (auto s = store.ScheduleRetry(row.id, attempts, Clock::now() + *wait, o.error); !s) {
          log->error("delivery.store_error event={} cause=\"{}\"", event, s.error().ToString());
          return;
        }
        count(OutcomeKind::kRetry);
        log->warn("delivery.retry {}={} event={} status={} attempt={} next_in_ms={} cause=\"{}\"",
                  kind, name, event, o.http_status, attempts, wait->count(), o.error);
      } else {
        report.result = OutcomeKind::kPermanent;
        report.outcome.error = "retries exhausted after " + std::to_string(attempts) +
                               " attempts; last: " + o.error;
      }
    }
  }
  if (report.result == OutcomeKind::kPermanent) {
    if (auto s = store.MoveToDeadLetters(row.id, attempts, report.outcome.error); !s) {
      log->error("delivery.store_error event={} cause=\"{}\"", event, s.error().ToString());
      return;
    }
    count(OutcomeKind::kPermanent);
    log->error("delivery.dead {}={} event={} status={} attempt={} cause=\"{}\"", kind, name, event,
               report.outcome.http_status, attempts, report.outcome.error);
  }
  UpdateGauges(store);
  if (on_outcome_) on_outcome_(report);
}

void Dispatcher::UpdateGauges(store::Store& store) {
  auto& metrics = util::Metrics::Global();
  if (auto n = store.PendingCount(); n.ok()) metrics.Set(kPending, {}, static_cast<double>(*n));
  if (auto n = store.DeadLetterCount(); n.ok()) {
    metrics.Set(kDeadLetters, {}, static_cast<double>(*n));
  }
}

}  // namespace mailhook::delivery
