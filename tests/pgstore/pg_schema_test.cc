// src/pgstore/pg_schema against a real PostgreSQL (PostgresServer): a fresh
// database migrates to every table of the SQLite schema's latest version
// (each SQLite column has its PostgreSQL twin) plus the cluster tables; two
// connections migrating at once (both lined up behind the advisory lock)
// end with one set of tables and the right version; a rerun changes nothing;
// a database of a newer version is refused (store.schema); a step that fails
// leaves nothing behind. Skipped with the reason when PostgreSQL is missing.

#include "pgstore/pg_schema.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <chrono>
#include <iostream>
#include <map>
#include <set>
#include <string>
#include <thread>

#include "pgstore/pg_connection.h"
#include "postgres_server.h"
#include "status_assert.h"
#include "store/db.h"
#include "store/schema.h"
#include "temp_dir.h"

namespace mailhook::pgstore {
namespace {

using testsupport::PostgresServer;
using testsupport::TempDir;

const std::set<std::string> kTables = {"account_leases", "attempts",        "bodies",    "body_chunks",  "dead_letters",
                                       "delivered",      "fingerprints",    "outbox",    "post_actions", "replicas",
                                       "schema_version", "smtp_recipients", "smtp_sent", "watermarks"};

// Waits for `done` (a condition on the server), re-checking every 10 ms.
template <typename Fn>
bool WaitFor(Fn done, std::chrono::seconds timeout = std::chrono::seconds(20)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

class PgSchemaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::string why = PostgresServer::WhyCannotRun(); !why.empty()) GTEST_SKIP() << why;
    MH_ASSERT_OK(pg_.Start());
    auto conn = PgConnection::Connect(pg_.ConnectionUrl());
    MH_ASSERT_OK(conn);
    conn_ = std::move(conn).value();
    MH_ASSERT_OK(conn_->Prepare("tables",
                                "SELECT table_name::text FROM information_schema.tables WHERE table_schema = "
                                "current_schema()"));
    MH_ASSERT_OK(conn_->Prepare("columns",
                                "SELECT table_name::text, column_name::text, data_type::text, is_identity::text, "
                                "coalesce(identity_generation::text, '') FROM information_schema.columns "
                                "WHERE table_schema = current_schema()"));
  }

  std::set<std::string> Tables() {
    std::set<std::string> out;
    auto rows = conn_->Exec("tables");
    EXPECT_TRUE(rows.ok()) << rows.error().ToString();
    if (!rows) return out;
    for (int i = 0; i < rows->rows(); ++i) out.emplace(rows->Text(i, 0).value());
    return out;
  }

  /// "table.column" → "type" (+ " identity BY DEFAULT" for identities).
  std::map<std::string, std::string> Columns() {
    std::map<std::string, std::string> out;
    auto rows = conn_->Exec("columns");
    EXPECT_TRUE(rows.ok()) << rows.error().ToString();
    if (!rows) return out;
    for (int i = 0; i < rows->rows(); ++i) {
      std::string type(rows->Text(i, 2).value());
      if (rows->Text(i, 3).value() == "YES") type += " identity " + std::string(rows->Text(i, 4).value());
      out[std::string(rows->Text(i, 0).value()) + "." + std::string(rows->Text(i, 1).value())] = type;
    }
    return out;
  }

  int64_t Version(PgConnection& conn) {
    auto v = PgSchemaVersionOf(conn);
    EXPECT_TRUE(v.ok()) << v.error().ToString();
    return v.ok() ? *v : -1;
  }

  PostgresServer pg_;
  std::unique_ptr<PgConnection> conn_;
};

TEST_F(PgSchemaTest, FreshDatabaseGetsEveryTable) {
  EXPECT_EQ(Version(*conn_), 0);
  EXPECT_TRUE(Tables().empty());
  MH_ASSERT_OK(MigratePg(*conn_));
  EXPECT_EQ(Version(*conn_), kPgSchemaVersion);
  EXPECT_EQ(Tables(), kTables);

  const std::map<std::string, std::string> columns = Columns();
  auto type = [&](const std::string& column) {
    auto it = columns.find(column);
    return it == columns.end() ? std::string("<missing>") : it->second;
  };
  // The design note's types (§2, §4).
  EXPECT_EQ(type("outbox.id"), "bigint identity BY DEFAULT");
  EXPECT_EQ(type("outbox.lease_owner"), "uuid");
  EXPECT_EQ(type("outbox.uidvalidity"), "bigint");
  EXPECT_EQ(type("outbox.next_attempt_at"), "bigint");
  EXPECT_EQ(type("dead_letters.id"), "bigint");  // no identity: it keeps the outbox id
  EXPECT_EQ(type("watermarks.last_uid"), "bigint");
  EXPECT_EQ(type("watermarks.fp_floor"), "bigint");
  EXPECT_EQ(type("bodies.size"), "bigint");
  EXPECT_EQ(type("body_chunks.seq"), "integer");
  EXPECT_EQ(type("body_chunks.chunk"), "bytea");
  EXPECT_EQ(type("replicas.id"), "uuid");
  EXPECT_EQ(type("replicas.heartbeat_at"), "timestamp with time zone");
  EXPECT_EQ(type("replicas.started_at"), "timestamp with time zone");
  EXPECT_EQ(type("account_leases.owner"), "uuid");
  EXPECT_EQ(type("account_leases.generation"), "bigint");
  EXPECT_EQ(type("account_leases.expires_at"), "timestamp with time zone");
}

// Every column of every table the SQLite store has at its latest version has
// a PostgreSQL column of a matching type: a SQLite migration without its
// PostgreSQL twin fails here. Bodies are the one deliberate difference.
TEST_F(PgSchemaTest, EverySqliteColumnHasItsPostgresTwin) {
  MH_ASSERT_OK(MigratePg(*conn_));
  const std::map<std::string, std::string> pg_columns = Columns();

  TempDir dir;
  const std::string path = dir.Sub("state.db");
  {
    auto db = store::Db::Open(path);
    MH_ASSERT_OK(db);
    MH_ASSERT_OK(store::Migrate(**db));
  }
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  std::unique_ptr<sqlite3, int (*)(sqlite3*)> sqlite(raw, sqlite3_close);
  sqlite3_stmt* stmt = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(sqlite.get(),
                               "SELECT m.name, p.name, upper(p.type) FROM sqlite_master m, pragma_table_info(m.name) p "
                               "WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%'",
                               -1, &stmt, nullptr),
            SQLITE_OK);
  int checked = 0;
  while (sqlite3_step(stmt) == SQLITE_ROW) {
    const std::string table = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
    const std::string column = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 1));
    const std::string type = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 2));
    if (table == "bodies" && column == "body") {  // body_chunks.chunk, in pieces
      EXPECT_EQ(pg_columns.at("body_chunks.chunk"), "bytea");
      continue;
    }
    auto it = pg_columns.find(table + "." + column);
    ASSERT_NE(it, pg_columns.end()) << table << "." << column << " (SQLite " << type << ") has no PostgreSQL column";
    if (type == "INTEGER") {
      EXPECT_TRUE(it->second.starts_with("bigint") || it->second == "integer") << table << "." << column;
    } else if (type == "TEXT") {
      EXPECT_EQ(it->second, "text") << table << "." << column;
    } else {
      ADD_FAILURE() << table << "." << column << ": SQLite type " << type << " has no mapping in this test";
    }
    ++checked;
  }
  sqlite3_finalize(stmt);
  EXPECT_GT(checked, 60);  // every table's columns were seen
}

// Two replicas start at once: both read version 0, then both wait on the
// advisory lock (held here until both wait, to make sure they race), then
// one migrates and the other finds the work done: no error, one set of
// tables, one version row.
TEST_F(PgSchemaTest, TwoConcurrentMigrationsEndWithOneSchema) {
  auto a = PgConnection::Connect(pg_.ConnectionUrl());
  auto b = PgConnection::Connect(pg_.ConnectionUrl());
  MH_ASSERT_OK(a);
  MH_ASSERT_OK(b);
  auto gate = PgConnection::Connect(pg_.ConnectionUrl());
  MH_ASSERT_OK(gate);
  MH_ASSERT_OK((*gate)->Prepare("lock", "SELECT pg_advisory_lock($1::bigint)"));
  MH_ASSERT_OK((*gate)->Prepare("unlock", "SELECT pg_advisory_unlock($1::bigint)"));
  MH_ASSERT_OK((*gate)->Exec("lock", {kPgSchemaLockKey}));
  MH_ASSERT_OK(conn_->Prepare("waiting",
                              "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
                              "AND pid = ANY($1::int[])"));
  const std::string pids = "{" + std::to_string((*a)->backend_pid()) + "," + std::to_string((*b)->backend_pid()) + "}";

  util::Status status_a = util::Ok();
  util::Status status_b = util::Ok();
  std::thread thread_a([&] { status_a = MigratePg(**a); });
  std::thread thread_b([&] { status_b = MigratePg(**b); });
  const bool both_wait = WaitFor([&] {
    auto rows = conn_->Exec("waiting", {pids});
    return rows.ok() && rows->Int64(0, 0).value() == 2;
  });
  MH_EXPECT_OK((*gate)->Exec("unlock", {kPgSchemaLockKey}));
  thread_a.join();
  thread_b.join();
  ASSERT_TRUE(both_wait) << "the two migrations never both waited on the lock";
  MH_EXPECT_OK(status_a);
  MH_EXPECT_OK(status_b);
  EXPECT_EQ(Tables(), kTables);
  EXPECT_EQ(Version(*conn_), kPgSchemaVersion);
  MH_ASSERT_OK(conn_->Prepare("version_rows", "SELECT count(*) FROM schema_version"));
  EXPECT_EQ(conn_->Exec("version_rows")->Int64(0, 0).value(), 1);
}

TEST_F(PgSchemaTest, RerunChangesNothing) {
  MH_ASSERT_OK(MigratePg(*conn_));
  MH_ASSERT_OK(conn_->Run(
      "INSERT INTO watermarks (account, folder, uidvalidity, last_uid, updated_at) VALUES ('a', 'INBOX', 4294967295, "
      "7, 1)"));
  // A rerun takes no lock and runs no DDL: the tables keep their oids.
  MH_ASSERT_OK(conn_->Prepare(
      "oids",
      "SELECT string_agg(oid::text, ',' ORDER BY relname) FROM pg_class "
      "WHERE relkind = 'r' AND relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema())"));
  const std::string before(conn_->Exec("oids")->Text(0, 0).value());
  MH_ASSERT_OK(MigratePg(*conn_));
  auto other = PgConnection::Connect(pg_.ConnectionUrl());
  MH_ASSERT_OK(other);
  MH_ASSERT_OK(MigratePg(**other));
  EXPECT_EQ(conn_->Exec("oids")->Text(0, 0).value(), before);
  EXPECT_EQ(Version(*conn_), kPgSchemaVersion);
  MH_ASSERT_OK(conn_->Prepare("watermark", "SELECT uidvalidity FROM watermarks WHERE account = 'a'"));
  EXPECT_EQ(conn_->Exec("watermark")->Int64(0, 0).value(), 4294967295);
}

TEST_F(PgSchemaTest, NewerDatabaseIsRefused) {
  MH_ASSERT_OK(MigratePg(*conn_));
  const int newer = kPgSchemaVersion + 3;
  MH_ASSERT_OK(conn_->Run("UPDATE schema_version SET version = " + std::to_string(newer)));
  auto other = PgConnection::Connect(pg_.ConnectionUrl());
  MH_ASSERT_OK(other);
  util::Status s = MigratePg(**other);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code(), "store.schema");
  EXPECT_TRUE(s.error().NeedsOperator());
  EXPECT_TRUE(s.error().IsStore());
  const std::string& message = s.error().message();
  EXPECT_NE(message.find("schema version " + std::to_string(newer)), std::string::npos) << message;
  EXPECT_NE(message.find("(" + std::to_string(kPgSchemaVersion) + ")"), std::string::npos) << message;
  EXPECT_NE(message.find("newer mailhook"), std::string::npos) << message;
  EXPECT_NE(message.find("127.0.0.1"), std::string::npos) << message;  // which database
  EXPECT_EQ(Version(*conn_), newer);                                   // left alone
}

// A table of the same name already there (someone else's): the step fails,
// the error says which migration, and the transaction leaves nothing.
TEST_F(PgSchemaTest, FailedStepLeavesNothing) {
  MH_ASSERT_OK(conn_->Run("CREATE TABLE replicas (unrelated text)"));
  util::Status s = MigratePg(*conn_);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code(), "store.pg.sql");
  EXPECT_NE(s.error().message().find("from schema version 0 to 1"), std::string::npos) << s.error().message();
  EXPECT_NE(s.error().message().find("42P07"), std::string::npos) << s.error().message();
  EXPECT_EQ(s.error().message().find('\n'), std::string::npos) << s.error().message();  // one log line
  EXPECT_NE(s.error().message().find("not mailhook's"), std::string::npos) << s.error().message();
  std::cerr << s.error().ToString() << "\n";
  EXPECT_EQ(Tables(), std::set<std::string>{"replicas"});
  EXPECT_EQ(Version(*conn_), 0);
  // Once the operator removes it, the migration runs.
  MH_ASSERT_OK(conn_->Run("DROP TABLE replicas"));
  MH_ASSERT_OK(MigratePg(*conn_));
  EXPECT_EQ(Tables(), kTables);
}

}  // namespace
}  // namespace mailhook::pgstore
