// The test PostgreSQL (support/postgres_server.h, scripts/postgres) proved
// with libpq before the PostgreSQL store (issue #11) relies on it: it starts,
// answers as the non-superuser role `mailhook` in database `mailhook` on
// 127.0.0.1 only with fsync off; a restart keeps the data, port and password
// and brings a new postmaster; after Stop() nothing answers and Start()
// resumes; an immediate Kill() recovers committed rows; the destructor ends
// the postmaster and removes the directory; two instances run side by side on
// different ports with separate data; with a password, TCP without it is
// refused; the cluster of a test process that died is removed by the next
// start. Skipped with the reason when PostgreSQL or libpq is missing.

#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "postgres_server.h"
#include "testsupport.h"

#if MAILHOOK_HAVE_LIBPQ
#include <libpq-fe.h>
#endif

namespace mailhook::testsupport {
namespace {

#if MAILHOOK_HAVE_LIBPQ

struct PgConnDeleter {
  void operator()(PGconn* c) const { PQfinish(c); }
};
struct PgResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using PgConn = std::unique_ptr<PGconn, PgConnDeleter>;
using PgResult = std::unique_ptr<PGresult, PgResultDeleter>;

// Connects with a 10 s connect timeout; check PQstatus (CONNECTION_OK).
PgConn Connect(const std::string& url) {
  const std::string sep = url.find('?') == std::string::npos ? "?" : "&";
  return PgConn(PQconnectdb((url + sep + "connect_timeout=10").c_str()));
}

// Runs `sql` and returns the first column of the first row, or "ERROR: ..."
// so a failed statement shows up in the assertion that compares it.
std::string Query(PGconn* conn, const std::string& sql) {
  PgResult r(PQexec(conn, sql.c_str()));
  const ExecStatusType status = PQresultStatus(r.get());
  if (status == PGRES_COMMAND_OK) return "";
  if (status != PGRES_TUPLES_OK) return std::string("ERROR: ") + PQresultErrorMessage(r.get());
  if (PQntuples(r.get()) == 0) return "<no rows>";
  return PQgetvalue(r.get(), 0, 0);
}

// Live and not a zombie: the exited postmaster (adopted by pid 1, or a
// subreaper) may not be reaped yet.
bool Alive(pid_t pid) {
  std::string stat = ReadFile("/proc/" + std::to_string(pid) + "/stat");
  auto close = stat.rfind(')');
  return close != std::string::npos && close + 2 < stat.size() && stat[close + 2] != 'Z';
}

class PostgresServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::string why = PostgresServer::WhyCannotRun(); !why.empty()) GTEST_SKIP() << why;
  }

  // Starts `server` and prints how long that took (initdb dominates).
  static void StartTimed(PostgresServer& server, const PostgresOptions& options = {}) {
    auto started = std::chrono::steady_clock::now();
    MH_ASSERT_OK(server.Start(options));
    std::cerr
        << "postgres started in "
        << std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count()
        << " ms on port " << server.port() << "\n";
  }
};

TEST_F(PostgresServerTest, AnswersAsTheTestRoleOnLoopbackOnly) {
  PostgresServer pg;
  StartTimed(pg);
  ASSERT_TRUE(pg.running());
  EXPECT_EQ(pg.ConnectionUrl(), "postgresql://mailhook@127.0.0.1:" + std::to_string(pg.port()) + "/mailhook");

  PgConn conn = Connect(pg.ConnectionUrl());
  ASSERT_EQ(PQstatus(conn.get()), CONNECTION_OK) << PQerrorMessage(conn.get());
  EXPECT_EQ(Query(conn.get(), "SELECT current_user"), "mailhook");
  EXPECT_EQ(Query(conn.get(), "SELECT current_database()"), "mailhook");
  EXPECT_EQ(Query(conn.get(), "SELECT host(inet_server_addr())"), "127.0.0.1");
  EXPECT_EQ(Query(conn.get(), "SELECT inet_server_port()"), std::to_string(pg.port()));
  EXPECT_EQ(Query(conn.get(), "SHOW listen_addresses"), "127.0.0.1");
  EXPECT_EQ(Query(conn.get(), "SHOW fsync"), "off");
  EXPECT_EQ(Query(conn.get(), "SHOW server_version_num").substr(0, 2), "15");
  // Not a superuser: the store's migrations must work with an ordinary owner.
  EXPECT_EQ(Query(conn.get(), "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"), "f");
  // The role owns its database: it can create tables (the store's schema).
  EXPECT_EQ(Query(conn.get(), "CREATE TABLE t (id bigint PRIMARY KEY)"), "");

  // The unix socket in the temp dir answers too.
  PgConn via_socket =
      Connect("postgresql://mailhook@/mailhook?host=" + pg.socket_dir() + "&port=" + std::to_string(pg.port()));
  ASSERT_EQ(PQstatus(via_socket.get()), CONNECTION_OK) << PQerrorMessage(via_socket.get());
  EXPECT_EQ(Query(via_socket.get(), "SELECT inet_server_addr() IS NULL"), "t");  // NULL: a unix socket
}

TEST_F(PostgresServerTest, RestartKeepsDataPortAndPassword) {
  PostgresServer pg;
  StartTimed(pg, PostgresOptions{"fixture-pw.1"});
  const int port = pg.port();
  const pid_t first_pid = pg.pid();
  {
    PgConn conn = Connect(pg.ConnectionUrl());
    ASSERT_EQ(PQstatus(conn.get()), CONNECTION_OK) << PQerrorMessage(conn.get());
    ASSERT_EQ(Query(conn.get(), "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('before restart')"), "");
  }
  auto started = std::chrono::steady_clock::now();
  MH_ASSERT_OK(pg.Restart());
  std::cerr << "postgres restarted in "
            << std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count()
            << " ms\n";
  EXPECT_EQ(pg.port(), port);
  EXPECT_NE(pg.pid(), first_pid);
  EXPECT_FALSE(Alive(first_pid));
  EXPECT_EQ(pg.password(), "fixture-pw.1");

  PgConn conn = Connect(pg.ConnectionUrl());
  ASSERT_EQ(PQstatus(conn.get()), CONNECTION_OK) << PQerrorMessage(conn.get());
  EXPECT_EQ(Query(conn.get(), "SELECT v FROM kept"), "before restart");

  // scram on TCP: the same URL without the password is refused.
  PgConn no_password =
      Connect("postgresql://mailhook@127.0.0.1:" + std::to_string(pg.port()) + "/mailhook?password=wrong");
  EXPECT_EQ(PQstatus(no_password.get()), CONNECTION_BAD);
  EXPECT_NE(std::string(PQerrorMessage(no_password.get())).find("password authentication failed"), std::string::npos)
      << PQerrorMessage(no_password.get());
}

TEST_F(PostgresServerTest, StopRefusesConnectionsAndStartResumes) {
  PostgresServer pg;
  StartTimed(pg);
  {
    PgConn conn = Connect(pg.ConnectionUrl());
    ASSERT_EQ(PQstatus(conn.get()), CONNECTION_OK) << PQerrorMessage(conn.get());
    ASSERT_EQ(Query(conn.get(), "CREATE TABLE kept (v int); INSERT INTO kept VALUES (7)"), "");
  }
  const pid_t pid = pg.pid();
  MH_ASSERT_OK(pg.Stop());
  EXPECT_FALSE(pg.running());
  EXPECT_FALSE(Alive(pid));
  EXPECT_TRUE(std::filesystem::exists(pg.data_dir() + "/PG_VERSION"));  // the data stays
  PgConn refused = Connect(pg.ConnectionUrl());
  EXPECT_EQ(PQstatus(refused.get()), CONNECTION_BAD);

  MH_ASSERT_OK(pg.Start());
  PgConn conn = Connect(pg.ConnectionUrl());
  ASSERT_EQ(PQstatus(conn.get()), CONNECTION_OK) << PQerrorMessage(conn.get());
  EXPECT_EQ(Query(conn.get(), "SELECT v FROM kept"), "7");
}

TEST_F(PostgresServerTest, KillDropsClientsAndRecoversCommittedRows) {
  PostgresServer pg;
  StartTimed(pg);
  PgConn conn = Connect(pg.ConnectionUrl());
  ASSERT_EQ(PQstatus(conn.get()), CONNECTION_OK) << PQerrorMessage(conn.get());
  ASSERT_EQ(Query(conn.get(), "CREATE TABLE kept (v int); INSERT INTO kept VALUES (1)"), "");
  // An open transaction at the crash: its row must not survive.
  ASSERT_EQ(Query(conn.get(), "BEGIN; INSERT INTO kept VALUES (2)"), "");

  MH_ASSERT_OK(pg.Kill());
  EXPECT_NE(Query(conn.get(), "COMMIT").rfind("ERROR: ", 0), std::string::npos);  // the connection is gone

  MH_ASSERT_OK(pg.Start());
  PgConn again = Connect(pg.ConnectionUrl());
  ASSERT_EQ(PQstatus(again.get()), CONNECTION_OK) << PQerrorMessage(again.get());
  EXPECT_EQ(Query(again.get(), "SELECT string_agg(v::text, ',') FROM kept"), "1");
}

TEST_F(PostgresServerTest, DestructorStopsTheServerAndRemovesItsDirectory) {
  std::string dir;
  pid_t pid = -1;
  int port = 0;
  {
    PostgresServer pg;
    StartTimed(pg);
    dir = pg.dir();
    pid = pg.pid();
    port = pg.port();
    ASSERT_TRUE(Alive(pid));
    ASSERT_TRUE(std::filesystem::exists(dir + "/data/PG_VERSION"));
  }
  EXPECT_FALSE(Alive(pid));
  EXPECT_FALSE(std::filesystem::exists(dir));
  PgConn refused = Connect("postgresql://mailhook@127.0.0.1:" + std::to_string(port) + "/mailhook");
  EXPECT_EQ(PQstatus(refused.get()), CONNECTION_BAD);
}

// A test process that died (SIGKILL, a crash) never ran the destructor: the
// next cluster started beside its cluster stops and removes it.
TEST_F(PostgresServerTest, ClusterOfADeadTestIsRemovedByTheNextStart) {
  if (std::getenv("MAILHOOK_KEEP_TEST_DIRS") != nullptr) GTEST_SKIP() << "MAILHOOK_KEEP_TEST_DIRS keeps clusters";
  // A pid that certainly belonged to a process that is gone: a reaped child.
  pid_t dead = fork();
  ASSERT_GE(dead, 0);
  if (dead == 0) _exit(0);
  ASSERT_EQ(waitpid(dead, nullptr, 0), dead);

  PostgresServer orphan;
  StartTimed(orphan);
  const pid_t orphan_pid = orphan.pid();
  ASSERT_TRUE(WriteFile(orphan.dir() + "/owner.pid", std::to_string(dead) + "\n"));

  PostgresServer next;
  StartTimed(next);
  EXPECT_FALSE(Alive(orphan_pid));
  EXPECT_FALSE(std::filesystem::exists(orphan.dir()));
  EXPECT_TRUE(next.running());
}

TEST_F(PostgresServerTest, TwoInstancesSideBySideAreSeparate) {
  PostgresServer a;
  PostgresServer b;
  StartTimed(a);
  StartTimed(b);
  EXPECT_NE(a.port(), b.port());
  EXPECT_NE(a.dir(), b.dir());
  PgConn ca = Connect(a.ConnectionUrl());
  PgConn cb = Connect(b.ConnectionUrl());
  ASSERT_EQ(PQstatus(ca.get()), CONNECTION_OK) << PQerrorMessage(ca.get());
  ASSERT_EQ(PQstatus(cb.get()), CONNECTION_OK) << PQerrorMessage(cb.get());
  ASSERT_EQ(Query(ca.get(), "CREATE TABLE only_in_a (v int)"), "");
  EXPECT_EQ(Query(ca.get(), "SELECT to_regclass('only_in_a') IS NOT NULL"), "t");
  EXPECT_EQ(Query(cb.get(), "SELECT to_regclass('only_in_a') IS NULL"), "t");
}

#else  // !MAILHOOK_HAVE_LIBPQ

TEST(PostgresServerTest, NeedsLibpq) {
  GTEST_SKIP() << "built without libpq (pkg-config libpq not found at configure time): run scripts/deps "
                  "(Debian package libpq-dev) and configure again to cover the PostgreSQL harness.";
}

#endif

}  // namespace
}  // namespace mailhook::testsupport
