// daemon::ConfigureStore: the one place the daemon chooses its backend.
// SQLite in state_dir without a url; PostgreSQL (a private cluster started
// here, PostgresServer) for a postgresql:// url, whose description never
// carries the password. The PostgreSQL cases skip with the reason when
// PostgreSQL is missing (scripts/deps).

#include "daemon/configured_store.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <optional>
#include <string>

#include "daemon/store_pool.h"
#include "pgstore/pg_connection.h"
#include "postgres_server.h"
#include "status_assert.h"
#include "temp_dir.h"

namespace mailhook::daemon {
namespace {

using testsupport::PostgresServer;

config::StoreLocation PostgresAt(const std::string& url) {
  config::StoreLocation location;
  location.kind = config::StoreKind::kPostgres;
  location.url = util::Secret(url);
  return location;
}

TEST(ConfiguredStoreTest, WithoutAUrlTheStoreIsSqliteInStateDir) {
  testsupport::TempDir dir("mh-configured-");
  config::Config config;
  config.state_dir = dir.path();
  MH_ASSERT_OK_AND_ASSIGN(ConfiguredStore chosen, ConfigureStore(config));
  EXPECT_EQ(chosen.kind, config::StoreKind::kSqlite);
  EXPECT_EQ(chosen.where, dir.path() + "/mailhook.db");
  MH_ASSERT_OK_AND_ASSIGN(auto first, chosen.open());
  MH_ASSERT_OK(first->watermarks().Set("a", "INBOX", {7, 42}));
  // Each call opens its own connection to the same file.
  MH_ASSERT_OK_AND_ASSIGN(auto second, chosen.open());
  EXPECT_NE(first.get(), second.get());
  MH_ASSERT_OK_AND_ASSIGN(auto mark, second->watermarks().Get("a", "INBOX"));
  EXPECT_EQ(mark, (store::Watermark{7, 42}));
  EXPECT_TRUE(std::filesystem::exists(dir.path() + "/mailhook.db"));
}

TEST(ConfiguredStoreTest, ASqliteFileOutsideStateDirIsRefused) {
  config::StoreLocation location;
  location.sqlite_file = "/tmp/elsewhere.db";
  auto chosen = ConfigureStore(location, "/var/lib/mailhook", std::chrono::seconds(30));
  ASSERT_FALSE(chosen.ok());
  EXPECT_EQ(chosen.error().code(), "store.sqlite_path");
}

class ConfiguredPostgresTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::string why = PostgresServer::WhyCannotRun(); !why.empty()) GTEST_SKIP() << why;
    MH_ASSERT_OK(pg_.Start({.password = "pw-configured-7"}));
  }

  PostgresServer pg_;
};

TEST_F(ConfiguredPostgresTest, APostgresUrlOpensTheSharedStoreAndItsDescriptionHidesThePassword) {
  MH_ASSERT_OK_AND_ASSIGN(ConfiguredStore chosen,
                          ConfigureStore(PostgresAt(pg_.ConnectionUrl()), "/unused", std::chrono::seconds(30)));
  EXPECT_EQ(chosen.kind, config::StoreKind::kPostgres);
  EXPECT_EQ(chosen.where.find("pw-configured-7"), std::string::npos) << chosen.where;
  EXPECT_NE(chosen.where.find("<redacted>"), std::string::npos) << chosen.where;
  MH_ASSERT_OK_AND_ASSIGN(auto first, chosen.open());
  MH_ASSERT_OK(first->watermarks().Set("a", "INBOX", {7, 42}));
  MH_ASSERT_OK_AND_ASSIGN(auto second, chosen.open());
  MH_ASSERT_OK_AND_ASSIGN(auto mark, second->watermarks().Get("a", "INBOX"));
  EXPECT_EQ(mark, (store::Watermark{7, 42}));
  EXPECT_EQ(second->path().find("pw-configured-7"), std::string::npos) << second->path();
}

TEST_F(ConfiguredPostgresTest, AWrongPasswordIsAConnectionErrorWithoutThePassword) {
  std::string url = pg_.ConnectionUrl();
  const size_t at = url.find("pw-configured-7");
  ASSERT_NE(at, std::string::npos) << url;
  url.replace(at, 15, "wrong-secret-99");
  MH_ASSERT_OK_AND_ASSIGN(ConfiguredStore chosen, ConfigureStore(PostgresAt(url), "/unused", std::chrono::seconds(30)));
  auto opened = chosen.open();
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.error().message().find("wrong-secret-99"), std::string::npos) << opened.error().ToString();
  EXPECT_EQ(chosen.where.find("wrong-secret-99"), std::string::npos) << chosen.where;
}

// The server ends every session (a restart, a failover, an operator):
// the connection a watcher gave back broken is closed, and the next borrower
// gets a new one that works, instead of an error forever.
TEST_F(ConfiguredPostgresTest, ThePoolReplacesAConnectionTheServerEnded) {
  MH_ASSERT_OK_AND_ASSIGN(ConfiguredStore chosen,
                          ConfigureStore(PostgresAt(pg_.ConnectionUrl()), "/unused", std::chrono::seconds(30)));
  StorePool pool(chosen.open, 1);
  {
    MH_ASSERT_OK_AND_ASSIGN(StorePool::Lease lease, pool.Acquire());
    MH_ASSERT_OK(lease->watermarks().Set("a", "INBOX", {7, 42}));
    MH_ASSERT_OK_AND_ASSIGN(auto admin, pgstore::PgConnection::Connect(pg_.ConnectionUrl()));
    MH_ASSERT_OK(
        admin->Run("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                   "WHERE pid <> pg_backend_pid() AND datname = current_database()"));
    auto after = lease->watermarks().Get("a", "INBOX");
    ASSERT_FALSE(after.ok());
    EXPECT_EQ(after.error().code(), "store.pg.connection") << after.error().ToString();
    EXPECT_TRUE(lease->broken());
  }
  MH_ASSERT_OK_AND_ASSIGN(StorePool::Lease lease, pool.Acquire());
  EXPECT_FALSE(lease->broken());
  MH_ASSERT_OK_AND_ASSIGN(auto mark, lease->watermarks().Get("a", "INBOX"));
  EXPECT_EQ(mark, (store::Watermark{7, 42}));
}

// After a server restart every idle connection in the pool is dead too: the
// first borrower to find its connection broken must be the last. Three
// watchers' connections sit idle when the server ends every session; one
// failure later, the next borrower gets a working one (before, it got one of
// the other two dead ones).
TEST_F(ConfiguredPostgresTest, OneBrokenConnectionTakesTheIdleOnesOfThePoolWithIt) {
  MH_ASSERT_OK_AND_ASSIGN(ConfiguredStore chosen,
                          ConfigureStore(PostgresAt(pg_.ConnectionUrl()), "/unused", std::chrono::seconds(30)));
  StorePool pool(chosen.open, 3);
  {
    std::vector<StorePool::Lease> leases;
    for (int i = 0; i < 3; ++i) {
      MH_ASSERT_OK_AND_ASSIGN(StorePool::Lease lease, pool.Acquire());
      MH_ASSERT_OK(lease->watermarks().Set("a" + std::to_string(i), "INBOX", {7, 42}));
      leases.push_back(std::move(lease));
    }
  }
  MH_ASSERT_OK_AND_ASSIGN(auto admin, pgstore::PgConnection::Connect(pg_.ConnectionUrl()));
  MH_ASSERT_OK(
      admin->Run("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                 "WHERE pid <> pg_backend_pid() AND datname = current_database()"));
  {
    MH_ASSERT_OK_AND_ASSIGN(StorePool::Lease lease, pool.Acquire());
    ASSERT_FALSE(lease->watermarks().Get("a0", "INBOX").ok());
    ASSERT_TRUE(lease->broken());
  }
  for (int i = 0; i < 3; ++i) {
    MH_ASSERT_OK_AND_ASSIGN(StorePool::Lease lease, pool.Acquire());
    MH_ASSERT_OK_AND_ASSIGN(auto mark, lease->watermarks().Get("a" + std::to_string(i), "INBOX"));
    EXPECT_EQ(mark, (store::Watermark{7, 42}));
  }
}

// A connection lent when the server ended every session, given back unused
// (so not known broken), is closed too: it is older than the failure (before,
// it went back to the idle ones and failed its next borrower).
TEST_F(ConfiguredPostgresTest, AConnectionLentAcrossTheFailureIsClosedWhenItComesBack) {
  MH_ASSERT_OK_AND_ASSIGN(ConfiguredStore chosen,
                          ConfigureStore(PostgresAt(pg_.ConnectionUrl()), "/unused", std::chrono::seconds(30)));
  StorePool pool(chosen.open, 3);
  std::optional<StorePool::Lease> lent[3];
  for (int i = 0; i < 3; ++i) {
    MH_ASSERT_OK_AND_ASSIGN(StorePool::Lease lease, pool.Acquire());
    MH_ASSERT_OK(lease->watermarks().Set("a" + std::to_string(i), "INBOX", {7, 42}));
    lent[i].emplace(std::move(lease));
  }
  MH_ASSERT_OK_AND_ASSIGN(auto admin, pgstore::PgConnection::Connect(pg_.ConnectionUrl()));
  MH_ASSERT_OK(
      admin->Run("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                 "WHERE pid <> pg_backend_pid() AND datname = current_database()"));
  ASSERT_FALSE((*lent[0])->watermarks().Get("a0", "INBOX").ok());
  ASSERT_TRUE((*lent[0])->broken());
  ASSERT_FALSE((*lent[1])->broken());  // dead, but nobody asked it yet
  lent[0].reset();                     // broken: the pool's generation moves on
  lent[1].reset();                     // unused, but older than the failure
  {
    MH_ASSERT_OK_AND_ASSIGN(StorePool::Lease fresh, pool.Acquire());
    MH_ASSERT_OK_AND_ASSIGN(auto mark, fresh->watermarks().Get("a1", "INBOX"));
    EXPECT_EQ(mark, (store::Watermark{7, 42}));
    ASSERT_FALSE((*lent[2])->watermarks().Get("a2", "INBOX").ok());  // the last old one breaks
    lent[2].reset();
  }
  // After the second old one broke, borrowers are still served.
  MH_ASSERT_OK_AND_ASSIGN(StorePool::Lease one, pool.Acquire());
  MH_ASSERT_OK_AND_ASSIGN(StorePool::Lease two, pool.Acquire());
  MH_ASSERT_OK(one->watermarks().Get("a0", "INBOX"));
  MH_ASSERT_OK(two->watermarks().Get("a0", "INBOX"));
}

}  // namespace
}  // namespace mailhook::daemon
