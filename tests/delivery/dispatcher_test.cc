#include "delivery/dispatcher.h"

#include <httplib.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <future>
#include <iostream>
#include <map>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "counting_store.h"
#include "delivery/signing.h"
#include "delivery/webhook_target.h"
#include "idle_workers.h"
#include "raw_receiver.h"
#include "store/db.h"
#include "store/open_store.h"
#include "temp_dir.h"
#include "util/metrics_catalog.h"

namespace mailhook::delivery {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Clock = std::chrono::system_clock;

const util::Secret kSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
constexpr auto kWait = 10s;  // generous upper bound for any condition below

/// A private temp dir (tests/support), removed with everything in it.
using testsupport::TempDir;

/// A scripted webhook receiver on 127.0.0.1:<any port>.
class Receiver {
 public:
  struct Seen {
    httplib::Headers headers;
    std::string body;
    std::string path;
    std::chrono::steady_clock::time_point at;
    int remote_port = 0;  // the client's port: one per TCP connection
  };
  struct Reply {
    Reply(int s = 204, std::string ra = "", bool b = false)  // NOLINT: brace lists in tests
        : status(s), retry_after(std::move(ra)), block(b) {}
    int status;
    std::string retry_after;
    bool block;  // hold the request until Unblock()
  };

  Receiver() {
    server_.Post(".*", [this](const httplib::Request& req, httplib::Response& res) {
      Reply reply;
      {
        std::unique_lock lock(mu_);
        seen_.push_back({req.headers, req.body, req.path, std::chrono::steady_clock::now(), req.remote_port});
        if (!script_.empty()) {
          reply = script_.front();
          script_.pop_front();
        }
        peak_ = std::max(peak_, ++in_flight_);
        cv_.notify_all();
        if (reply.block || hold_all_) cv_.wait_for(lock, kWait, [&] { return unblocked_; });
        --in_flight_;
      }
      res.status = reply.status;
      if (!reply.retry_after.empty()) res.set_header("Retry-After", reply.retry_after);
    });
    // httplib closes a kept-alive connection after 5 requests by default;
    // a real receiver keeps it, and the tests count connections.
    server_.set_keep_alive_max_count(1000);
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::yield();  // httplib 0.11: no ready signal
  }
  ~Receiver() {
    Unblock();
    server_.stop();
    thread_.join();
  }
  void Script(std::vector<Reply> replies) {
    std::lock_guard lock(mu_);
    script_.assign(replies.begin(), replies.end());
  }
  void Unblock() {
    std::lock_guard lock(mu_);
    unblocked_ = true;
    cv_.notify_all();
  }
  /// Holds every request until Unblock().
  void HoldAll() {
    std::lock_guard lock(mu_);
    hold_all_ = true;
  }
  /// Most requests it held at one time.
  int peak() {
    std::lock_guard lock(mu_);
    return peak_;
  }
  int in_flight() {
    std::lock_guard lock(mu_);
    return in_flight_;
  }
  /// TCP connections the requests came on.
  size_t connections() {
    std::lock_guard lock(mu_);
    std::set<int> ports;
    for (const auto& s : seen_) ports.insert(s.remote_port);
    return ports.size();
  }
  bool WaitForInFlight(int n) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, kWait, [&] { return in_flight_ >= n; });
  }
  bool WaitForRequests(size_t n) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, kWait, [&] { return seen_.size() >= n; });
  }
  std::vector<Seen> seen() {
    std::lock_guard lock(mu_);
    return seen_;
  }
  std::string url(const std::string& path = "/hook") const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }

 private:
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Reply> script_;
  std::vector<Seen> seen_;
  bool unblocked_ = false;
  bool hold_all_ = false;
  int in_flight_ = 0;
  int peak_ = 0;
};

/// Collects the dispatcher's reports.
class Reports {
 public:
  std::function<void(const Report&)> Callback() {
    return [this](const Report& r) {
      std::lock_guard lock(mu_);
      reports_.push_back(r);
      cv_.notify_all();
    };
  }
  /// Waits until a report with this result arrives; returns all reports so far.
  bool WaitFor(OutcomeKind result, size_t count = 1) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, kWait, [&] {
      size_t n = 0;
      for (const auto& r : reports_) n += r.result == result;
      return n >= count;
    });
  }
  std::vector<Report> all() {
    std::lock_guard lock(mu_);
    return reports_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Report> reports_;
};

config::Config MakeConfig(const std::string& state_dir, const std::string& url,
                          std::vector<config::Duration> schedule) {
  config::Config cfg;
  cfg.state_dir = state_dir;
  config::Webhook hook;
  hook.name = "tickets";
  hook.url = config::HttpUrl::Parse(url).value();
  hook.secrets = {kSecret};
  hook.headers = {{"Authorization", util::Secret("Bearer t0ken")}};
  hook.timeout = 5s;
  hook.retry_schedule = std::move(schedule);
  cfg.webhooks.push_back(hook);
  return cfg;
}

void Commit(const std::string& state_dir, uint32_t uid, const std::string& target = "webhook:tickets") {
  auto store = store::OpenStore({.state_dir = state_dir});
  ASSERT_TRUE(store.ok()) << store.error().ToString();
  store::OutboxItem item;
  item.event_id = "evt_test_" + std::to_string(uid);
  item.target = target;
  item.account = "support";
  item.folder = "INBOX";
  item.uidvalidity = 1;
  item.uid = uid;
  item.payload = R"({"id":"evt_test_)" + std::to_string(uid) + R"(","type":"message.received"})";
  ASSERT_TRUE((*store)->CommitMessages("support", "INBOX", {1, uid}, {item}).ok());
}

std::unique_ptr<store::Store> OpenStore(const std::string& dir) {
  auto s = store::OpenStore({.state_dir = dir});
  EXPECT_TRUE(s.ok());
  return s.ok() ? std::move(s).value() : nullptr;
}

// One row's reports by attempt. Their callbacks may run out of order: once
// a worker's ScheduleRetry committed, another worker can deliver the row
// before the first one's callback runs (seen under load).
std::vector<Report> InAttemptOrder(std::vector<Report> all) {
  std::stable_sort(all.begin(), all.end(), [](const Report& a, const Report& b) { return a.attempts < b.attempts; });
  return all;
}

TEST(DispatcherTest, ServerErrorsThenSuccessDeliversOnceWithOneWebhookId) {
  TempDir dir;
  Receiver receiver;
  receiver.Script({{500}, {500}, {500}, {200}});
  Commit(dir.path(), 1);
  Reports reports;
  util::MetricsCatalog metrics;  // this test's own: every value below is exact
  Dispatcher dispatcher(MakeConfig(dir.path(), receiver.url(), {10ms, 10ms, 10ms, 10ms}), "1.2.3", metrics);
  dispatcher.SetOnOutcome(reports.Callback());
  ASSERT_TRUE(dispatcher.Start().ok());
  ASSERT_TRUE(reports.WaitFor(OutcomeKind::kSuccess));
  dispatcher.Stop();

  auto seen = receiver.seen();
  ASSERT_EQ(seen.size(), 4u);
  for (const auto& s : seen) {
    auto header = [&](const char* name) {
      auto it = s.headers.find(name);
      return it == s.headers.end() ? std::string() : it->second;
    };
    EXPECT_EQ(s.path, "/hook");
    EXPECT_EQ(header("webhook-id"), "evt_test_1");
    EXPECT_EQ(header("Content-Type"), "application/json");
    EXPECT_EQ(header("User-Agent"), "mailhook/1.2.3");
    EXPECT_EQ(header("Authorization"), "Bearer t0ken");
    EXPECT_TRUE(Verify({kSecret}, header("webhook-id"), header("webhook-timestamp"), s.body,
                       header("webhook-signature"), Clock::now()));
    EXPECT_EQ(s.body, R"({"id":"evt_test_1","type":"message.received"})");
  }
  auto all = InAttemptOrder(reports.all());
  ASSERT_EQ(all.size(), 4u);
  EXPECT_EQ(all[0].result, OutcomeKind::kRetry);
  EXPECT_EQ(all[0].outcome.http_status, 500);
  EXPECT_EQ(all[3].attempts, 4);
  // Recorded before the report: exact once the success is reported.
  util::TargetMetrics tickets = metrics.ForTarget(util::TargetId::Webhook("tickets"));
  EXPECT_EQ(tickets.success.Value(), 1);
  EXPECT_EQ(tickets.retry.Value(), 3);
  EXPECT_EQ(tickets.dead.Value(), 0);
  EXPECT_EQ(tickets.seconds.Count(), 4u);
  EXPECT_EQ(metrics.outbox_pending.Value(), 0);
  EXPECT_EQ(metrics.deadletters.Value(), 0);
  EXPECT_EQ(metrics.worker_restarts.Value(), 0);
  EXPECT_EQ(metrics.workers_running.Value(), 5);  // the default: one more than concurrency 4

  auto store = OpenStore(dir.path());
  ASSERT_TRUE(store);
  EXPECT_EQ(*store->outbox().PendingCount(), 0);
  EXPECT_EQ(*store->dead_letters().Count(), 0);
  EXPECT_TRUE(*store->outbox().AllDelivered("evt_test_1"));
}

TEST(DispatcherTest, RetryAfterIsHonoured) {
  TempDir dir;
  Receiver receiver;
  receiver.Script({{429, "1"}, {204}});
  Commit(dir.path(), 1);
  Reports reports;
  util::MetricsCatalog metrics;
  Dispatcher dispatcher(MakeConfig(dir.path(), receiver.url(), {10ms}), "1", metrics);
  dispatcher.SetOnOutcome(reports.Callback());
  ASSERT_TRUE(dispatcher.Start().ok());
  ASSERT_TRUE(reports.WaitFor(OutcomeKind::kSuccess));
  dispatcher.Stop();
  auto seen = receiver.seen();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_GE(seen[1].at - seen[0].at, 900ms);  // 10ms schedule; Retry-After: 1 wins
  auto all = InAttemptOrder(reports.all());
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].outcome.http_status, 429);
  ASSERT_TRUE(all[0].outcome.retry_after.has_value());
  EXPECT_EQ(*all[0].outcome.retry_after, 1000ms);
}

TEST(DispatcherTest, ClientErrorGoesToDeadLettersAndReplayDelivers) {
  TempDir dir;
  Receiver receiver;
  receiver.Script({{400}, {204}});
  Commit(dir.path(), 1);
  Reports reports;
  util::MetricsCatalog metrics;
  Dispatcher dispatcher(MakeConfig(dir.path(), receiver.url(), {10ms, 10ms}), "1", metrics);
  dispatcher.SetOnOutcome(reports.Callback());
  ASSERT_TRUE(dispatcher.Start().ok());
  ASSERT_TRUE(reports.WaitFor(OutcomeKind::kPermanent));
  util::TargetMetrics tickets = metrics.ForTarget(util::TargetId::Webhook("tickets"));
  EXPECT_EQ(tickets.dead.Value(), 1);
  EXPECT_EQ(tickets.retry.Value(), 0);
  EXPECT_EQ(metrics.deadletters.Value(), 1);
  EXPECT_EQ(metrics.outbox_pending.Value(), 0);

  auto store = OpenStore(dir.path());  // a second connection, as `mailhook deadletters` uses
  ASSERT_TRUE(store);
  auto dead = store->dead_letters().List();
  ASSERT_TRUE(dead.ok());
  ASSERT_EQ(dead->size(), 1u);
  EXPECT_EQ((*dead)[0].item.event_id, "evt_test_1");
  EXPECT_EQ((*dead)[0].attempts, 1);
  EXPECT_NE((*dead)[0].last_error.find("HTTP 400"), std::string::npos);
  EXPECT_EQ(receiver.seen().size(), 1u);  // no retry of a permanent failure

  ASSERT_EQ(*store->dead_letters().ReplayAll(), 1);
  dispatcher.Wake();
  ASSERT_TRUE(reports.WaitFor(OutcomeKind::kSuccess));
  dispatcher.Stop();
  EXPECT_EQ(*store->dead_letters().Count(), 0);
  EXPECT_EQ(*store->outbox().PendingCount(), 0);
  EXPECT_EQ(tickets.success.Value(), 1);
  EXPECT_EQ(tickets.dead.Value(), 1);  // a counter: the replay does not undo it
  EXPECT_EQ(metrics.deadletters.Value(), 0);
  auto seen = receiver.seen();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[1].headers.find("webhook-id")->second, "evt_test_1");
}

int UnusedPort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);  // nothing listens there now: connections are refused
  return ntohs(addr.sin_port);
}

TEST(DispatcherTest, ConnectionRefusedRetriesThenDeadLetters) {
  TempDir dir;
  Commit(dir.path(), 1);
  Reports reports;
  std::string url = "http://127.0.0.1:" + std::to_string(UnusedPort()) + "/hook";
  util::MetricsCatalog metrics;
  Dispatcher dispatcher(MakeConfig(dir.path(), url, {10ms, 10ms}), "1", metrics);
  dispatcher.SetOnOutcome(reports.Callback());
  ASSERT_TRUE(dispatcher.Start().ok());
  ASSERT_TRUE(reports.WaitFor(OutcomeKind::kPermanent));
  dispatcher.Stop();
  auto all = InAttemptOrder(reports.all());
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].result, OutcomeKind::kRetry);
  EXPECT_EQ(all[0].outcome.http_status, 0);
  EXPECT_NE(all[0].outcome.error.find("Connection"), std::string::npos) << all[0].outcome.error;
  EXPECT_EQ(all[1].result, OutcomeKind::kRetry);
  EXPECT_EQ(all[2].result, OutcomeKind::kPermanent);
  EXPECT_NE(all[2].outcome.error.find("retries exhausted after 3"), std::string::npos);
}

TEST(DispatcherTest, WakePicksUpNewRowsAndEachIsDeliveredOnce) {
  TempDir dir;
  Receiver receiver;
  Reports reports;
  util::MetricsCatalog metrics;
  Dispatcher dispatcher(MakeConfig(dir.path(), receiver.url(), {10ms}), "1", metrics);
  dispatcher.SetOnOutcome(reports.Callback());
  ASSERT_TRUE(dispatcher.Start().ok());
  for (uint32_t uid = 1; uid <= 20; ++uid) Commit(dir.path(), uid);
  dispatcher.Wake();
  ASSERT_TRUE(reports.WaitFor(OutcomeKind::kSuccess, 20));
  dispatcher.Stop();
  std::set<std::string> ids;
  for (const auto& s : receiver.seen()) ids.insert(s.headers.find("webhook-id")->second);
  EXPECT_EQ(ids.size(), 20u);
  EXPECT_EQ(receiver.seen().size(), 20u);  // two workers, no row twice
}

TEST(DispatcherTest, DeliveriesThatFinishTogetherShareTheirMarksWriteTransaction) {
  // Issue 8: a success is not marked delivered in a transaction of its own.
  // Marks wait for company: a claim records them once kMarkBatch (64) wait
  // or the oldest waited kMarkDelay (20 ms), and the last worker to run out
  // of rows records what is left. So draining a backlog costs a write
  // transaction per 20 ms (or per 64 rows), not one per row.
  TempDir dir;
  Receiver receiver;
  Reports reports;
  util::MetricsCatalog metrics;
  constexpr uint32_t kRows = 200;
  for (uint32_t uid = 1; uid <= kRows; ++uid) Commit(dir.path(), uid);
  Dispatcher dispatcher(MakeConfig(dir.path(), receiver.url(), {10ms}), "1", metrics);
  dispatcher.SetOnOutcome(reports.Callback());
  const uint64_t before = store::Db::CommittedTransactions();
  const auto started = std::chrono::steady_clock::now();
  ASSERT_TRUE(dispatcher.Start().ok());
  ASSERT_TRUE(reports.WaitFor(OutcomeKind::kSuccess, kRows));
  const auto took = std::chrono::steady_clock::now() - started;
  dispatcher.Stop();
  const uint64_t spent = store::Db::CommittedTransactions() - before;
  // Start frees stale leases (1); one record per 20 ms of the drain, or per
  // 64 rows; one per worker that ran out of rows last. One per row was
  // 1 + kRows.
  const uint64_t workers = 1 + config::kDefaultConcurrency;
  const uint64_t periods = static_cast<uint64_t>(took / 20ms) + 1;
  std::cout << "write_transactions=" << spent << " deliveries=" << kRows
            << " ms=" << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << "\n";
  EXPECT_LE(spent, 1 + periods + kRows / 64 + workers);
  EXPECT_LT(spent, kRows / 2) << "the drain took so long that marks did not share";
  EXPECT_EQ(receiver.seen().size(), kRows);
  // Every report came after its row was recorded.
  auto store = OpenStore(dir.path());
  ASSERT_TRUE(store);
  EXPECT_EQ(*store->outbox().PendingCount(), 0);
}

TEST(DispatcherTest, AMarkThatWaitsForADeliveryInFlightIsRecordedWithinItsDelay) {
  // A worker that runs out of rows while another delivery is in flight
  // leaves its mark for that one to record, but sleeps only until the mark's
  // delay is up: a hanging delivery must not hold another's success back.
  TempDir dir;
  Receiver receiver;
  Commit(dir.path(), 1);
  Commit(dir.path(), 2);
  util::MetricsCatalog metrics;
  DispatcherOptions options;
  options.idle_poll = 1h;  // no idle worker looks again on its own: only the mark's delay wakes one
  Dispatcher dispatcher(MakeConfig(dir.path(), receiver.url(), {10ms}), "1", metrics, options);
  Reports reports;
  dispatcher.SetOnOutcome(reports.Callback());
  // The first delivery to start hangs (in flight) until released.
  std::mutex mu;
  std::condition_variable cv;
  int started = 0;
  bool release = false;
  dispatcher.SetBeforeDeliverForTest([&](const util::CancelToken&) {
    std::unique_lock lock(mu);
    if (++started > 1) return;
    cv.wait_for(lock, kWait, [&] { return release; });
  });
  ASSERT_TRUE(dispatcher.Start().ok());
  ASSERT_TRUE(reports.WaitFor(OutcomeKind::kSuccess, 1));
  bool still_in_flight = false;
  {
    std::lock_guard lock(mu);
    still_in_flight = !release && started == 2;
    release = true;
  }
  cv.notify_all();
  EXPECT_TRUE(still_in_flight) << "the success must be recorded while the other delivery hangs";
  ASSERT_TRUE(reports.WaitFor(OutcomeKind::kSuccess, 2));
  dispatcher.Stop();
  auto store = OpenStore(dir.path());
  ASSERT_TRUE(store);
  EXPECT_EQ(*store->outbox().PendingCount(), 0);
}

TEST(DispatcherTest, DrainingABacklogCountsTheOutboxAtMostEveryQuarterSecondAndExactlyAtTheEnd) {
  // Counting the outbox (and the dead letters) after every delivery made
  // draining n rows cost n² scans (two per message on PostgreSQL). While a
  // worker has more to deliver, the gauges follow at most every 250 ms; the
  // count that leaves it without work is always made.
  TempDir dir;
  Receiver receiver;
  util::MetricsCatalog metrics;
  constexpr uint32_t kRows = 120;
  for (uint32_t uid = 1; uid <= kRows; ++uid) Commit(dir.path(), uid);
  Reports reports;
  std::mutex mu;
  std::vector<double> seen_by_reports;  // the gauge as each success is reported
  auto record = reports.Callback();
  Dispatcher dispatcher(MakeConfig(dir.path(), receiver.url(), {10ms}), "1", metrics);
  dispatcher.SetOnOutcome([&](const Report& r) {
    {
      std::lock_guard lock(mu);
      seen_by_reports.push_back(metrics.outbox_pending.Value());
    }
    record(r);
  });
  const auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(dispatcher.Start().ok());
  EXPECT_EQ(metrics.outbox_pending.Value(), kRows);  // counted at start
  ASSERT_TRUE(reports.WaitFor(OutcomeKind::kSuccess, kRows));
  const auto elapsed = std::chrono::steady_clock::now() - start;
  dispatcher.Stop();
  std::set<double> distinct;
  {
    std::lock_guard lock(mu);
    distinct.insert(seen_by_reports.begin(), seen_by_reports.end());
  }
  // One count per 250 ms while busy, plus the last count of each worker.
  const auto quarters = static_cast<size_t>(elapsed / 250ms) + 1;
  const size_t bound = quarters + 1 + config::kDefaultConcurrency + 1;
  std::cout << "deliveries=" << kRows
            << " ms=" << std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count()
            << " distinct_gauge_values=" << distinct.size() << " bound=" << bound << "\n";
  // Counted after every delivery, the reports see about kRows values: the
  // run must be short enough for the bound to tell the two apart.
  ASSERT_LT(bound * 2, kRows) << "too slow a run to tell a throttled gauge from one counted every time";
  EXPECT_LE(distinct.size(), bound);
  EXPECT_EQ(metrics.outbox_pending.Value(), 0);  // exact once caught up
  EXPECT_EQ(receiver.seen().size(), kRows);
}

TEST(DispatcherTest, AWorkerThatFindsEveryTargetAtItsLimitAsksTheStoreNothing) {
  // Such a worker can claim nothing until a slot frees, and a freed slot
  // wakes it. Asking anyway made the store walk every due row to find none
  // (the claim's select and the next-due look skip the only target): on
  // PostgreSQL, a backlog of n rows cost n² row reads to drain.
  TempDir dir;
  Receiver receiver;
  receiver.HoldAll();
  constexpr uint32_t kRows = 6;
  for (uint32_t uid = 1; uid <= kRows; ++uid) Commit(dir.path(), uid);
  config::Config cfg = MakeConfig(dir.path(), receiver.url(), {10ms});
  cfg.webhooks[0].concurrency = 1;  // two workers: one delivers, the other finds no room
  OutboxCalls calls;
  DispatcherOptions options;
  options.open_store = CountingStore::Opener(dir.path(), calls);
  util::MetricsCatalog metrics;
  Dispatcher dispatcher(cfg, "1", metrics, options);
  IdleWorkers idle;
  dispatcher.SetOnIdleForTest(idle.Callback());
  Reports reports;
  dispatcher.SetOnOutcome(reports.Callback());
  ASSERT_TRUE(dispatcher.Start().ok());
  // The window: one delivery held, rows due, and the other worker asleep.
  ASSERT_TRUE(receiver.WaitForInFlight(1));
  ASSERT_TRUE(idle.WaitFor(1));
  EXPECT_EQ(receiver.in_flight(), 1);
  receiver.Unblock();
  ASSERT_TRUE(reports.WaitFor(OutcomeKind::kSuccess, kRows));
  dispatcher.Stop();
  int looks = 0;
  for (const OutboxCalls::Call& call : calls.all()) {
    ++looks;
    EXPECT_NE(call.skip_targets, std::vector<std::string>{"webhook:tickets"})
        << call.what << " with every target skipped reached the store";
  }
  EXPECT_GE(looks, 1);
  EXPECT_GE(idle.count(), 1);
  EXPECT_EQ(receiver.seen().size(), kRows);
}

TEST(DispatcherTest, AMessageCommittedAloneCostsOneWriteTransactionToDeliver) {
  // Issue 8: rows that come one at a time (a burst bounded by its APPENDs)
  // meet an idle worker whose claim finds only that row. The claim writes
  // nothing (the lease is held in the process); the mark is the one write.
  // With a lease in the file it was two per message (the claim, the mark).
  TempDir dir;
  Receiver receiver;
  Reports reports;
  util::MetricsCatalog metrics;
  Dispatcher dispatcher(MakeConfig(dir.path(), receiver.url(), {10ms}), "1", metrics);
  dispatcher.SetOnOutcome(reports.Callback());
  ASSERT_TRUE(dispatcher.Start().ok());
  constexpr uint32_t kRows = 20;
  const uint64_t before = store::Db::CommittedTransactions();
  for (uint32_t uid = 1; uid <= kRows; ++uid) {
    Commit(dir.path(), uid);  // one write transaction
    dispatcher.Wake();
    // A success is reported once its mark committed.
    ASSERT_TRUE(reports.WaitFor(OutcomeKind::kSuccess, uid));
  }
  const uint64_t spent = store::Db::CommittedTransactions() - before;
  dispatcher.Stop();
  std::cout << "write_transactions=" << spent << " messages=" << kRows << "\n";
  EXPECT_LE(spent, 2 * kRows) << "more than the commit and the mark per message";
  auto store = OpenStore(dir.path());
  ASSERT_TRUE(store);
  EXPECT_EQ(*store->outbox().PendingCount(), 0);
}

TEST(DispatcherTest, DeliveriesToAWebhookReuseOneKeptAliveConnection) {
  TempDir dir;
  Receiver receiver;
  Reports reports;
  util::MetricsCatalog metrics;
  Dispatcher dispatcher(MakeConfig(dir.path(), receiver.url(), {10ms}), "1", metrics);
  dispatcher.SetOnOutcome(reports.Callback());
  ASSERT_TRUE(dispatcher.Start().ok());
  // One at a time: each delivery finds the previous one's connection idle in the pool.
  for (uint32_t uid = 1; uid <= 20; ++uid) {
    Commit(dir.path(), uid);
    dispatcher.Wake();
    ASSERT_TRUE(reports.WaitFor(OutcomeKind::kSuccess, uid));
  }
  EXPECT_EQ(receiver.seen().size(), 20u);
  EXPECT_EQ(receiver.connections(), 1u);
  // A burst: at most one connection per delivery slot (concurrency 4), never one per event.
  for (uint32_t uid = 21; uid <= 60; ++uid) Commit(dir.path(), uid);
  dispatcher.Wake();
  ASSERT_TRUE(reports.WaitFor(OutcomeKind::kSuccess, 60));
  dispatcher.Stop();
  EXPECT_EQ(receiver.seen().size(), 60u);
  EXPECT_LE(receiver.connections(), static_cast<size_t>(config::kDefaultConcurrency));
}

TEST(DispatcherTest, ACommitWakesSleepingWorkersAtOnceWithoutPolling) {
  TempDir dir;
  Receiver receiver;
  Reports reports;
  IdleWorkers idle;
  util::MetricsCatalog metrics;
  DispatcherOptions options;
  options.idle_poll = std::chrono::hours(1);  // only a Wake can end the sleep within the test
  Dispatcher dispatcher(MakeConfig(dir.path(), receiver.url(), {10ms}), "1", metrics, options);
  dispatcher.SetOnOutcome(reports.Callback());
  dispatcher.SetOnIdleForTest(idle.Callback());
  ASSERT_TRUE(dispatcher.Start().ok());
  // Every worker (1 + concurrency 4) has looked, found nothing and is asleep.
  ASSERT_TRUE(idle.WaitFor(1 + config::kDefaultConcurrency));
  for (int round = 1; round <= 5; ++round) {
    int slept = idle.count();
    Commit(dir.path(), static_cast<uint32_t>(round));
    auto woke = std::chrono::steady_clock::now();
    dispatcher.Wake();
    ASSERT_TRUE(reports.WaitFor(OutcomeKind::kSuccess, static_cast<size_t>(round)));
    auto seen = receiver.seen();
    ASSERT_EQ(seen.size(), static_cast<size_t>(round));
    auto latency = seen.back().at - woke;
    // Far below any polling interval: the Wake itself ended the sleep.
    EXPECT_LT(latency, 500ms) << "round " << round;
    std::cout << "wake_to_receipt_us=" << std::chrono::duration_cast<std::chrono::microseconds>(latency).count()
              << "\n";
    // Back to sleep before the next round, so each round starts from sleeping
    // workers. One message wakes one worker (issue 8: not all of them, each to
    // find nothing); the others slept on.
    ASSERT_TRUE(idle.WaitFor(slept + 1));
    EXPECT_EQ(idle.count(), slept + 1) << "round " << round << ": idle workers woken by one message";
  }
  dispatcher.Stop();
}

/// Idle reports per worker index.
class IdleByWorker {
 public:
  std::function<void(int)> Callback() {
    return [this](int worker) {
      std::lock_guard lock(mu_);
      ++counts_[worker];
      ++total_;
      cv_.notify_all();
    };
  }
  std::map<int, int> counts() {
    std::lock_guard lock(mu_);
    return counts_;
  }
  bool WaitForWorkers(size_t n) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, kWait, [&] { return counts_.size() >= n; });
  }
  bool WaitForTotal(int n) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, kWait, [&] { return total_ >= n; });
  }
  int total() {
    std::lock_guard lock(mu_);
    return total_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<int, int> counts_;
  int total_ = 0;
};

TEST(DispatcherTest, OneIdleWorkerPollsAndFindsRowsAnotherProcessAdded) {
  TempDir dir;
  Receiver receiver;
  Reports reports;
  IdleByWorker idle;
  util::MetricsCatalog metrics;
  DispatcherOptions options;
  options.idle_poll = 20ms;
  Dispatcher dispatcher(MakeConfig(dir.path(), receiver.url(), {10ms}), "1", metrics, options);
  dispatcher.SetOnOutcome(reports.Callback());
  dispatcher.SetOnIdleForTest(idle.Callback());
  ASSERT_TRUE(dispatcher.Start().ok());
  const size_t workers = 1 + config::kDefaultConcurrency;
  ASSERT_TRUE(idle.WaitForWorkers(workers));  // each has looked once and sleeps
  auto before = idle.counts();
  ASSERT_TRUE(idle.WaitForTotal(idle.total() + 10));  // ten polls
  auto after = idle.counts();
  int polling = 0;
  for (const auto& [worker, n] : after) polling += n > before[worker];
  EXPECT_EQ(polling, 1) << "idle workers that woke without a Wake";
  // A row committed with no Wake (as `mailhook deadletters replay` does, from
  // another process) is found by the poll.
  Commit(dir.path(), 1);
  ASSERT_TRUE(reports.WaitFor(OutcomeKind::kSuccess, 1));
  dispatcher.Stop();
  EXPECT_EQ(receiver.seen().size(), 1u);
}

TEST(DispatcherTest, AtMostConcurrencyDeliveriesAreInFlightToOneTarget) {
  TempDir dir;
  Receiver receiver;
  receiver.HoldAll();
  Reports reports;
  IdleWorkers idle;
  util::MetricsCatalog metrics;
  auto cfg = MakeConfig(dir.path(), receiver.url(), {10ms});
  cfg.webhooks[0].concurrency = 3;
  for (uint32_t uid = 1; uid <= 12; ++uid) Commit(dir.path(), uid);
  Dispatcher dispatcher(cfg, "1", metrics);
  dispatcher.SetOnOutcome(reports.Callback());
  dispatcher.SetOnIdleForTest(idle.Callback());
  ASSERT_TRUE(dispatcher.Start().ok());  // 4 workers: one more than the limit
  ASSERT_TRUE(receiver.WaitForInFlight(3));
  // The spare worker looked while three were held, found the target full and slept.
  ASSERT_TRUE(idle.WaitFor(1));
  EXPECT_EQ(receiver.in_flight(), 3);
  EXPECT_EQ(receiver.seen().size(), 3u);
  receiver.Unblock();
  ASSERT_TRUE(reports.WaitFor(OutcomeKind::kSuccess, 12));
  dispatcher.Stop();
  EXPECT_EQ(receiver.peak(), 3);  // reached, never passed
  EXPECT_EQ(receiver.seen().size(), 12u);
  EXPECT_LE(receiver.connections(), 3u);
}

TEST(DispatcherTest, StopAbandonsInFlightRequestAndKeepsTheRow) {
  TempDir dir;
  Receiver receiver;
  receiver.Script({{204, "", /*block=*/true}});
  Commit(dir.path(), 1);
  Reports reports;
  util::MetricsCatalog metrics;
  Dispatcher dispatcher(MakeConfig(dir.path(), receiver.url(), {10ms}), "1", metrics);
  dispatcher.SetOnOutcome(reports.Callback());
  ASSERT_TRUE(dispatcher.Start().ok());
  ASSERT_TRUE(receiver.WaitForRequests(1));
  auto start = std::chrono::steady_clock::now();
  dispatcher.Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 3s);  // did not wait for the 5s timeout
  receiver.Unblock();
  EXPECT_TRUE(reports.all().empty());
  auto store = OpenStore(dir.path());
  ASSERT_TRUE(store);
  auto pending = store->outbox().ListPending();
  ASSERT_TRUE(pending.ok());
  ASSERT_EQ(pending->size(), 1u);
  EXPECT_EQ((*pending)[0].attempts, 0);
  EXPECT_EQ(store->outbox().ClaimDue(Clock::now(), 1)->size(), 1u);  // lease released
}

TEST(DispatcherTest, UnknownTargetGoesToDeadLetters) {
  TempDir dir;
  Commit(dir.path(), 1, "webhook:removed");
  Commit(dir.path(), 2, "ftp:later");  // a kind this version does not know
  Commit(dir.path(), 3, "smtp:gone");  // a removed smtp target: its own family
  Reports reports;
  util::MetricsCatalog metrics;
  Dispatcher dispatcher(MakeConfig(dir.path(), "http://127.0.0.1:9/x", {10ms}), "1", metrics);
  dispatcher.SetOnOutcome(reports.Callback());
  ASSERT_TRUE(dispatcher.Start().ok());
  ASSERT_TRUE(reports.WaitFor(OutcomeKind::kPermanent, 3));
  dispatcher.Stop();
  for (const Report& r : reports.all()) {
    EXPECT_NE(r.outcome.error.find("not configured"), std::string::npos) << r.target;
  }
  // A removed webhook is still counted under its name; an unknown kind has no
  // family of its own and is only logged (never a family with other labels).
  EXPECT_EQ(metrics.ForTarget(util::TargetId::Webhook("removed")).dead.Value(), 1);
  EXPECT_EQ(metrics.ForTarget(util::TargetId::Smtp("gone")).dead.Value(), 1);
  EXPECT_EQ(metrics.deadletters.Value(), 3);
  const std::string text = metrics.Render();
  EXPECT_EQ(text.find("webhook=\"gone\""), std::string::npos) << text;
  EXPECT_EQ(text.find("later"), std::string::npos) << text;
  EXPECT_EQ(text.find("ftp"), std::string::npos) << text;
}

TEST(DispatcherTest, HookRunsAreCountedUnderTheirOwnMetricNames) {
  // One label set per metric family: webhooks under mailhook_deliveries_total
  // {webhook, outcome}, hook commands under mailhook_hook_runs_total{hook, outcome}.
  TempDir dir;
  Commit(dir.path(), 1, "hook:archive");
  config::Config cfg;
  cfg.state_dir = dir.path();
  config::Hook hook;
  hook.name = "archive";
  hook.command = {"/bin/sh", "-c", "cat >/dev/null"};
  hook.timeout = 5s;
  hook.retry_schedule = {10ms};
  cfg.hooks.push_back(hook);
  Reports reports;
  util::MetricsCatalog metrics;
  Dispatcher dispatcher(cfg, "1", metrics);
  dispatcher.SetOnOutcome(reports.Callback());
  ASSERT_TRUE(dispatcher.Start().ok());
  ASSERT_TRUE(reports.WaitFor(OutcomeKind::kSuccess));
  dispatcher.Stop();
  util::TargetMetrics archive = metrics.ForTarget(util::TargetId::Hook("archive"));
  EXPECT_EQ(archive.success.Value(), 1);
  EXPECT_EQ(archive.seconds.Count(), 1u);
  EXPECT_EQ(metrics.ForTarget(util::TargetId::Webhook("archive")).success.Value(), 0);
  const std::string text = metrics.Render();
  EXPECT_NE(text.find("mailhook_hook_runs_total{hook=\"archive\",outcome=\"success\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("mailhook_hook_seconds_count{hook=\"archive\"} 1\n"), std::string::npos);
  EXPECT_EQ(text.find("mailhook_deliveries_total{"), std::string::npos) << text;
}

TEST(DispatcherTest, BadWebhookFailsStart) {
  // The URL comes validated (config::HttpUrl); a secret is resolved here, so a
  // failing secret_command is what stops the start.
  TempDir dir;
  auto cfg = MakeConfig(dir.path(), "http://127.0.0.1:9/x", {10ms});
  cfg.webhooks[0].secrets = {config::SecretRef::Command({"/bin/false"}).WithName("\"secret_command\"")};
  util::MetricsCatalog metrics;
  Dispatcher dispatcher(cfg, "1", metrics);
  auto s = dispatcher.Start();
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message().find("webhooks.tickets"), std::string::npos) << s.error().message();
  EXPECT_NE(s.error().message().find("secret_command"), std::string::npos) << s.error().message();
}

/// A receiver whose every request hangs until Release() (or the receiver ends).
class HangingReceiver {
 public:
  HangingReceiver()
      : raw_([this](int, testing::RawReceiver& self) {
          std::unique_lock lock(mu_);
          ++hanging_;
          cv_.notify_all();
          while (!released_ && !self.stopping()) cv_.wait_for(lock, 50ms);
        }) {}
  ~HangingReceiver() { Release(); }
  void Release() {
    std::lock_guard lock(mu_);
    released_ = true;
    cv_.notify_all();
  }
  bool WaitForHanging(int n) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, kWait, [&] { return hanging_ >= n; });
  }
  int hanging() {
    std::lock_guard lock(mu_);
    return hanging_;
  }
  std::string url() const { return raw_.url(); }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int hanging_ = 0;  // guarded by mu_
  bool released_ = false;
  testing::RawReceiver raw_;  // last: its threads use the members above
};

TEST(DispatcherTest, HangingTargetDoesNotStarveAnotherAndKeepsToItsConcurrency) {
  TempDir dir;
  HangingReceiver slow;
  Receiver fast;
  auto cfg = MakeConfig(dir.path(), slow.url(), {10ms});
  cfg.webhooks[0].name = "slow";
  cfg.webhooks[0].timeout = 5min;  // hangs for the whole test unless isolated
  cfg.webhooks[0].concurrency = 2;
  auto b = cfg.webhooks[0];
  b.name = "fast";
  b.url = config::HttpUrl::Parse(fast.url()).value();
  b.timeout = 5s;
  cfg.webhooks.push_back(b);
  // Ten events for the hanging target first (oldest, so claimed first), then three for the other.
  for (uint32_t uid = 1; uid <= 10; ++uid) Commit(dir.path(), uid, "webhook:slow");
  for (uint32_t uid = 11; uid <= 13; ++uid) Commit(dir.path(), uid, "webhook:fast");
  Reports reports;
  util::MetricsCatalog metrics;
  Dispatcher dispatcher(cfg, "1", metrics);
  dispatcher.SetOnOutcome(reports.Callback());
  auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(dispatcher.Start().ok());
  ASSERT_TRUE(reports.WaitFor(OutcomeKind::kSuccess, 3));
  EXPECT_LT(std::chrono::steady_clock::now() - start, 3s);
  ASSERT_TRUE(slow.WaitForHanging(2));
  EXPECT_EQ(slow.hanging(), 2);  // its concurrency, though eight more of its rows are due
  EXPECT_EQ(fast.seen().size(), 3u);
  auto stop_start = std::chrono::steady_clock::now();
  dispatcher.Stop();  // cancels the two hanging requests
  EXPECT_LT(std::chrono::steady_clock::now() - stop_start, 3s);
  auto store = OpenStore(dir.path());
  ASSERT_TRUE(store);
  auto pending = store->outbox().ListPending();
  ASSERT_TRUE(pending.ok());
  EXPECT_EQ(pending->size(), 10u);  // the slow target's rows are kept, unattempted
  for (const auto& row : *pending) EXPECT_EQ(row.attempts, 0);
}

/// A target that throws on its first `failures` calls, then succeeds.
class ThrowingTarget : public Target {
 public:
  explicit ThrowingTarget(int failures) : failures_(failures) {}
  Outcome Deliver(const store::Delivery&, const util::CancelToken&) override {
    if (calls_++ < failures_) throw std::runtime_error("boom from target");
    Outcome o;
    o.kind = OutcomeKind::kSuccess;
    return o;
  }

 private:
  int failures_;
  std::atomic<int> calls_{0};
};

/// A target that blocks until its call's token fires (then: cancelled) or 60 s pass.
class BlockingTarget : public Target {
 public:
  Outcome Deliver(const store::Delivery&, const util::CancelToken& cancel) override {
    ++calls_;
    Outcome o;
    pollfd p{cancel.fd(), POLLIN, 0};
    if (::poll(&p, 1, 60000) > 0) {
      o.cancelled = true;
    } else {
      o.kind = OutcomeKind::kSuccess;
    }
    return o;
  }
  int calls() const { return calls_; }

 private:
  std::atomic<int> calls_{0};
};

TEST(DispatcherTest, StopBetweenTheStopCheckAndDeliverIsSeenByTheDelivery) {
  TempDir dir;
  Commit(dir.path(), 1, "webhook:block");
  config::Config cfg;
  cfg.state_dir = dir.path();
  DispatcherOptions options;
  options.workers = 1;
  util::MetricsCatalog metrics;
  Dispatcher dispatcher(cfg, "1", metrics, options);
  auto target = std::make_shared<BlockingTarget>();
  dispatcher.RegisterTarget(util::TargetId::Webhook("block"), target, RetryPolicy({10ms}));
  Reports reports;
  dispatcher.SetOnOutcome(reports.Callback());
  // The worker passed its stop check; hold it there until Stop() has fired,
  // so that Deliver starts after the stop (the window).
  std::promise<void> in_window;
  std::atomic<bool> window_hit{false};
  dispatcher.SetBeforeDeliverForTest([&](const util::CancelToken& stop) {
    in_window.set_value();
    pollfd p{stop.fd(), POLLIN, 0};
    window_hit = ::poll(&p, 1, 10000) > 0;
  });
  ASSERT_TRUE(dispatcher.Start().ok());
  ASSERT_EQ(in_window.get_future().wait_for(kWait), std::future_status::ready);
  auto start = std::chrono::steady_clock::now();
  dispatcher.Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 3s);  // not the target's 60 s
  EXPECT_TRUE(window_hit);                                  // Stop() had fired before Deliver began
  EXPECT_EQ(target->calls(), 1);
  EXPECT_TRUE(reports.all().empty());  // abandoned, not an attempt
  auto store = OpenStore(dir.path());
  ASSERT_TRUE(store);
  auto pending = store->outbox().ListPending();
  ASSERT_TRUE(pending.ok());
  ASSERT_EQ(pending->size(), 1u);
  EXPECT_EQ((*pending)[0].attempts, 0);
}

TEST(DispatcherTest, ExceptionWhileDeliveringReschedulesTheRow) {
  TempDir dir;
  Commit(dir.path(), 1, "webhook:boom");
  config::Config cfg;
  cfg.state_dir = dir.path();
  Reports reports;
  util::MetricsCatalog metrics;
  Dispatcher dispatcher(cfg, "1", metrics);
  dispatcher.RegisterTarget(util::TargetId::Webhook("boom"), std::make_shared<ThrowingTarget>(1),
                            RetryPolicy({10ms, 10ms}));
  dispatcher.SetOnOutcome(reports.Callback());
  ASSERT_TRUE(dispatcher.Start().ok());
  ASSERT_TRUE(reports.WaitFor(OutcomeKind::kSuccess));
  EXPECT_TRUE(dispatcher.Healthy());
  dispatcher.Stop();
  auto all = InAttemptOrder(reports.all());
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].attempts, 1);
  EXPECT_EQ(all[0].result, OutcomeKind::kRetry);
  EXPECT_NE(all[0].outcome.error.find("internal error: boom from target"), std::string::npos) << all[0].outcome.error;
  EXPECT_EQ(all[1].attempts, 2);
  EXPECT_EQ(all[1].result, OutcomeKind::kSuccess);
}

bool WaitForMetric(const util::Counter& counter, double value) {
  auto until = std::chrono::steady_clock::now() + kWait;
  while (counter.Value() < value) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(5ms);  // polling a condition that has no notifier
  }
  return true;
}

TEST(DispatcherTest, CrashedWorkerMakesItUnhealthyUntilItRestarts) {
  TempDir dir;
  Receiver receiver;
  Commit(dir.path(), 1);
  Commit(dir.path(), 2);
  DispatcherOptions options;
  options.workers = 1;
  options.restart_backoff = 300ms;
  util::MetricsCatalog metrics;
  Dispatcher dispatcher(MakeConfig(dir.path(), receiver.url(), {10ms}), "1", metrics, options);
  Reports reports;
  std::atomic<int> calls{0};
  auto record = reports.Callback();
  dispatcher.SetOnOutcome([&](const Report& r) {
    record(r);
    // A bug outside the per-row handling: it escapes the worker's loop.
    if (calls++ == 0) throw std::runtime_error("observer bug");
  });
  EXPECT_FALSE(dispatcher.Healthy());  // not started
  ASSERT_TRUE(dispatcher.Start().ok());
  ASSERT_TRUE(WaitForMetric(metrics.worker_restarts, 1));
  EXPECT_EQ(metrics.workers_running.Value(), 0);
  EXPECT_FALSE(dispatcher.Healthy());                      // its only worker waits to restart
  ASSERT_TRUE(reports.WaitFor(OutcomeKind::kSuccess, 2));  // the restarted worker goes on
  auto until = std::chrono::steady_clock::now() + kWait;
  while (!dispatcher.Healthy() && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(5ms);
  }
  EXPECT_TRUE(dispatcher.Healthy());
  EXPECT_EQ(metrics.worker_restarts.Value(), 1);
  EXPECT_EQ(metrics.workers_running.Value(), 1);
  dispatcher.Stop();
  EXPECT_FALSE(dispatcher.Healthy());
  EXPECT_EQ(receiver.seen().size(), 2u);
}

TEST(DispatcherTest, StopEndsARestartPause) {
  TempDir dir;
  Receiver receiver;
  Commit(dir.path(), 1);
  DispatcherOptions options;
  options.workers = 1;
  options.restart_backoff = std::chrono::hours(1);
  util::MetricsCatalog metrics;
  Dispatcher dispatcher(MakeConfig(dir.path(), receiver.url(), {10ms}), "1", metrics, options);
  std::atomic<bool> thrown{false};
  dispatcher.SetOnOutcome([&](const Report&) {
    thrown = true;
    throw std::runtime_error("observer bug");
  });
  ASSERT_TRUE(dispatcher.Start().ok());
  ASSERT_TRUE(receiver.WaitForRequests(1));
  auto until = std::chrono::steady_clock::now() + kWait;
  while (!thrown && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(5ms);
  ASSERT_TRUE(thrown);
  auto start = std::chrono::steady_clock::now();
  dispatcher.Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 3s);
}

TEST(DispatcherTest, TimeoutThatCouldOutliveTheLeaseFailsStart) {
  TempDir dir;
  auto cfg = MakeConfig(dir.path(), "http://127.0.0.1:9/x", {10ms});
  cfg.webhooks[0].timeout = 10min;
  DispatcherOptions options;
  options.lease = std::chrono::minutes(10);
  util::MetricsCatalog metrics;
  Dispatcher dispatcher(cfg, "1", metrics, options);
  auto s = dispatcher.Start();
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message().find("lease"), std::string::npos) << s.error().message();
  Dispatcher fits(cfg, "1", metrics);  // the default 15 min lease holds a 10 min attempt
  EXPECT_TRUE(fits.Start().ok());
}

TEST(WebhookTargetTest, RedirectIsPermanentAndNotFollowed) {
  Receiver receiver;
  receiver.Script({{302}});
  config::Webhook hook;
  hook.name = "r";
  hook.url = config::HttpUrl::Parse(receiver.url()).value();
  auto target = WebhookTarget::Create(hook, "1");
  ASSERT_TRUE(target.ok());
  store::Delivery d;
  d.item.event_id = "evt_1";
  d.item.payload = "{}";
  auto out = (*target)->Deliver(d, util::CancelToken::Never());
  EXPECT_EQ(out.kind, OutcomeKind::kPermanent);
  EXPECT_EQ(out.http_status, 302);
  EXPECT_EQ(receiver.seen().size(), 1u);
  EXPECT_EQ(receiver.seen()[0].headers.count("webhook-signature"), 0u);  // no secret set
}

}  // namespace
}  // namespace mailhook::delivery

namespace mailhook::delivery {
namespace {

// Issue 9, SIGHUP reload: UpdateTargets swaps what changed and keeps the rest.

config::Webhook NamedWebhook(const std::string& name, const std::string& url) {
  config::Webhook w;
  w.name = name;
  w.url = config::HttpUrl::Parse(url).value();
  w.secrets = {kSecret};
  w.timeout = 5s;
  w.retry_schedule = {10ms};
  return w;
}

TEST(DispatcherReloadTest, AChangedTargetIsSwappedInTheInFlightDeliveryEndsOnTheOldAndOthersKeepTheirConnection) {
  TempDir dir;
  Receiver old_url, new_url, other;
  old_url.Script({{204, "", /*block=*/true}});
  config::Config cfg;
  cfg.state_dir = dir.path();
  cfg.webhooks = {NamedWebhook("tickets", old_url.url()), NamedWebhook("other", other.url())};
  Reports reports;
  util::MetricsCatalog metrics;
  Dispatcher dispatcher(cfg, "1", metrics);
  dispatcher.SetOnOutcome(reports.Callback());
  Commit(dir.path(), 1);
  Commit(dir.path(), 2, "webhook:other");
  ASSERT_TRUE(dispatcher.Start().ok());
  ASSERT_TRUE(old_url.WaitForInFlight(1));                 // uid 1 held by the old URL
  ASSERT_TRUE(reports.WaitFor(OutcomeKind::kSuccess, 1));  // uid 2 to other

  cfg.webhooks[0].url = config::HttpUrl::Parse(new_url.url()).value();
  ASSERT_TRUE(dispatcher.UpdateTargets(cfg, {"webhook:tickets"}, {}).ok());
  Commit(dir.path(), 3);
  Commit(dir.path(), 4, "webhook:other");
  dispatcher.Wake();
  ASSERT_TRUE(new_url.WaitForRequests(1));  // uid 3 to the new URL while uid 1 still runs
  EXPECT_EQ(old_url.in_flight(), 1);
  old_url.Unblock();
  ASSERT_TRUE(reports.WaitFor(OutcomeKind::kSuccess, 4));
  dispatcher.Stop();
  EXPECT_EQ(old_url.seen().size(), 1u);  // the in-flight one ended there, recorded once
  EXPECT_EQ(new_url.seen().size(), 1u);
  EXPECT_EQ(other.seen().size(), 2u);
  EXPECT_EQ(other.connections(), 1u);  // not rebuilt: its kept-alive connection served both
  auto store = OpenStore(dir.path());
  ASSERT_TRUE(store);
  EXPECT_EQ(store->outbox().PendingCount().value(), 0);
}

TEST(DispatcherReloadTest, AnAddedTargetGetsItsRowsARemovedOnesRowsAreDeadLettersAndAFailedBuildChangesNothing) {
  TempDir dir;
  Receiver first, added;
  config::Config cfg;
  cfg.state_dir = dir.path();
  cfg.webhooks = {NamedWebhook("tickets", first.url())};
  Reports reports;
  util::MetricsCatalog metrics;
  Dispatcher dispatcher(cfg, "1", metrics);
  dispatcher.SetOnOutcome(reports.Callback());
  ASSERT_TRUE(dispatcher.Start().ok());

  // A target that cannot be built (its timeout outlives the lease): an
  // error, and nothing changed — not even the targets that built.
  config::Config bad = cfg;
  bad.webhooks.push_back(NamedWebhook("added", added.url()));
  bad.webhooks.push_back(NamedWebhook("broken", added.url()));
  bad.webhooks.back().timeout = std::chrono::minutes(20);
  EXPECT_FALSE(dispatcher.UpdateTargets(bad, {"webhook:added", "webhook:broken"}, {}).ok());
  Commit(dir.path(), 1, "webhook:added");
  dispatcher.Wake();
  ASSERT_TRUE(reports.WaitFor(OutcomeKind::kPermanent, 1));
  EXPECT_EQ(added.seen().size(), 0u);

  cfg.webhooks.push_back(NamedWebhook("added", added.url()));
  ASSERT_TRUE(dispatcher.UpdateTargets(cfg, {"webhook:added"}, {}).ok());
  Commit(dir.path(), 2, "webhook:added");
  dispatcher.Wake();
  ASSERT_TRUE(reports.WaitFor(OutcomeKind::kSuccess, 1));
  EXPECT_EQ(added.seen().size(), 1u);

  ASSERT_TRUE(dispatcher.UpdateTargets(cfg, {}, {"webhook:tickets"}).ok());
  Commit(dir.path(), 3);  // to the removed target
  dispatcher.Wake();
  ASSERT_TRUE(reports.WaitFor(OutcomeKind::kPermanent, 2));
  dispatcher.Stop();
  EXPECT_EQ(first.seen().size(), 0u);
  auto store = OpenStore(dir.path());
  ASSERT_TRUE(store);
  EXPECT_EQ(store->dead_letters().Count().value(), 2);  // replayable once the target is back
}

}  // namespace
}  // namespace mailhook::delivery
