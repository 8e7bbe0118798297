#include "store/statement_cache.h"

#include <sqlite3.h>

#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "store/db.h"
#include "store/open_store.h"
#include "store/statement.h"
#include "store/store.h"
#include "temp_dir.h"

namespace mailhook::store {
namespace {

using testsupport::TempDir;

std::unique_ptr<Db> MustOpenDb(const std::string& path) {
  auto db = Db::Open(path);
  if (!db.ok()) ADD_FAILURE() << db.error().ToString();
  return db.ok() ? std::move(db).value() : nullptr;
}

// Statements alive on the connection (cached or in use); SQLite knows them all.
int LiveStatements(Db& db) {
  int n = 0;
  for (sqlite3_stmt* s = sqlite3_next_stmt(db.handle(), nullptr); s; s = sqlite3_next_stmt(db.handle(), s)) ++n;
  return n;
}

// A statement that is neither reset nor finalized holds a read transaction.
int BusyStatements(Db& db) {
  int n = 0;
  for (sqlite3_stmt* s = sqlite3_next_stmt(db.handle(), nullptr); s; s = sqlite3_next_stmt(db.handle(), s)) {
    n += sqlite3_stmt_busy(s) ? 1 : 0;
  }
  return n;
}

std::unique_ptr<Db> DbWithRows(const TempDir& dir, int rows) {
  auto db = MustOpenDb(dir / "t.db");
  if (!db) return nullptr;
  EXPECT_TRUE(db->Exec("CREATE TABLE t (x INTEGER UNIQUE)").ok());
  for (int i = 1; i <= rows; ++i) {
    EXPECT_TRUE(db->Exec(("INSERT INTO t VALUES (" + std::to_string(i) + ")").c_str()).ok());
  }
  return db;
}

TEST(StatementCacheTest, TheSameSqlIsPreparedOnceAndReused) {
  TempDir dir;
  auto db = DbWithRows(dir, 3);
  ASSERT_TRUE(db);
  const int64_t before = db->statements().prepares();
  for (int i = 0; i < 10; ++i) {
    Stmt s(*db, "SELECT COUNT(*) FROM t WHERE x > ?");
    s.Bind(1, int64_t{1});
    ASSERT_TRUE(s.Step());
    EXPECT_EQ(s.Int(0), 2);
  }
  // A text built per call is found by its text, not its pointer.
  for (int i = 0; i < 3; ++i) {
    Stmt s(*db, std::string("SELECT MAX(x)") + " FROM t");
    ASSERT_TRUE(s.Step());
    EXPECT_EQ(s.Int(0), 3);
  }
  EXPECT_EQ(db->statements().prepares() - before, 2);
  EXPECT_EQ(BusyStatements(*db), 0) << "a cached statement must not hold a read transaction";
}

TEST(StatementCacheTest, AStatementThatFailedIsResetAndWorksNextTime) {
  TempDir dir;
  auto db = DbWithRows(dir, 1);
  ASSERT_TRUE(db);
  const char* insert = "INSERT INTO t VALUES (?)";
  {
    Stmt s(*db, insert);
    s.Bind(1, int64_t{1});  // x is UNIQUE and 1 is there
    EXPECT_FALSE(s.Run());
    EXPECT_NE(db->SqlError("inserting").message().find("UNIQUE"), std::string::npos)
        << db->SqlError("inserting").message();
  }
  const int64_t prepared = db->statements().prepares();
  {
    Stmt s(*db, insert);  // the handle that failed, reset
    s.Bind(1, int64_t{2});
    EXPECT_TRUE(s.Run());
  }
  EXPECT_EQ(db->statements().prepares(), prepared);
  Stmt count(*db, "SELECT COUNT(*) FROM t");
  ASSERT_TRUE(count.Step());
  EXPECT_EQ(count.Int(0), 2);
}

TEST(StatementCacheTest, BindingsAreClearedWhenAStatementIsGivenBack) {
  TempDir dir;
  auto db = DbWithRows(dir, 0);
  ASSERT_TRUE(db);
  const char* insert = "INSERT INTO t VALUES (?)";
  {
    std::string value = "5";
    Stmt s(*db, insert);
    s.BindView(1, value);  // a pointer into `value`, which dies first
    EXPECT_TRUE(s.Run());
  }
  Stmt again(*db, insert);  // unbound: NULL, not the old pointer
  EXPECT_TRUE(again.Run());
  Stmt nulls(*db, "SELECT COUNT(*) FROM t WHERE x IS NULL");
  ASSERT_TRUE(nulls.Step());
  EXPECT_EQ(nulls.Int(0), 1);
}

TEST(StatementCacheTest, ARunningStatementIsNotSharedWithAReentrantUseOfTheSameSql) {
  TempDir dir;
  auto db = DbWithRows(dir, 3);
  ASSERT_TRUE(db);
  const char* sql = "SELECT x FROM t ORDER BY x";
  { Stmt warm(*db, sql); }  // cached, idle
  const int64_t before = db->statements().prepares();
  {
    Stmt outer(*db, sql);
    ASSERT_TRUE(outer.Step());
    EXPECT_EQ(outer.Int(0), 1);
    {
      Stmt inner(*db, sql);  // the cached handle is stepping: a new one
      ASSERT_TRUE(inner.Step());
      EXPECT_EQ(inner.Int(0), 1);
      ASSERT_TRUE(inner.Step());
      EXPECT_EQ(inner.Int(0), 2);
    }
    ASSERT_TRUE(outer.Step());
    EXPECT_EQ(outer.Int(0), 2) << "the inner query moved the outer one";
  }
  EXPECT_EQ(db->statements().prepares() - before, 1);
  EXPECT_EQ(db->statements().size(), 1u);
  EXPECT_EQ(LiveStatements(*db), 1) << "the extra handle is finalized when given back";
  EXPECT_EQ(BusyStatements(*db), 0);
}

TEST(StatementCacheTest, ACachedStatementSurvivesASchemaChangeByAnotherConnection) {
  TempDir dir;
  auto db = DbWithRows(dir, 2);
  ASSERT_TRUE(db);
  const char* sql = "SELECT COUNT(*) FROM t";
  {
    Stmt s(*db, sql);
    ASSERT_TRUE(s.Step());
  }
  {
    auto other = MustOpenDb(dir / "t.db");
    ASSERT_TRUE(other);
    ASSERT_TRUE(other->Exec("ALTER TABLE t ADD COLUMN y TEXT; INSERT INTO t (x, y) VALUES (9, 'a')").ok());
  }
  Stmt s(*db, sql);  // SQLite prepares it again inside step (SQLITE_SCHEMA)
  ASSERT_TRUE(s.Step()) << db->SqlError("counting").message();
  EXPECT_EQ(s.Int(0), 3);
}

TEST(StatementCacheTest, IdleStatementsAreBoundedAndAllFreedWhenTheConnectionCloses) {
  TempDir dir;
  { ASSERT_TRUE(DbWithRows(dir, 1)); }
  const sqlite3_int64 before = sqlite3_memory_used();
  {
    auto db = MustOpenDb(dir / "t.db");
    ASSERT_TRUE(db);
    const int distinct = static_cast<int>(StatementCache::kCapacity) + 10;
    for (int i = 0; i < distinct; ++i) {
      Stmt s(*db, "SELECT x + " + std::to_string(i) + " FROM t");
      ASSERT_TRUE(s.Step());
      EXPECT_EQ(s.Int(0), 1 + i);
    }
    EXPECT_EQ(db->statements().size(), StatementCache::kCapacity);
    EXPECT_EQ(LiveStatements(*db), static_cast<int>(StatementCache::kCapacity));
    // The least recently used went first: the newest is still cached.
    const int64_t prepared = db->statements().prepares();
    { Stmt s(*db, "SELECT x + " + std::to_string(distinct - 1) + " FROM t"); }
    EXPECT_EQ(db->statements().prepares(), prepared);
    { Stmt s(*db, "SELECT x + 0 FROM t"); }
    EXPECT_EQ(db->statements().prepares(), prepared + 1);
  }
  // sqlite3_close refuses (and leaks the connection) while a statement is left.
  EXPECT_EQ(sqlite3_memory_used(), before);
}

TEST(StatementCacheTest, TheCommitAndDeliveryPathPreparesEachStatementOnce) {
  TempDir dir;
  auto opened = OpenStore({.state_dir = dir.path()});
  ASSERT_TRUE(opened.ok()) << opened.error().ToString();
  Store& store = **opened;
  auto one_message = [&](uint32_t uid) {
    OutboxItem item;
    item.event_id = "evt_" + std::to_string(uid);
    item.target = "webhook:w";
    item.account = "a";
    item.folder = "INBOX";
    item.uidvalidity = 7;
    item.uid = uid;
    item.payload = "{}";
    ASSERT_TRUE(store.attempts().Begin("a", "INBOX", 7, std::vector<uint32_t>{uid}).ok());
    ASSERT_TRUE(store.CommitMessages("a", "INBOX", Watermark{7, uid}, {item}).ok());
    auto due = store.outbox().ClaimDue(Clock::now(), 10, std::chrono::seconds(30));
    ASSERT_TRUE(due.ok());
    ASSERT_EQ(due->size(), 1u);
    ASSERT_TRUE(store.outbox().MarkDelivered((*due)[0].id).ok());
  };
  one_message(1);
  const int64_t after_first = store.StatementsPreparedForTesting();
  const sqlite3_int64 memory = sqlite3_memory_used();
  for (uint32_t uid = 2; uid <= 50; ++uid) one_message(uid);
  EXPECT_EQ(store.StatementsPreparedForTesting(), after_first) << "a statement was prepared again";
  std::cout << "statements_prepared=" << after_first << " sqlite_bytes_growth=" << sqlite3_memory_used() - memory
            << "\n";
}

}  // namespace
}  // namespace mailhook::store
