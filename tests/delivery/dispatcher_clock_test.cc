// The dispatcher reads "now" from the clock it is given: a retry is due by
// that clock, not by wall time.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <condition_variable>
#include <filesystem>
#include <mutex>

#include "delivery/dispatcher.h"
#include "idle_workers.h"
#include "store/open_store.h"
#include "store/store.h"
#include "util/clock.h"
#include "util/metrics_catalog.h"
#include "util/target_id.h"

namespace mailhook::delivery {
namespace {

using std::chrono::minutes;

/// Always asks for a retry; counts its calls.
class RetryingTarget : public Target {
 public:
  Outcome Deliver(const store::Delivery&, const util::CancelToken&) override {
    Outcome o;
    o.kind = OutcomeKind::kRetry;
    o.error = "scripted: try later";
    return o;
  }
};

/// Reports seen so far, waited on.
class Reports {
 public:
  std::function<void(const Report&)> Callback() {
    return [this](const Report&) {
      std::lock_guard lock(mu_);
      ++count_;
      cv_.notify_all();
    };
  }
  bool WaitFor(int n) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(20), [&] { return count_ >= n; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int count_ = 0;
};

TEST(DispatcherClockTest, ARetryIsDueByTheInjectedClock) {
  std::string tmpl = (std::filesystem::temp_directory_path() / "mh_dclock_XXXXXX").string();
  const std::string dir = mkdtemp(tmpl.data());
  {
    auto store = store::OpenStore({.state_dir = dir});
    ASSERT_TRUE(store.ok());
    store::OutboxItem item{"evt_1", "hook:fake", "acct", "INBOX", 7, 1, "{}", {}};
    ASSERT_TRUE((*store)->CommitMessages("acct", "INBOX", store::Watermark{7, 1}, {item}).ok());
    util::ManualClock clock(store::Clock::now());
    config::Config config;
    config.state_dir = dir;
    DispatcherOptions options;
    options.workers = 1;
    options.clock = &clock;
    util::MetricsCatalog metrics;
    Dispatcher dispatcher(config, "test", metrics, options);
    // Ten minutes between attempts, no jitter.
    dispatcher.RegisterTarget(util::TargetId::Hook("fake"), std::make_shared<RetryingTarget>(),
                              RetryPolicy({minutes(10), minutes(10)}, 0.0));
    Reports reports;
    dispatcher.SetOnOutcome(reports.Callback());
    ASSERT_TRUE(dispatcher.Start().ok());
    ASSERT_TRUE(reports.WaitFor(1));
    auto rows = (*store)->outbox().ListPending();
    ASSERT_TRUE(rows.ok());
    ASSERT_EQ(rows->size(), 1u);
    const auto due_in =
        std::chrono::duration_cast<std::chrono::milliseconds>(rows->front().next_attempt_at - clock.Now());
    EXPECT_NEAR(static_cast<double>(due_in.count()), 600000.0, 1.0) << "due ten minutes after the clock's now";
    // Ten minutes pass on the clock, not on the wall: the second attempt
    // comes at once.
    clock.Advance(minutes(11));
    dispatcher.Wake();
    EXPECT_TRUE(reports.WaitFor(2)) << "the row was not due by the injected clock";
    dispatcher.Stop();
  }
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

// smtp_sent is pruned by the dispatcher: at its start and then hourly by its
// clock, keeping the longest rate_limit.window (here 40 days, over the
// 30-day floor).
TEST(DispatcherClockTest, SmtpRepliesArePrunedHourlyKeepingTheLongestWindow) {
  using std::chrono::hours;
  std::string tmpl = (std::filesystem::temp_directory_path() / "mh_dclock_XXXXXX").string();
  const std::string dir = mkdtemp(tmpl.data());
  {
    auto store = store::OpenStore({.state_dir = dir});
    ASSERT_TRUE(store.ok());
    util::ManualClock clock(store::Clock::now());
    store::SmtpSent& sent = (*store)->smtp_sent();
    ASSERT_TRUE(sent.RecordSent({"smtp:ack", "a@example.org", "<41@x>", "evt_41", clock.Now() - hours(24 * 41)}).ok());
    ASSERT_TRUE(sent.RecordSent({"smtp:ack", "b@example.org", "<39@x>", "evt_39", clock.Now() - hours(24 * 39)}).ok());
    config::Config config;
    config.state_dir = dir;
    config::SmtpTarget longest;
    longest.rate_limit.window = hours(24 * 40);
    config.smtp.push_back(longest);  // read for its window only: not built here
    DispatcherOptions options;
    options.workers = 1;
    options.clock = &clock;
    options.idle_poll = hours(1);
    util::MetricsCatalog metrics;
    config::Config before;  // no smtp target yet: a reload brings the window
    before.state_dir = dir;
    Dispatcher dispatcher(before, "test", metrics, options);
    IdleWorkers idle(std::chrono::seconds(20));
    dispatcher.SetOnIdleForTest(idle.Callback());
    ASSERT_TRUE(dispatcher.UpdateTargets(config, {}, {}).ok());
    ASSERT_TRUE(dispatcher.Start().ok());
    ASSERT_TRUE(idle.WaitFor(1));  // the loop housekeeps before it looks
    EXPECT_FALSE(*sent.AlreadyAnswered("smtp:ack", "<41@x>"));
    EXPECT_TRUE(*sent.AlreadyAnswered("smtp:ack", "<39@x>"));
    // Within the hour nothing more is pruned.
    clock.Advance(std::chrono::minutes(30));
    ASSERT_TRUE(sent.RecordSent({"smtp:ack", "c@example.org", "<c@x>", "evt_c", clock.Now() - hours(24 * 41)}).ok());
    int looked = idle.count();
    dispatcher.Wake();
    ASSERT_TRUE(idle.WaitFor(looked + 1));
    EXPECT_TRUE(*sent.AlreadyAnswered("smtp:ack", "<c@x>"));
    // An hour after the first round, the next one.
    clock.Advance(std::chrono::minutes(31));
    looked = idle.count();
    dispatcher.Wake();
    ASSERT_TRUE(idle.WaitFor(looked + 1));
    EXPECT_FALSE(*sent.AlreadyAnswered("smtp:ack", "<c@x>"));
    EXPECT_TRUE(*sent.AlreadyAnswered("smtp:ack", "<39@x>"));
    dispatcher.Stop();
  }
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

}  // namespace
}  // namespace mailhook::delivery
