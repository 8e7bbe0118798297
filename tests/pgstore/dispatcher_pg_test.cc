// The dispatcher on the PostgreSQL store (private cluster, PostgresServer):
// when the server ends its session (a restart, a failover, an operator's
// pg_terminate_backend), the dispatcher opens a new connection and goes on
// delivering, instead of failing every claim with a dead connection.

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "daemon/configured_store.h"
#include "delivery/dispatcher.h"
#include "pgstore/pg_connection.h"
#include "postgres_server.h"
#include "status_assert.h"
#include "util/metrics_catalog.h"

namespace mailhook::delivery {
namespace {

using std::chrono::milliseconds;
using testsupport::PostgresServer;

/// Succeeds, counting the event ids it saw (the delivery itself is not
/// under test here: the store under it is).
class CountingTarget : public Target {
 public:
  Outcome Deliver(const store::Delivery&, const util::CancelToken&) override {
    ++calls_;
    Outcome o;
    o.kind = OutcomeKind::kSuccess;
    return o;
  }
  int calls() const { return calls_; }

 private:
  std::atomic<int> calls_{0};
};

template <typename Fn>
bool WaitFor(Fn done, std::chrono::seconds timeout = std::chrono::seconds(30)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(milliseconds(10));
  }
  return true;
}

store::OutboxItem Item(uint32_t uid) {
  store::OutboxItem item;
  item.event_id = "evt_pg_" + std::to_string(uid);
  item.target = "webhook:count";
  item.account = "support";
  item.folder = "INBOX";
  item.uid = uid;
  item.payload = R"({"id":"evt_pg_)" + std::to_string(uid) + R"("})";
  return item;
}

TEST(DispatcherOnPostgresTest, ASessionTheServerEndedIsReplacedAndDeliveriesGoOn) {
  if (std::string why = PostgresServer::WhyCannotRun(); !why.empty()) GTEST_SKIP() << why;
  PostgresServer pg;
  MH_ASSERT_OK(pg.Start());
  config::StoreLocation location;
  location.kind = config::StoreKind::kPostgres;
  location.url = util::Secret(pg.ConnectionUrl());
  MH_ASSERT_OK_AND_ASSIGN(daemon::ConfiguredStore chosen,
                          daemon::ConfigureStore(location, "/unused", std::chrono::seconds(30)));
  MH_ASSERT_OK_AND_ASSIGN(auto writer, chosen.open());
  MH_ASSERT_OK(writer->CommitMessages("support", "INBOX", store::Watermark{1, 1}, {Item(1)}));

  config::Config cfg;
  util::MetricsCatalog metrics;
  DispatcherOptions options;
  options.open_store = chosen.open;
  options.idle_poll = milliseconds(100);
  Dispatcher dispatcher(cfg, "1", metrics, options);
  auto target = std::make_shared<CountingTarget>();
  dispatcher.RegisterTarget(util::TargetId::Webhook("count"), target, RetryPolicy({milliseconds(10)}));
  MH_ASSERT_OK(dispatcher.Start());
  ASSERT_TRUE(WaitFor([&] { return target->calls() == 1; }));

  // Every session of the database ends, the dispatcher's included.
  MH_ASSERT_OK_AND_ASSIGN(auto admin, pgstore::PgConnection::Connect(pg.ConnectionUrl()));
  MH_ASSERT_OK(
      admin->Run("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                 "WHERE pid <> pg_backend_pid() AND datname = current_database()"));
  MH_ASSERT_OK_AND_ASSIGN(auto writer2, chosen.open());
  MH_ASSERT_OK(writer2->CommitMessages("support", "INBOX", store::Watermark{1, 2}, {Item(2)}));
  dispatcher.Wake();
  ASSERT_TRUE(WaitFor([&] { return target->calls() == 2; })) << "the dispatcher kept its dead connection";
  // Both delivered and recorded as such: nothing pending.
  ASSERT_TRUE(WaitFor([&] {
    auto pending = writer2->outbox().PendingCount();
    return pending.ok() && *pending == 0;
  }));
  dispatcher.Stop();
  EXPECT_EQ(target->calls(), 2);
}

}  // namespace
}  // namespace mailhook::delivery
