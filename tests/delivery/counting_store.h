#pragma once
/// CountingStore: a store::Store that forwards every call to a real one and
/// records what the dispatcher asked its outbox for (claims and next-due
/// looks, with their skip lists), so a test can pin which questions reach
/// the store. Open it through Opener() (DispatcherOptions::open_store).

#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "store/open_store.h"
#include "store/store.h"

namespace mailhook::delivery {

class OutboxCalls {
 public:
  struct Call {
    std::string what;  ///< "claim" (with a limit > 0) or "next_due"
    std::vector<std::string> skip_targets;
  };
  void Record(std::string what, std::vector<std::string> skip) {
    std::lock_guard lock(mu_);
    calls_.push_back({std::move(what), std::move(skip)});
  }
  std::vector<Call> all() {
    std::lock_guard lock(mu_);
    return calls_;
  }

 private:
  std::mutex mu_;
  std::vector<Call> calls_;
};

class CountingOutbox final : public store::Outbox {
 public:
  CountingOutbox(store::Outbox& real, OutboxCalls& calls) : real_(real), calls_(calls) {}
  util::Status Add(const std::vector<store::OutboxItem>& items) override { return real_.Add(items); }
  util::Result<store::ClaimResult> Claim(const store::ClaimRequest& request) override {
    if (request.limit > 0) calls_.Record("claim", request.skip_targets);
    return real_.Claim(request);
  }
  util::Status MarkDelivered(const std::vector<int64_t>& ids) override { return real_.MarkDelivered(ids); }
  util::Status ScheduleRetry(int64_t id, int attempts, store::TimePoint at, const std::string& error) override {
    return real_.ScheduleRetry(id, attempts, at, error);
  }
  util::Status MoveToDeadLetters(int64_t id, int attempts, const std::string& error) override {
    return real_.MoveToDeadLetters(id, attempts, error);
  }
  util::Status ReleaseLease(int64_t id) override { return real_.ReleaseLease(id); }
  util::Status ReleaseAllLeases() override { return real_.ReleaseAllLeases(); }
  util::Result<std::optional<store::TimePoint>> NextDueAt(const std::vector<std::string>& skip) override {
    calls_.Record("next_due", skip);
    return real_.NextDueAt(skip);
  }
  util::Result<int64_t> PendingCount() override { return real_.PendingCount(); }
  util::Result<std::vector<store::Delivery>> ListPending() override { return real_.ListPending(); }
  util::Result<bool> AllDelivered(const std::string& event_id) override { return real_.AllDelivered(event_id); }
  util::Status PruneDelivered(store::TimePoint before) override { return real_.PruneDelivered(before); }

 private:
  store::Outbox& real_;
  OutboxCalls& calls_;
};

class CountingStore final : public store::Store {
 public:
  CountingStore(std::unique_ptr<store::Store> real, OutboxCalls& calls)
      : real_(std::move(real)), outbox_(real_->outbox(), calls) {}

  /// Opens the SQLite store of `state_dir`, wrapped.
  static store::StoreOpener Opener(std::string state_dir, OutboxCalls& calls) {
    return [state_dir = std::move(state_dir), &calls]() -> util::Result<std::unique_ptr<store::Store>> {
      auto real = store::SqliteStoreOpener(state_dir)();
      if (!real.ok()) return real.error();
      return std::unique_ptr<store::Store>(std::make_unique<CountingStore>(std::move(real).value(), calls));
    };
  }

  const std::string& path() const override { return real_->path(); }
  bool broken() const override { return real_->broken(); }
  store::Watermarks& watermarks() override { return real_->watermarks(); }
  store::Attempts& attempts() override { return real_->attempts(); }
  store::Outbox& outbox() override { return outbox_; }
  store::DeadLetters& dead_letters() override { return real_->dead_letters(); }
  store::PostActions& post_actions() override { return real_->post_actions(); }
  store::Bodies& bodies() override { return real_->bodies(); }
  store::Fingerprints& fingerprints() override { return real_->fingerprints(); }
  store::SmtpSent& smtp_sent() override { return real_->smtp_sent(); }
  store::SmtpRecipients& smtp_recipients() override { return real_->smtp_recipients(); }
  using store::Store::CommitMessages;
  util::Status CommitMessages(const std::string& account, const std::string& folder,
                              std::optional<store::Watermark> mark, const std::vector<store::OutboxItem>& items,
                              const std::vector<store::PostAction>& post_actions,
                              const std::vector<store::Fingerprint>& fingerprints) override {
    return real_->CommitMessages(account, folder, mark, items, post_actions, fingerprints);
  }
  util::Status Housekeep() override { return real_->Housekeep(); }
  util::Status HousekeepSmtp(store::TimePoint now, std::chrono::milliseconds window) override {
    return real_->HousekeepSmtp(now, window);
  }
  void SetFaultHookForTesting(std::function<void(std::string_view)> hook) override {
    real_->SetFaultHookForTesting(std::move(hook));
  }
  int64_t StatementsPreparedForTesting() const override { return real_->StatementsPreparedForTesting(); }

 private:
  std::unique_ptr<store::Store> real_;
  CountingOutbox outbox_;
};

}  // namespace mailhook::delivery
