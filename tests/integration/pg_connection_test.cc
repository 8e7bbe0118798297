// src/pgstore's connection layer against a real PostgreSQL (PostgresServer):
// a prepared statement with every parameter and reader type; a 20 MB bytea
// round trip, byte-identical; InTransaction rolls back on any failure (fn's,
// a statement's) and nested calls join; a deadlock is a conflict to run again; statement_timeout is set per
// connection; a server killed mid-session makes the next call fail with
// store.pg.connection (kBackoff) and a new Connect after the restart works; a
// wrong password is store.pg.auth (kNeedsOperator) without the password; a
// stopped server fails the connect at once, within the timeout. Skipped with
// the reason when PostgreSQL or libpq is missing.

#include <chrono>
#include <future>
#include <iostream>
#include <random>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "postgres_server.h"
#include "testsupport.h"

#if MAILHOOK_HAVE_PGSTORE
#include "pgstore/pg_connection.h"
#endif

namespace mailhook::testsupport {
namespace {

#if MAILHOOK_HAVE_PGSTORE

using pgstore::PgConnection;
using pgstore::PgConnectOptions;
using pgstore::PgParam;
using pgstore::PgRows;
using util::RetryClass;

int64_t MsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count();
}

class PgConnectionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::string why = PostgresServer::WhyCannotRun(); !why.empty()) GTEST_SKIP() << why;
  }

  // One prepared statement run once, for setup steps.
  static void RunOnce(PgConnection& conn, const std::string& sql) { MH_ASSERT_OK(conn.Run(sql)); }

  static int64_t Count(PgConnection& conn, const std::string& table) {
    if (!conn.Prepare("count." + table, "SELECT count(*) FROM " + table).ok()) return -1;
    auto rows = conn.Exec("count." + table);
    if (!rows.ok()) return -1;
    auto n = rows->Int64(0, 0);
    return n.ok() ? *n : -1;
  }

  PostgresServer pg_;
};

TEST_F(PgConnectionTest, PreparedStatementBindsAndReadsEveryType) {
  MH_ASSERT_OK(pg_.Start());
  MH_ASSERT_OK_AND_ASSIGN(auto conn, PgConnection::Connect(pg_.ConnectionUrl()));
  // The per-connection settings.
  MH_ASSERT_OK(conn->Prepare("settings",
                             "SELECT current_setting('application_name'), current_setting('statement_timeout'), "
                             "current_setting('idle_in_transaction_session_timeout')"));
  MH_ASSERT_OK_AND_ASSIGN(PgRows settings, conn->Exec("settings"));
  EXPECT_EQ(settings.Text(0, 0).value(), "mailhook");
  EXPECT_EQ(settings.Text(0, 1).value(), "30s");
  EXPECT_EQ(settings.Text(0, 2).value(), "10s");
  // The URL's own settings win over mailhook's defaults.
  MH_ASSERT_OK_AND_ASSIGN(auto named, PgConnection::Connect(pg_.ConnectionUrl() + "?application_name=replica-2"));
  MH_ASSERT_OK(named->Prepare("settings", "SELECT current_setting('application_name')"));
  MH_ASSERT_OK_AND_ASSIGN(PgRows named_settings, named->Exec("settings"));
  EXPECT_EQ(named_settings.Text(0, 0).value(), "replica-2");

  RunOnce(*conn, "CREATE TABLE t (id bigint PRIMARY KEY, small smallint, mid integer, name text, body bytea)");
  MH_ASSERT_OK(conn->Prepare("insert", "INSERT INTO t VALUES ($1, $2, $3, $4, $5)"));
  const std::string body("\0\x01\xff binary\n", 12);
  MH_ASSERT_OK_AND_ASSIGN(PgRows inserted, conn->Exec("insert", {int64_t{-9000000000}, -7, 2147483647,
                                                                 std::string_view("grüße"), PgParam::Bytes(body)}));
  EXPECT_EQ(inserted.affected(), 1);
  MH_ASSERT_OK(conn->Exec("insert", {1, 0, 0, static_cast<const char*>(nullptr), PgParam::Bytes("")}));
  // Preparing the same text again is a no-op; another text under the name is a bug.
  MH_EXPECT_OK(conn->Prepare("insert", "INSERT INTO t VALUES ($1, $2, $3, $4, $5)"));
  EXPECT_FALSE(conn->Prepare("insert", "SELECT 1").ok());

  MH_ASSERT_OK(conn->Prepare("select", "SELECT id, small, mid, name, body FROM t WHERE id = $1"));
  MH_ASSERT_OK_AND_ASSIGN(PgRows row, conn->Exec("select", {int64_t{-9000000000}}));
  ASSERT_EQ(row.rows(), 1);
  EXPECT_EQ(row.Int64(0, 0).value(), -9000000000);
  EXPECT_EQ(row.Int64(0, 1).value(), -7);
  EXPECT_EQ(row.Int64(0, 2).value(), 2147483647);
  EXPECT_EQ(row.Text(0, 3).value(), "grüße");
  EXPECT_EQ(row.Bytes(0, 4).value(), body);
  // Readers refuse a type they do not read, and NULL.
  EXPECT_FALSE(row.Text(0, 0).ok());
  EXPECT_FALSE(row.Int64(0, 3).ok());
  MH_ASSERT_OK_AND_ASSIGN(PgRows other, conn->Exec("select", {1}));
  EXPECT_TRUE(other.IsNull(0, 3));
  EXPECT_FALSE(other.Text(0, 3).ok());
  EXPECT_EQ(other.Bytes(0, 4).value(), "");  // empty, not NULL
  EXPECT_FALSE(other.IsNull(0, 4));
  MH_ASSERT_OK_AND_ASSIGN(PgRows none, conn->Exec("select", {42}));
  EXPECT_EQ(none.rows(), 0);
  EXPECT_FALSE(none.Int64(0, 0).ok());  // no such cell: an Error, not a crash

  // An unprepared name and a failed statement are Errors naming the SQLSTATE.
  EXPECT_FALSE(conn->Exec("nope").ok());
  auto dup = conn->Exec("insert", {1, 0, 0, "again", PgParam::Bytes("x")});
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.error().code(), "store.pg.sql");
  EXPECT_EQ(conn->last_sqlstate(), "23505");
  EXPECT_NE(dup.error().message().find("SQLSTATE 23505"), std::string::npos) << dup.error().message();
  EXPECT_FALSE(conn->broken());
}

TEST_F(PgConnectionTest, TwentyMegabyteByteaRoundTripsByteIdentical) {
  MH_ASSERT_OK(pg_.Start());
  MH_ASSERT_OK_AND_ASSIGN(auto conn, PgConnection::Connect(pg_.ConnectionUrl()));
  RunOnce(*conn, "CREATE TABLE bodies (id bigint PRIMARY KEY, body bytea)");
  std::string body(20u << 20, '\0');
  std::mt19937_64 random(11);
  for (char& c : body) c = static_cast<char>(random());  // every byte value, NULs included
  MH_ASSERT_OK(conn->Prepare("put", "INSERT INTO bodies VALUES ($1, $2)"));
  MH_ASSERT_OK(conn->Prepare("get", "SELECT body, length(body) FROM bodies WHERE id = $1"));
  auto start = std::chrono::steady_clock::now();
  MH_ASSERT_OK(conn->Exec("put", {7, PgParam::Bytes(body)}));
  const int64_t put_ms = MsSince(start);
  start = std::chrono::steady_clock::now();
  MH_ASSERT_OK_AND_ASSIGN(PgRows rows, conn->Exec("get", {7}));
  const int64_t get_ms = MsSince(start);
  ASSERT_EQ(rows.rows(), 1);
  EXPECT_EQ(rows.Int64(0, 1).value(), 20 << 20);  // the server stored all of it
  MH_ASSERT_OK_AND_ASSIGN(std::string_view back, rows.Bytes(0, 0));
  ASSERT_EQ(back.size(), body.size());
  EXPECT_TRUE(back == body) << "the bytes differ";
  std::cerr << "20 MiB bytea: insert " << put_ms << " ms, select " << get_ms << " ms\n";
}

TEST_F(PgConnectionTest, FailedTransactionLeavesNothing) {
  MH_ASSERT_OK(pg_.Start());
  MH_ASSERT_OK_AND_ASSIGN(auto conn, PgConnection::Connect(pg_.ConnectionUrl()));
  RunOnce(*conn, "CREATE TABLE events (id bigint PRIMARY KEY)");
  MH_ASSERT_OK(conn->Prepare("add", "INSERT INTO events VALUES ($1)"));

  // fn fails after two writes, inside a nested call that joined: all undone.
  util::Status s = conn->InTransaction([&]() -> util::Status {
    if (auto r = conn->Exec("add", {1}); !r) return r.error();
    return conn->InTransaction([&]() -> util::Status {
      EXPECT_TRUE(conn->in_transaction());
      if (auto r = conn->Exec("add", {2}); !r) return r.error();
      return util::Error("test.fail", RetryClass::kRetryNow, "fn failed after two inserts");
    });
  });
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code(), "test.fail");
  EXPECT_FALSE(conn->in_transaction());
  EXPECT_EQ(Count(*conn, "events"), 0);

  // A statement fails (duplicate key) and fn returns its Error: undone.
  s = conn->InTransaction([&]() -> util::Status {
    if (auto r = conn->Exec("add", {3}); !r) return r.error();
    if (auto r = conn->Exec("add", {3}); !r) return r.error();
    return util::Ok();
  });
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(conn->last_sqlstate(), "23505");
  EXPECT_EQ(Count(*conn, "events"), 0);

  // fn swallows a failed statement and returns ok: COMMIT answers ROLLBACK,
  // which is an Error, and nothing is written.
  s = conn->InTransaction([&]() -> util::Status {
    (void)conn->Exec("add", {4});
    (void)conn->Exec("add", {4});
    return util::Ok();
  });
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message().find("rolled back"), std::string::npos) << s.error().message();
  EXPECT_EQ(Count(*conn, "events"), 0);

  // The connection is fine afterwards and a good transaction commits.
  MH_ASSERT_OK(conn->InTransaction([&]() -> util::Status {
    if (auto r = conn->Exec("add", {5}); !r) return r.error();
    return util::Ok();
  }));
  EXPECT_EQ(Count(*conn, "events"), 1);
}

// Two transactions lock two rows in opposite orders: the server breaks the
// deadlock by failing one with 40P01, which is store.pg.conflict (kRetryNow,
// run it again); the other commits.
TEST_F(PgConnectionTest, DeadlockIsAConflictToRunAgain) {
  MH_ASSERT_OK(pg_.Start());
  MH_ASSERT_OK_AND_ASSIGN(auto a, PgConnection::Connect(pg_.ConnectionUrl()));
  MH_ASSERT_OK_AND_ASSIGN(auto b, PgConnection::Connect(pg_.ConnectionUrl()));
  MH_ASSERT_OK_AND_ASSIGN(auto watcher, PgConnection::Connect(pg_.ConnectionUrl()));
  RunOnce(*a, "CREATE TABLE counters (id bigint PRIMARY KEY, v bigint); INSERT INTO counters VALUES (1, 0), (2, 0)");
  for (PgConnection* c : {a.get(), b.get()}) {
    MH_ASSERT_OK(c->Prepare("bump", "UPDATE counters SET v = v + 1 WHERE id = $1"));
  }
  MH_ASSERT_OK(
      watcher->Prepare("waits", "SELECT count(*) FROM pg_stat_activity WHERE pid = $1 AND wait_event_type = 'Lock'"));
  MH_ASSERT_OK(watcher->Prepare("sum", "SELECT sum(v)::bigint FROM counters"));

  std::promise<void> a_holds_1;
  std::promise<void> b_holds_2;
  std::future<void> b_holds_2_done = b_holds_2.get_future();
  util::Status status_a = util::Ok();
  std::thread thread_a([&] {
    status_a = a->InTransaction([&]() -> util::Status {
      if (auto r = a->Exec("bump", {1}); !r) return r.error();
      a_holds_1.set_value();
      b_holds_2_done.wait();
      if (auto r = a->Exec("bump", {2}); !r) return r.error();  // waits for b
      return util::Ok();
    });
  });
  util::Status status_b = b->InTransaction([&]() -> util::Status {
    a_holds_1.get_future().wait();
    if (auto r = b->Exec("bump", {2}); !r) return r.error();
    b_holds_2.set_value();
    // Until a waits for row 2: then b's wait for row 1 closes the cycle.
    for (auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);;) {
      auto waits = watcher->Exec("waits", {a->backend_pid()});
      if (!waits) return waits.error();
      if (waits->Int64(0, 0).value() == 1) break;
      if (std::chrono::steady_clock::now() > deadline) {
        return util::Error("test.timeout", util::RetryClass::kNeedsOperator, "a never waited for row 2");
      }
      std::this_thread::yield();
    }
    if (auto r = b->Exec("bump", {1}); !r) return r.error();
    return util::Ok();
  });
  thread_a.join();

  ASSERT_NE(status_a.ok(), status_b.ok())
      << "exactly one must fail: a " << (status_a.ok() ? "ok" : status_a.error().ToString()) << ", b "
      << (status_b.ok() ? "ok" : status_b.error().ToString());
  const util::Error& failed = status_a.ok() ? status_b.error() : status_a.error();
  PgConnection& loser = status_a.ok() ? *b : *a;
  EXPECT_EQ(failed.code(), "store.pg.conflict") << failed.ToString();
  EXPECT_EQ(failed.retry(), RetryClass::kRetryNow);
  EXPECT_EQ(loser.last_sqlstate(), "40P01");
  EXPECT_FALSE(loser.broken());
  EXPECT_FALSE(loser.in_transaction());
  MH_ASSERT_OK_AND_ASSIGN(PgRows sum, watcher->Exec("sum"));
  EXPECT_EQ(sum.Int64(0, 0).value(), 2);  // the winner's two updates, none of the loser's
}

TEST_F(PgConnectionTest, StatementTimeoutIsBackoffAndKeepsTheConnection) {
  MH_ASSERT_OK(pg_.Start());
  PgConnectOptions options;
  options.statement_timeout = std::chrono::milliseconds(200);
  MH_ASSERT_OK_AND_ASSIGN(auto conn, PgConnection::Connect(pg_.ConnectionUrl(), options));
  MH_ASSERT_OK(conn->Prepare("sleep", "SELECT pg_sleep(5)"));
  const auto start = std::chrono::steady_clock::now();
  auto r = conn->Exec("sleep");
  ASSERT_FALSE(r.ok());
  EXPECT_LT(MsSince(start), 4000);
  EXPECT_EQ(r.error().code(), "store.pg.timeout");
  EXPECT_EQ(r.error().retry(), RetryClass::kBackoff);
  EXPECT_FALSE(conn->broken());
  MH_ASSERT_OK(conn->Prepare("one", "SELECT 1"));
  MH_EXPECT_OK(conn->Exec("one"));
}

TEST_F(PgConnectionTest, KilledServerIsBackoffAndANewConnectWorksAfterRestart) {
  MH_ASSERT_OK(pg_.Start());
  MH_ASSERT_OK_AND_ASSIGN(auto conn, PgConnection::Connect(pg_.ConnectionUrl()));
  RunOnce(*conn, "CREATE TABLE kept (v bigint)");
  MH_ASSERT_OK(conn->Prepare("add", "INSERT INTO kept VALUES ($1)"));
  MH_ASSERT_OK(conn->Exec("add", {1}));
  const int old_backend = conn->backend_pid();

  MH_ASSERT_OK(pg_.Kill());
  auto after = conn->Exec("add", {2});
  ASSERT_FALSE(after.ok());
  EXPECT_EQ(after.error().code(), "store.pg.connection") << after.error().ToString();
  EXPECT_EQ(after.error().retry(), RetryClass::kBackoff);
  EXPECT_TRUE(conn->broken());
  std::cerr << "after the kill: " << after.error().ToString() << "\n";
  // Broken stays broken: no patching, the owner reconnects.
  auto again = conn->InTransaction([] { return util::Ok(); });
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().retry(), RetryClass::kBackoff);
  // While the server is down a connect fails the same way.
  auto down = PgConnection::Connect(pg_.ConnectionUrl());
  ASSERT_FALSE(down.ok());
  EXPECT_EQ(down.error().code(), "store.pg.connection");

  MH_ASSERT_OK(pg_.Restart());
  MH_ASSERT_OK_AND_ASSIGN(auto fresh, PgConnection::Connect(pg_.ConnectionUrl()));
  EXPECT_NE(fresh->backend_pid(), old_backend);
  EXPECT_FALSE(fresh->IsPrepared("add"));  // statements die with their connection
  EXPECT_EQ(Count(*fresh, "kept"), 1);     // the committed row survived the crash
}

TEST_F(PgConnectionTest, WrongPasswordNeedsOperatorAndIsNotShown) {
  MH_ASSERT_OK(pg_.Start(PostgresOptions{"fixture-pw.1"}));
  MH_EXPECT_OK(PgConnection::Connect(pg_.ConnectionUrl()));
  const std::string url =
      "postgresql://mailhook:Wrong-pw-7f3@127.0.0.1:" + std::to_string(pg_.port()) + "/" + pg_.database();
  auto conn = PgConnection::Connect(url);
  ASSERT_FALSE(conn.ok());
  std::cerr << conn.error().ToString() << "\n";
  EXPECT_EQ(conn.error().code(), "store.pg.auth");
  EXPECT_EQ(conn.error().retry(), RetryClass::kNeedsOperator);
  EXPECT_NE(conn.error().message().find("authentication"), std::string::npos) << conn.error().message();
  EXPECT_NE(conn.error().message().find("SQLSTATE 28P01"), std::string::npos) << conn.error().message();
  EXPECT_NE(conn.error().message().find("mailhook:<redacted>@127.0.0.1"), std::string::npos) << conn.error().message();
  EXPECT_EQ(conn.error().message().find("Wrong-pw-7f3"), std::string::npos) << conn.error().message();

  // A database that does not exist: the operator's too, naming the fix.
  auto no_db = PgConnection::Connect("postgresql://mailhook:fixture-pw.1@127.0.0.1:" + std::to_string(pg_.port()) +
                                     "/no_such_db");
  ASSERT_FALSE(no_db.ok());
  EXPECT_EQ(no_db.error().code(), "store.pg.database") << no_db.error().ToString();
  EXPECT_TRUE(no_db.error().NeedsOperator());
  EXPECT_NE(no_db.error().message().find("createdb"), std::string::npos) << no_db.error().message();
  EXPECT_EQ(no_db.error().message().find("fixture-pw.1"), std::string::npos) << no_db.error().message();
}

TEST_F(PgConnectionTest, StoppedServerFailsTheConnectWithinTheTimeout) {
  MH_ASSERT_OK(pg_.Start());
  MH_ASSERT_OK(pg_.Stop());  // the port is closed now
  PgConnectOptions options;
  options.connect_timeout = std::chrono::milliseconds(2000);
  const auto start = std::chrono::steady_clock::now();
  auto conn = PgConnection::Connect(pg_.ConnectionUrl(), options);
  const int64_t took = MsSince(start);
  ASSERT_FALSE(conn.ok());
  EXPECT_LT(took, 2000);
  EXPECT_EQ(conn.error().code(), "store.pg.connection");
  EXPECT_EQ(conn.error().retry(), RetryClass::kBackoff);
  std::cerr << "closed port refused in " << took << " ms: " << conn.error().ToString() << "\n";
}

#else  // !MAILHOOK_HAVE_PGSTORE

TEST(PgConnectionTest, NeedsLibpq) {
  GTEST_SKIP() << "built without libpq (pkg-config libpq not found at configure time): run scripts/deps "
                  "(Debian package libpq-dev) and configure again to build src/pgstore and its tests.";
}

#endif

}  // namespace
}  // namespace mailhook::testsupport
