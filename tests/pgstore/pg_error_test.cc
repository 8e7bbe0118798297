#include "pgstore/pg_error.h"

#include <gtest/gtest.h>

namespace mailhook::pgstore {
namespace {

using util::RetryClass;

struct Row {
  const char* sqlstate;
  const char* code;
  RetryClass retry;
};

// The table of pg_error.h, one row per case it names.
TEST(SqlstateTest, MapsEachClassToItsRetry) {
  const Row rows[] = {
      {"", "store.pg.connection", RetryClass::kBackoff},       // no answer: broken, refused
      {"08006", "store.pg.connection", RetryClass::kBackoff},  // connection_failure
      {"08001", "store.pg.connection", RetryClass::kBackoff},  // unable to connect
      {"57P01", "store.pg.connection", RetryClass::kBackoff},  // admin_shutdown
      {"57P02", "store.pg.connection", RetryClass::kBackoff},  // crash_shutdown
      {"57P03", "store.pg.connection", RetryClass::kBackoff},  // cannot_connect_now (starting up)
      {"25P03", "store.pg.connection", RetryClass::kBackoff},  // idle_in_transaction_session_timeout
      {"40001", "store.pg.conflict", RetryClass::kRetryNow},   // serialization_failure
      {"40P01", "store.pg.conflict", RetryClass::kRetryNow},   // deadlock_detected
      {"53300", "store.pg.resources", RetryClass::kBackoff},   // too_many_connections
      {"53100", "store.pg.resources", RetryClass::kBackoff},   // disk_full
      {"57014", "store.pg.timeout", RetryClass::kBackoff},     // query_canceled (statement_timeout)
      {"58030", "store.pg.server", RetryClass::kBackoff},      // io_error
      {"XX000", "store.pg.server", RetryClass::kBackoff},      // internal_error
      {"28P01", "store.pg.auth", RetryClass::kNeedsOperator},  // invalid_password
      {"28000", "store.pg.auth", RetryClass::kNeedsOperator},  // invalid_authorization_specification
      {"3D000", "store.pg.database", RetryClass::kNeedsOperator},
      {"57P04", "store.pg.sql", RetryClass::kNeedsOperator},  // database_dropped
      {"23505", "store.pg.sql", RetryClass::kNeedsOperator},  // unique_violation: a bug
      {"42P01", "store.pg.sql", RetryClass::kNeedsOperator},  // undefined_table: schema mismatch
      {"40002", "store.pg.sql", RetryClass::kNeedsOperator},  // integrity constraint at commit: not a retry
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(std::string("SQLSTATE '") + row.sqlstate + "'");
    const SqlstateMeaning meaning = ClassifySqlstate(row.sqlstate);
    EXPECT_EQ(meaning.code, row.code);
    EXPECT_EQ(meaning.retry, row.retry);
    EXPECT_FALSE(meaning.fix.empty());
  }
}

TEST(SqlstateTest, ErrorNamesTheSqlstateAndTheFix) {
  util::Error e = PgError("42P01", "running statement \"outbox.add\" on postgresql://u:<redacted>@h/db",
                          "ERROR:  relation \"outbox\" does not exist\nLINE 1: INSERT INTO outbox\n");
  EXPECT_TRUE(e.IsStore());
  EXPECT_EQ(e.code(), "store.pg.sql");
  EXPECT_EQ(e.retry(), RetryClass::kNeedsOperator);
  EXPECT_EQ(e.message(),
            "running statement \"outbox.add\" on postgresql://u:<redacted>@h/db: ERROR:  relation \"outbox\" does "
            "not exist LINE 1: INSERT INTO outbox (SQLSTATE 42P01); an unexpected SQL error: a schema mismatch or a "
            "bug in mailhook; report it with this message");
}

TEST(SqlstateTest, AuthenticationErrorNamesTheFix) {
  util::Error e = PgError("28P01", "connecting to postgresql://u:<redacted>@h/db",
                          "FATAL:  password authentication failed for user \"u\"");
  EXPECT_EQ(e.code(), "store.pg.auth");
  EXPECT_TRUE(e.NeedsOperator());
  EXPECT_NE(e.message().find("authentication failed: check the user and password of store.url"), std::string::npos)
      << e.message();
}

TEST(SqlstateTest, FindsTheCodeInAVerboseLibpqMessage) {
  EXPECT_EQ(SqlstateInVerboseMessage("connection to server at \"127.0.0.1\", port 5432 failed: FATAL:  28P01: "
                                     "password authentication failed for user \"u\" LOCATION:  auth_failed"),
            "28P01");
  EXPECT_EQ(SqlstateInVerboseMessage("FATAL:  3D000: database \"nope\" does not exist"), "3D000");
  // A translated severity word still leaves the code in place.
  EXPECT_EQ(SqlstateInVerboseMessage("SCHWERWIEGEND:  53300: zu viele Verbindungen"), "53300");
  EXPECT_EQ(SqlstateInVerboseMessage("connection to server at \"127.0.0.1\", port 1 failed: Connection refused"), "");
  EXPECT_EQ(SqlstateInVerboseMessage(""), "");
}

}  // namespace
}  // namespace mailhook::pgstore
