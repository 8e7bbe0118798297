// `mailhook cluster status` (daemon::RunClusterStatus) against a private
// PostgreSQL (PostgresServer): replicas registered and leases claimed with
// PgLeases, as running replicas would; the output names each replica with
// its accounts, each lease with its age, and the accounts no live replica
// holds; never the URL's password.

#include "daemon/cluster_command.h"

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "pgstore/pg_connection.h"
#include "pgstore/pg_leases.h"
#include "pgstore/pg_schema.h"
#include "postgres_server.h"
#include "status_assert.h"

namespace mailhook::daemon {
namespace {

using testsupport::PostgresServer;

config::Config ClusterConfig(const std::string& url, const std::vector<std::string>& accounts) {
  config::Config config;
  config.store.url = config::SecretRef(util::Secret(url));
  config.store.lease_ttl = std::chrono::seconds(30);
  for (const auto& name : accounts) {
    config::Account account;
    account.name = name;
    config.accounts.push_back(account);
  }
  return config;
}

class ClusterStatusTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::string why = PostgresServer::WhyCannotRun(); !why.empty()) GTEST_SKIP() << why;
    MH_ASSERT_OK(pg_.Start({.password = "pw-cluster-status-3"}));
    auto conn = pgstore::PgConnection::Connect(pg_.ConnectionUrl());
    MH_ASSERT_OK(conn);
    admin_ = std::move(*conn);
    MH_ASSERT_OK(pgstore::MigratePg(*admin_));
  }

  std::string Status(const config::Config& config, int& code) {
    std::ostringstream out;
    code = RunClusterStatus(config, out);
    return out.str();
  }

  PostgresServer pg_;
  std::unique_ptr<pgstore::PgConnection> admin_;
};

TEST_F(ClusterStatusTest, ShowsEachReplicaWithItsAccountsAndWhatNoLiveReplicaHolds) {
  auto conn = pgstore::PgConnection::Connect(pg_.ConnectionUrl());
  MH_ASSERT_OK(conn);
  pgstore::PgLeases leases(**conn, std::chrono::seconds(30));
  MH_ASSERT_OK_AND_ASSIGN(std::string id, leases.Register("web-1"));
  const std::vector<std::string> two = {"alpha", "beta"};
  MH_ASSERT_OK_AND_ASSIGN(auto fences, leases.Claim(two));
  ASSERT_EQ(fences.size(), 2u);
  // A replica that stopped heartbeating a minute ago (killed, cut off).
  MH_ASSERT_OK(
      admin_->Run("INSERT INTO replicas VALUES (gen_random_uuid(), 'web-2', clock_timestamp() - interval '2 hours', "
                  "clock_timestamp() - interval '1 minute')"));

  int code = -1;
  const std::string out = Status(ClusterConfig(pg_.ConnectionUrl(), {"alpha", "beta", "gamma"}), code);
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("replicas: 1 live of 2 (lease_ttl 30.0s)"), std::string::npos) << out;
  EXPECT_NE(out.find(id + "  host=web-1  live  heartbeat "), std::string::npos) << out;
  EXPECT_NE(out.find("accounts 2\n"), std::string::npos) << out;
  EXPECT_NE(out.find("host=web-2  silent  heartbeat 60."), std::string::npos) << out;
  EXPECT_NE(out.find("  alpha  replica " + id + "  generation 1  age "), std::string::npos) << out;
  EXPECT_NE(out.find("  gamma  no lease yet"), std::string::npos) << out;
  EXPECT_NE(out.find("held by no live replica (1): gamma\n"), std::string::npos) << out;
  EXPECT_EQ(out.find("pw-cluster-status-3"), std::string::npos) << out;
  EXPECT_NE(out.find("<redacted>"), std::string::npos) << out;

  // Given back: the lease ended, the account is listed as held by nobody.
  MH_ASSERT_OK(leases.GiveBack(std::vector<std::string>{"beta"}));
  const std::string after = Status(ClusterConfig(pg_.ConnectionUrl(), {"alpha", "beta"}), code);
  EXPECT_NE(after.find("  beta  replica " + id + "  generation 1  given back\n"), std::string::npos) << after;
  EXPECT_NE(after.find("held by no live replica (1): beta\n"), std::string::npos) << after;
}

TEST_F(ClusterStatusTest, EveryAccountHeldIsSaidAndAnUnreachableStoreIsAnError) {
  auto conn = pgstore::PgConnection::Connect(pg_.ConnectionUrl());
  MH_ASSERT_OK(conn);
  pgstore::PgLeases leases(**conn, std::chrono::seconds(30));
  MH_ASSERT_OK(leases.Register("web-1"));
  const std::vector<std::string> one = {"alpha"};
  MH_ASSERT_OK(leases.Claim(one));
  int code = -1;
  std::string out = Status(ClusterConfig(pg_.ConnectionUrl(), one), code);
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("every account is held by a live replica"), std::string::npos) << out;

  MH_ASSERT_OK(pg_.Stop());
  out = Status(ClusterConfig(pg_.ConnectionUrl(), one), code);
  EXPECT_EQ(code, 1) << out;
  EXPECT_NE(out.find("cannot reach "), std::string::npos) << out;
  EXPECT_EQ(out.find("pw-cluster-status-3"), std::string::npos) << out;
}

// `check --connect`'s store line: the version it finds, a schema from a
// newer mailhook, a server that is gone; never the password; nothing written.
TEST_F(ClusterStatusTest, CheckConnectReachesTheStoreAndReadsItsSchemaVersion) {
  const config::Config config = ClusterConfig(pg_.ConnectionUrl(), {"alpha"});
  std::ostringstream ok;
  EXPECT_EQ(CheckStoreConnects(config, ok), 0) << ok.str();
  EXPECT_EQ(ok.str().rfind("ok   store postgresql://", 0), 0u) << ok.str();
  EXPECT_NE(ok.str().find("connected, schema version " + std::to_string(pgstore::kPgSchemaVersion) + "\n"),
            std::string::npos)
      << ok.str();
  EXPECT_EQ(ok.str().find("pw-cluster-status-3"), std::string::npos) << ok.str();

  MH_ASSERT_OK(admin_->Run("UPDATE schema_version SET version = version + 1"));
  std::ostringstream newer;
  EXPECT_EQ(CheckStoreConnects(config, newer), 1) << newer.str();
  EXPECT_NE(newer.str().find("is newer than this mailhook's"), std::string::npos) << newer.str();
  MH_ASSERT_OK(admin_->Run("UPDATE schema_version SET version = 0"));  // as before any migration
  std::ostringstream none;
  EXPECT_EQ(CheckStoreConnects(config, none), 0) << none.str();
  EXPECT_NE(none.str().find("connected, no mailhook tables yet (the first `mailhook run` creates them)\n"),
            std::string::npos)
      << none.str();

  MH_ASSERT_OK(pg_.Stop());
  std::ostringstream gone;
  EXPECT_EQ(CheckStoreConnects(config, gone), 1) << gone.str();
  EXPECT_EQ(gone.str().rfind("FAIL store: connecting to postgresql://", 0), 0u) << gone.str();
  EXPECT_EQ(gone.str().find("pw-cluster-status-3"), std::string::npos) << gone.str();
}

TEST(ClusterStatusSqliteTest, ASqliteStoreHasNoClusterToShowAndNothingToReach) {
  config::Config config;
  std::ostringstream out;
  EXPECT_EQ(RunClusterStatus(config, out), 1);
  EXPECT_NE(out.str().find("one node, no cluster"), std::string::npos) << out.str();
  std::ostringstream check;
  EXPECT_EQ(CheckStoreConnects(config, check), 0);
  EXPECT_EQ(check.str(), "");
}

}  // namespace
}  // namespace mailhook::daemon
