#pragma once
// The two backends of the store table tests (store_tables_test.cc,
// store_side_tables_test.cc): each makes a fresh, empty state and hands out
// its tables: SQLite in a temp dir, or the pgstore classes on a fresh schema
// of a private PostgreSQL (PostgresServer; a case skips with the reason when
// PostgreSQL is missing). The typed fixture runs each case over both.

// for another one of the same sender in flight, then counts it.

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "pgstore/pg_attempts.h"
#include "pgstore/pg_bodies.h"
#include "pgstore/pg_connection.h"
#include "pgstore/pg_dead_letters.h"
#include "pgstore/pg_fingerprints.h"
#include "pgstore/pg_outbox.h"
#include "pgstore/pg_post_actions.h"
#include "pgstore/pg_schema.h"
#include "pgstore/pg_smtp_recipients.h"
#include "pgstore/pg_smtp_sent.h"
#include "pgstore/pg_watermarks.h"
#include "postgres_server.h"
#include "status_assert.h"
#include "store/open_store.h"
#include "store/store.h"
#include "temp_dir.h"

namespace mailhook::pgstore {

using std::chrono::milliseconds;
using store::Clock;
using store::OutboxItem;
using store::Watermark;
using testsupport::PostgresServer;
using testsupport::TempDir;

// ---- the backends: each makes a fresh, empty state and hands out its tables ----

/// SQLite: SqliteStore in a temp dir.
class SqliteBackend {
 public:
  static std::string WhyCannotRun() { return ""; }

  util::Status Open() {
    auto store = store::OpenStore({.state_dir = dir_.path()});
    if (!store) return store.error();
    store_ = std::move(store).value();
    return util::Ok();
  }

  store::Watermarks& watermarks() { return store_->watermarks(); }
  store::Attempts& attempts() { return store_->attempts(); }
  store::Outbox& outbox() { return store_->outbox(); }
  store::DeadLetters& dead_letters() { return store_->dead_letters(); }
  store::PostActions& post_actions() { return store_->post_actions(); }
  store::SmtpRecipients& smtp_recipients() { return store_->smtp_recipients(); }
  store::SmtpSent& smtp_sent() { return store_->smtp_sent(); }
  store::Fingerprints& fingerprints() { return store_->fingerprints(); }

  /// Payloads in `bodies` (a raw connection, as another process would see them).
  int64_t BodyRows() {
    sqlite3* raw = nullptr;
    int64_t n = -1;
    if (sqlite3_open((dir_.path() + "/mailhook.db").c_str(), &raw) == SQLITE_OK) {
      sqlite3_stmt* count = nullptr;
      if (sqlite3_prepare_v2(raw, "SELECT COUNT(*) FROM bodies", -1, &count, nullptr) == SQLITE_OK &&
          sqlite3_step(count) == SQLITE_ROW) {
        n = sqlite3_column_int64(count, 0);
      }
      sqlite3_finalize(count);
    }
    sqlite3_close(raw);
    return n;
  }

 private:
  TempDir dir_;
  std::unique_ptr<store::Store> store_;
};

/// The private PostgreSQL of this test process, started on first use
/// (gtest_discover_tests runs each case in a process of its own).
inline PostgresServer& Server() {
  static PostgresServer server;  // stopped and removed at exit
  return server;
}

/// PostgreSQL: the pgstore classes over one connection whose search_path is
/// a fresh schema (migrated by MigratePg), so cases share nothing.
class PgBackend {
 public:
  static std::string WhyCannotRun() { return PostgresServer::WhyCannotRun(); }

  util::Status Open() {
    if (!Server().running()) {
      if (auto s = Server().Start(); !s) return s;
    }
    auto conn = Connect();
    if (!conn) return conn.error();
    conn_ = std::move(conn).value();
    bodies_ = std::make_unique<PgBodies>(*conn_);
    watermarks_ = std::make_unique<PgWatermarks>(*conn_);
    attempts_ = std::make_unique<PgAttempts>(*conn_);
    outbox_ = std::make_unique<PgOutbox>(*conn_, *bodies_, "");
    dead_letters_ = std::make_unique<PgDeadLetters>(*conn_, *bodies_);
    post_actions_ = std::make_unique<PgPostActions>(*conn_);
    smtp_recipients_ = std::make_unique<PgSmtpRecipients>(*conn_);
    smtp_sent_ = std::make_unique<PgSmtpSent>(*conn_);
    fingerprints_ = std::make_unique<PgFingerprints>(*conn_);
    return util::Ok();
  }

  /// Another connection on the same schema.
  util::Result<std::unique_ptr<PgConnection>> Connect() {
    auto conn = PgConnection::Connect(Server().ConnectionUrl());
    if (!conn) return conn.error();
    if (schema_.empty()) {
      static int serial = 0;
      schema_ = "t" + std::to_string(getpid()) + "_" + std::to_string(++serial);
      if (auto s = (*conn)->Run("CREATE SCHEMA " + schema_); !s) return s.error();
    }
    if (auto s = (*conn)->Run("SET search_path TO " + schema_); !s) return s.error();
    if (auto s = MigratePg(**conn); !s) return s.error();
    return conn;
  }

  store::Watermarks& watermarks() { return *watermarks_; }
  store::Attempts& attempts() { return *attempts_; }
  store::Outbox& outbox() { return *outbox_; }
  store::DeadLetters& dead_letters() { return *dead_letters_; }
  store::PostActions& post_actions() { return *post_actions_; }
  store::SmtpRecipients& smtp_recipients() { return *smtp_recipients_; }
  store::SmtpSent& smtp_sent() { return *smtp_sent_; }
  store::Fingerprints& fingerprints() { return *fingerprints_; }
  store::Bodies& bodies() { return *bodies_; }
  PgConnection& connection() { return *conn_; }

  /// Payloads in `bodies`, and their chunks must be exactly theirs.
  int64_t BodyRows() {
    if (!conn_->Prepare("test.body_rows",
                        "SELECT (SELECT count(*) FROM bodies) * 1000000 + "
                        "(SELECT count(*) FROM body_chunks c WHERE NOT EXISTS "
                        "(SELECT 1 FROM bodies b WHERE b.id = c.id))")) {
      return -1;
    }
    auto rows = conn_->Exec("test.body_rows");
    if (!rows) return -1;
    auto count = rows->Int64(0, 0);
    if (!count) return -1;
    const int64_t n = *count;
    // Chunks without their body would be a leak: show them as a wrong count.
    return n % 1000000 == 0 ? n / 1000000 : -n;
  }

 private:
  std::string schema_;
  std::unique_ptr<PgConnection> conn_;
  std::unique_ptr<PgBodies> bodies_;
  std::unique_ptr<PgWatermarks> watermarks_;
  std::unique_ptr<PgAttempts> attempts_;
  std::unique_ptr<PgOutbox> outbox_;
  std::unique_ptr<PgDeadLetters> dead_letters_;
  std::unique_ptr<PgPostActions> post_actions_;
  std::unique_ptr<PgSmtpRecipients> smtp_recipients_;
  std::unique_ptr<PgSmtpSent> smtp_sent_;
  std::unique_ptr<PgFingerprints> fingerprints_;
};

template <typename Backend>
class StoreTablesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::string why = Backend::WhyCannotRun(); !why.empty()) GTEST_SKIP() << why;
    MH_ASSERT_OK(b_.Open());
  }

  Backend b_;
};

class BackendNames {
 public:
  template <typename T>
  static std::string GetName(int /*index*/) {
    return std::is_same_v<T, SqliteBackend> ? "Sqlite" : "Postgres";
  }
};

using Backends = ::testing::Types<SqliteBackend, PgBackend>;

inline OutboxItem Item(uint32_t uid, const std::string& target = "webhook:tickets") {
  OutboxItem item;
  item.event_id = "evt_" + std::to_string(uid);
  item.target = target;
  item.account = "support";
  item.folder = "INBOX";
  item.uidvalidity = 7;
  item.uid = uid;
  item.payload = R"({"uid":)" + std::to_string(uid) + "}";
  return item;
}

inline std::shared_ptr<const std::string> Piece(size_t n, char c) { return std::make_shared<const std::string>(n, c); }

}  // namespace mailhook::pgstore
