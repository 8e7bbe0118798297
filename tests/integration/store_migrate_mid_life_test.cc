// `mailhook store migrate` mid-life (issue #11's acceptance test), with the
// real binary, Dovecot, receiver and PostgreSQL: a daemon on SQLite delivers
// three messages, dead-letters a fourth (400) and holds a fifth pending
// (503, retried); it stops, two messages arrive while nothing runs, the state
// moves to PostgreSQL, and a daemon on the new store delivers the pending one
// with the webhook-id it had, the two new ones, the replayed dead letter and a
// sentinel: every message 2xx exactly once, none of the first three again,
// and the SQLite state left as it was. The same after A crashed (SIGKILL).
// An event failing throughout gets exactly its retry budget over A and B.
// A migration into a PostgreSQL that already holds a state, and one from a
// state_dir a daemon still runs on, are refused with the cause named and
// change neither side. Skipped without PostgreSQL (server or libpq).

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "postgres_server.h"
#include "testsupport.h"

#if MAILHOOK_HAVE_PGSTORE
#include <libpq-fe.h>
#endif

namespace mailhook::testsupport {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr const char* kPgPassword = "pw-migrate-mid-life";

// The subject of the event a request carried ("" if it is not one).
std::string SubjectOf(const RecordedRequest& request) {
  const nlohmann::json event = request.Json();
  if (event.is_discarded() || !event.contains("message") || !event["message"]["subject"].is_string()) return "";
  return event["message"]["subject"].get<std::string>();
}

bool Is2xx(const RecordedRequest& request) { return request.answered_status / 100 == 2; }

// The bytes of a file ("<missing>" when it cannot be read).
std::string FileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "<missing>";
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

#if MAILHOOK_HAVE_PGSTORE
struct PgConnCloser {
  void operator()(PGconn* c) const { PQfinish(c); }
};
struct PgResultCloser {
  void operator()(PGresult* r) const { PQclear(r); }
};

// Every row of `sql`, its columns joined by ' ' (an "ERROR: …" row if it failed).
std::vector<std::string> QueryRows(PGconn* conn, const std::string& sql) {
  std::unique_ptr<PGresult, PgResultCloser> r(PQexec(conn, sql.c_str()));
  if (PQresultStatus(r.get()) != PGRES_TUPLES_OK) return {std::string("ERROR: ") + PQresultErrorMessage(r.get())};
  std::vector<std::string> rows;
  for (int i = 0; i < PQntuples(r.get()); ++i) {
    std::string row;
    for (int c = 0; c < PQnfields(r.get()); ++c) row += (c ? " " : "") + std::string(PQgetvalue(r.get(), i, c));
    rows.push_back(row);
  }
  return rows;
}

// The whole PostgreSQL state as text: per table its row count and a digest of
// its rows, and every sequence's position (setval is not rolled back).
std::string PgStateDigest(const std::string& url) {
  std::unique_ptr<PGconn, PgConnCloser> conn(PQconnectdb((url + "?connect_timeout=10").c_str()));
  if (PQstatus(conn.get()) != CONNECTION_OK) return std::string("cannot connect: ") + PQerrorMessage(conn.get());
  std::string out;
  for (const std::string& table :
       QueryRows(conn.get(), "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY 1")) {
    const std::string sql = "SELECT count(*), coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '-') FROM " +
                            std::string("\"") + table + "\" t";
    for (const std::string& row : QueryRows(conn.get(), sql)) out += table + ": " + row + "\n";
  }
  for (const std::string& row : QueryRows(conn.get(),
                                          "SELECT sequencename, coalesce(last_value::text, 'unused') FROM pg_sequences "
                                          "WHERE schemaname = current_schema() ORDER BY 1")) {
    out += "sequence " + row + "\n";
  }
  return out;
}
#endif

class StoreMigrateIntegration : public ::testing::Test {
 protected:
  void SetUp() override {
#if !MAILHOOK_HAVE_PGSTORE
    GTEST_SKIP() << "built without libpq (no PostgreSQL store): run scripts/deps and reconfigure";
#endif
    if (std::string why = PostgresServer::WhyCannotRun(); !why.empty()) GTEST_SKIP() << why;
    MH_ASSERT_OK(pg_.Start({.password = kPgPassword}));
    MH_ASSERT_OK(dovecot_.Start());
    MH_ASSERT_OK(hook_.Start());
  }

  // One account (alice's INBOX), one signed webhook retried every second for
  // a minute; on SQLite in `daemon`'s state_dir, or on the PostgreSQL store.
  std::string Config(const MailhookProcess& daemon, bool on_postgres) const {
    ConfigSpec cfg;
    cfg.state_dir = daemon.state_dir();
    cfg.log_level = "debug";
    cfg.accounts.push_back(AccountYaml(dovecot_, AccountSpec{}));
    std::string retries = retry_schedule_;
    if (retries.empty()) {
      retries = "[1s";
      for (int i = 1; i < 60; ++i) retries += ", 1s";
      retries += "]";
    }
    cfg.webhooks.push_back(WebhookYaml({"hook", hook_.url(), kTestWebhookSecret, "retry_schedule: " + retries}));
    if (on_postgres) cfg.extra = "store:\n  url: " + Quote(pg_.ConnectionUrl()) + "\n  lease_ttl: 5s\n";
    return RenderConfig(cfg);
  }

  // Starts `daemon` on its config and waits until its folder is watched.
  void StartWatching(MailhookProcess& daemon, bool on_postgres) {
    MH_ASSERT_OK(daemon.WriteConfig(Config(daemon, on_postgres)));
    MH_ASSERT_OK(daemon.Start());
    // Log() and its marks are per run: this run's from its start.
    ASSERT_TRUE(daemon.WaitForLog("imap.connected", seconds(30))) << daemon.Log();
  }

  // Appends a message to alice's INBOX and notes its UID in uids_.
  void Append(const std::string& subject) {
    ImapClient imap(dovecot_);
    MH_ASSERT_OK_AND_ASSIGN(uids_[subject], imap.Append("alice", "INBOX", MessageWithSubject(subject)));
  }

  // The UIDs `daemon`'s current run turned into events (its imap.message lines).
  static std::set<uint32_t> UidsFetched(const MailhookProcess& daemon) {
    static const std::regex kMessage(R"(imap\.message account=test folder=INBOX uid=([0-9]+) )");
    const std::string log = daemon.Log();
    std::set<uint32_t> out;
    for (std::sregex_iterator it(log.begin(), log.end(), kMessage), end; it != end; ++it)
      out.insert(static_cast<uint32_t>(std::stoul((*it)[1])));
    return out;
  }

  // The requests so far that carried `subject`'s event.
  std::vector<RecordedRequest> RequestsFor(const std::string& subject) const {
    std::vector<RecordedRequest> out;
    for (const auto& r : hook_.Requests())
      if (SubjectOf(r) == subject) out.push_back(r);
    return out;
  }

  // Waits until `subject`'s event got a 2xx.
  bool WaitDelivered(const std::string& subject, milliseconds timeout) const {
    return WaitUntil(
        [&] {
          for (const auto& r : RequestsFor(subject))
            if (Is2xx(r)) return true;
          return false;
        },
        timeout);
  }

  util::Result<CommandResult> Migrate(const std::string& from) const {
    return RunMailhook({"store", "migrate", "--from", from, "--to", pg_.ConnectionUrl()}, seconds(60));
  }

  // Stops `daemon` with SIGTERM; it must exit 0.
  static void StopCleanly(MailhookProcess& daemon) {
    MH_ASSERT_OK_AND_ASSIGN(int code, daemon.Terminate());
    ASSERT_EQ(code, 0) << daemon.Log();
  }

  // Every request is the event of one of `subjects`; each got exactly one 2xx
  // and kept one webhook-id over all its attempts, distinct from the others'.
  void ExpectEachDeliveredOnce(const std::set<std::string>& subjects) const {
    std::map<std::string, int> ok_per_subject, ok_per_id;
    std::map<std::string, std::set<std::string>> ids_per_subject;
    for (const auto& r : hook_.Requests()) {
      const std::string subject = SubjectOf(r);
      EXPECT_TRUE(subjects.count(subject)) << "unexpected request for \"" << subject << "\"";
      EXPECT_TRUE(VerifyStandardWebhookSignature(kTestWebhookSecret, r)) << subject;
      ids_per_subject[subject].insert(r.Header("webhook-id"));
      if (!Is2xx(r)) continue;
      ++ok_per_subject[subject];
      ++ok_per_id[r.Header("webhook-id")];
    }
    std::set<std::string> all_ids;
    for (const std::string& subject : subjects) {
      EXPECT_EQ(ok_per_subject[subject], 1) << subject;
      ASSERT_EQ(ids_per_subject[subject].size(), 1u) << subject << " changed its webhook-id";
      EXPECT_TRUE(all_ids.insert(*ids_per_subject[subject].begin()).second) << subject << " shares its webhook-id";
    }
    for (const auto& [id, count] : ok_per_id) EXPECT_EQ(count, 1) << "webhook-id " << id;
  }

  PostgresServer pg_;
  DovecotServer dovecot_;
  WebhookReceiver hook_;
  MailhookProcess daemon_;
  std::map<std::string, uint32_t> uids_;  // subject → UID in alice's INBOX
  std::string retry_schedule_;            // YAML list; empty: 1s, sixty times
};

// The ids A's attempts carried for the messages it could not deliver.
struct Undelivered {
  std::string pending_id;
  std::string dead_id;
};

class StoreMigrateMidLifeTest : public StoreMigrateIntegration {
 protected:
  // Daemon A on SQLite: delivers three messages; a 400 makes "dead" a dead
  // letter; then the receiver fails (503) and "pending" stays in the outbox,
  // retried every second. A stops with it still pending: cleanly (SIGTERM,
  // exit 0), or by a crash (SIGKILL) when `crash`.
  void RunAOnSqlite(Undelivered& out, bool crash) {
    ASSERT_NO_FATAL_FAILURE(StartWatching(daemon_, false));
    for (const char* s : {"before-1", "before-2", "before-3"}) ASSERT_NO_FATAL_FAILURE(Append(s));
    for (const char* s : {"before-1", "before-2", "before-3"})
      ASSERT_TRUE(WaitDelivered(s, seconds(30))) << s << "\n" << daemon_.Log();
    hook_.QueueStatuses({400});
    ASSERT_NO_FATAL_FAILURE(Append("dead"));
    ASSERT_TRUE(daemon_.WaitForLog("delivery.dead", seconds(30))) << daemon_.Log();
    ASSERT_EQ(RequestsFor("dead").size(), 1u);
    EXPECT_EQ(RequestsFor("dead")[0].answered_status, 400);
    ScriptedResponse unavailable;
    unavailable.status = 503;
    hook_.SetDefaultResponse(unavailable);
    const size_t retry_mark = daemon_.LogMark();
    ASSERT_NO_FATAL_FAILURE(Append("pending"));
    ASSERT_TRUE(daemon_.WaitForLog("delivery.retry", seconds(30), retry_mark)) << daemon_.Log();
    ASSERT_TRUE(WaitUntil([&] { return RequestsFor("pending").size() >= 2; }, seconds(30)))
        << "not retried on A: " << daemon_.Log();
    if (crash) {
      daemon_.Kill9();
    } else {
      ASSERT_NO_FATAL_FAILURE(StopCleanly(daemon_));
    }
    for (const auto& r : RequestsFor("pending")) ASSERT_EQ(r.answered_status, 503);
    out.pending_id = RequestsFor("pending")[0].Header("webhook-id");
    out.dead_id = RequestsFor("dead")[0].Header("webhook-id");
    ASSERT_FALSE(out.pending_id.empty());
    ASSERT_FALSE(out.dead_id.empty());
  }

  // `mailhook store migrate` from A's state_dir: the pending outbox row and
  // the dead letter move with it.
  void MigrateA() {
    MH_ASSERT_OK_AND_ASSIGN(CommandResult migrate, Migrate(daemon_.state_dir()));
    ASSERT_EQ(migrate.exit_code, 0) << migrate.out << migrate.err;
    std::cerr << "store migrate:\n" << migrate.out;
    EXPECT_NE(migrate.out.find("migrated "), std::string::npos) << migrate.out;
    EXPECT_NE(migrate.out.find("  outbox 1\n"), std::string::npos) << migrate.out;
    EXPECT_NE(migrate.out.find("  dead_letters 1\n"), std::string::npos) << migrate.out;
    EXPECT_EQ((migrate.out + migrate.err).find(kPgPassword), std::string::npos) << "the password is never printed";
  }

  void ExpectBDeliversTheRest(const Undelivered& a, size_t requests_of_a, const std::vector<std::string>& while_down);

  // On B: the dead letter is listed with its event id, and a replay delivers
  // it with that id.
  void ReplayTheDeadLetter(const std::string& dead_id) {
    MH_ASSERT_OK_AND_ASSIGN(CommandResult list,
                            RunMailhook({"deadletters", "list", "-c", daemon_.config_path()}, seconds(20)));
    ASSERT_EQ(list.exit_code, 0) << list.out << list.err;
    EXPECT_NE(list.out.find("\t" + dead_id + "\t"), std::string::npos) << list.out;
    ASSERT_NE(list.out.find("1 dead letter(s)"), std::string::npos) << list.out;
    const std::string dead_letter = list.out.substr(0, list.out.find('\t'));
    MH_ASSERT_OK_AND_ASSIGN(
        CommandResult replay,
        RunMailhook({"deadletters", "replay", "-c", daemon_.config_path(), dead_letter}, seconds(20)));
    ASSERT_EQ(replay.exit_code, 0) << replay.out << replay.err;
    EXPECT_NE(replay.out.find("replayed 1"), std::string::npos) << replay.out;
    ASSERT_TRUE(WaitDelivered("dead", seconds(30))) << daemon_.Log();
    EXPECT_EQ(RequestsFor("dead").back().Header("webhook-id"), dead_id);
  }
};

// B on the PostgreSQL store, the receiver healthy again: the pending event
// goes out with the webhook-id it had, then `while_down` (appended while no
// daemon ran), the replayed dead letter and a sentinel; every message is 2xx
// exactly once and B fetched nothing A had.
void StoreMigrateMidLifeTest::ExpectBDeliversTheRest(const Undelivered& a, size_t requests_of_a,
                                                     const std::vector<std::string>& while_down) {
  hook_.SetDefaultResponse(ScriptedResponse{});
  ASSERT_NO_FATAL_FAILURE(StartWatching(daemon_, true));
  ASSERT_TRUE(WaitDelivered("pending", seconds(30))) << daemon_.Log();
  for (const std::string& s : while_down) ASSERT_TRUE(WaitDelivered(s, seconds(30))) << s << "\n" << daemon_.Log();
  // From the migrated outbox, with the id it had.
  EXPECT_EQ(RequestsFor("pending").back().Header("webhook-id"), a.pending_id);
  ASSERT_NO_FATAL_FAILURE(ReplayTheDeadLetter(a.dead_id));

  // A sentinel appended last: once it is delivered, a copy of anything older
  // (a watermark or an outbox row lost on the way) has had its chance to show.
  ASSERT_NO_FATAL_FAILURE(Append("sentinel"));
  ASSERT_TRUE(WaitDelivered("sentinel", seconds(30))) << daemon_.Log();
  const size_t total = hook_.count();
  EXPECT_FALSE(hook_.WaitFor(total + 1, seconds(3))) << "late: " << SubjectOf(hook_.Requests().back());
  std::set<std::string> all = {"before-1", "before-2", "before-3", "dead", "pending", "sentinel"};
  all.insert(while_down.begin(), while_down.end());
  ExpectEachDeliveredOnce(all);
  // B fetched only what arrived after A's last message: the watermark came
  // along (without it, the migrated delivered markers would still hide a
  // re-fetch from the receiver).
  std::set<uint32_t> after_a = {uids_["sentinel"]};
  for (const std::string& s : while_down) after_a.insert(uids_[s]);
  EXPECT_EQ(UidsFetched(daemon_), after_a);
  // B sent none of the messages A delivered.
  const auto requests = hook_.Requests();
  ASSERT_GT(requests.size(), requests_of_a);
  for (size_t i = requests_of_a; i < requests.size(); ++i) {
    EXPECT_NE(SubjectOf(requests[i]).rfind("before-", 0), 0u) << "B sent " << SubjectOf(requests[i]);
  }
}

TEST_F(StoreMigrateMidLifeTest, NoMessageIsSentAgainOrSkipped) {
  Undelivered a;
  ASSERT_NO_FATAL_FAILURE(RunAOnSqlite(a, false));
  const size_t requests_of_a = hook_.count();
  for (const char* s : {"while-stopped-1", "while-stopped-2"}) ASSERT_NO_FATAL_FAILURE(Append(s));
  // The SQLite state stays as A left it (a way back): the migration only
  // reads it, and B, in the same state_dir, does not open it.
  const std::string db = daemon_.state_dir() + "/mailhook.db";
  const std::string sqlite_of_a = FileBytes(db) + FileBytes(db + "-wal");
  ASSERT_NE(FileBytes(db), "<missing>");
  ASSERT_NO_FATAL_FAILURE(MigrateA());
  EXPECT_TRUE(FileBytes(db) + FileBytes(db + "-wal") == sqlite_of_a) << "the migration changed the SQLite state";
  ASSERT_NO_FATAL_FAILURE(ExpectBDeliversTheRest(a, requests_of_a, {"while-stopped-1", "while-stopped-2"}));
  ASSERT_NO_FATAL_FAILURE(StopCleanly(daemon_));
  EXPECT_TRUE(FileBytes(db) + FileBytes(db + "-wal") == sqlite_of_a) << "B changed the SQLite state";
}

// A crashed (SIGKILL, its state_dir lock gone with it, an outbox lease
// perhaps held): the migration takes its state as the crash left it.
TEST_F(StoreMigrateMidLifeTest, AfterACrashNoMessageIsSentAgainOrSkipped) {
  Undelivered a;
  ASSERT_NO_FATAL_FAILURE(RunAOnSqlite(a, true));
  const size_t requests_of_a = hook_.count();
  ASSERT_NO_FATAL_FAILURE(Append("while-down"));
  ASSERT_NO_FATAL_FAILURE(MigrateA());
  ASSERT_NO_FATAL_FAILURE(ExpectBDeliversTheRest(a, requests_of_a, {"while-down"}));
  ASSERT_NO_FATAL_FAILURE(StopCleanly(daemon_));
}

// The retry budget goes on where A left it (the attempts move with the
// outbox row): however the attempts fall between A and B, the receiver sees
// exactly 1 + len(retry_schedule) of them before the event is a dead letter.
TEST_F(StoreMigrateMidLifeTest, TheRetryBudgetGoesOnWhereItWas) {
  retry_schedule_ = "[300ms, 5s, 300ms, 300ms]";  // A stops in the 5 s wait
  ScriptedResponse unavailable;
  unavailable.status = 503;
  hook_.SetDefaultResponse(unavailable);
  ASSERT_NO_FATAL_FAILURE(StartWatching(daemon_, false));
  ASSERT_NO_FATAL_FAILURE(Append("failing"));
  // A has recorded its second failure (the receiver's count alone could run
  // ahead of it: a stop releases an attempt in flight uncounted).
  ASSERT_TRUE(daemon_.WaitForLog("attempt=2 next_in_ms=", seconds(30))) << daemon_.Log();
  ASSERT_EQ(RequestsFor("failing").size(), 2u);
  ASSERT_NO_FATAL_FAILURE(StopCleanly(daemon_));
  const size_t attempts_on_a = RequestsFor("failing").size();
  MH_ASSERT_OK_AND_ASSIGN(CommandResult migrate, Migrate(daemon_.state_dir()));
  ASSERT_EQ(migrate.exit_code, 0) << migrate.out << migrate.err;
  ASSERT_NE(migrate.out.find("  outbox 1\n"), std::string::npos) << "still pending when A stopped: " << migrate.out;

  ASSERT_NO_FATAL_FAILURE(StartWatching(daemon_, true));
  ASSERT_TRUE(daemon_.WaitForLog("delivery.dead", seconds(30))) << daemon_.Log();
  EXPECT_FALSE(hook_.WaitFor(hook_.count() + 1, seconds(2))) << "attempted after it was dead";
  std::cerr << "attempts on A " << attempts_on_a << ", on B " << RequestsFor("failing").size() - attempts_on_a << "\n";
  EXPECT_EQ(RequestsFor("failing").size(), 5u);
  MH_ASSERT_OK_AND_ASSIGN(CommandResult list,
                          RunMailhook({"deadletters", "list", "-c", daemon_.config_path()}, seconds(20)));
  EXPECT_NE(list.out.find("attempts=5\t"), std::string::npos) << list.out;
  ASSERT_NO_FATAL_FAILURE(StopCleanly(daemon_));
}

#if MAILHOOK_HAVE_PGSTORE
class StoreMigrateRefusalTest : public StoreMigrateIntegration {};

// A PostgreSQL a daemon already keeps its state in: a migration into it is
// refused (two states are never merged), and neither side changes.
TEST_F(StoreMigrateRefusalTest, RefusesAStoreThatAlreadyHoldsState) {
  ASSERT_NO_FATAL_FAILURE(StartWatching(daemon_, false));
  ASSERT_NO_FATAL_FAILURE(Append("first"));
  ASSERT_TRUE(WaitDelivered("first", seconds(30))) << daemon_.Log();
  ASSERT_NO_FATAL_FAILURE(StopCleanly(daemon_));

  MailhookProcess on_pg;
  ASSERT_NO_FATAL_FAILURE(StartWatching(on_pg, true));
  ASSERT_NO_FATAL_FAILURE(Append("second"));
  ASSERT_TRUE(WaitUntil([&] { return hook_.count() == 3; }, seconds(30))) << on_pg.Log();
  ASSERT_TRUE(on_pg.WaitForLog("delivery.ok", seconds(10))) << on_pg.Log();
  ASSERT_NO_FATAL_FAILURE(StopCleanly(on_pg));

  const std::string pg_before = PgStateDigest(pg_.ConnectionUrl());
  ASSERT_NE(pg_before.find("watermarks: 1 "), std::string::npos) << pg_before;
  const std::string db = daemon_.state_dir() + "/mailhook.db";
  const std::string sqlite_before = FileBytes(db);
  ASSERT_NE(sqlite_before, "<missing>");

  MH_ASSERT_OK_AND_ASSIGN(CommandResult r, Migrate(daemon_.state_dir()));
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.out.find("already holds mailhook state"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("nothing was copied"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("CREATE DATABASE"), std::string::npos) << "the fix is named: " << r.out;
  EXPECT_EQ((r.out + r.err).find(kPgPassword), std::string::npos) << "the password is never printed";
  EXPECT_EQ(PgStateDigest(pg_.ConnectionUrl()), pg_before);
  EXPECT_TRUE(FileBytes(db) == sqlite_before) << "the SQLite state changed";
  EXPECT_FALSE(std::filesystem::exists(db + "-wal") && std::filesystem::file_size(db + "-wal") > 0);
}

// A daemon still running on the source: refused before PostgreSQL is even
// touched, and the daemon goes on delivering.
TEST_F(StoreMigrateRefusalTest, RefusesWhileADaemonRunsOnTheSource) {
  ASSERT_NO_FATAL_FAILURE(StartWatching(daemon_, false));
  ASSERT_NO_FATAL_FAILURE(Append("first"));
  ASSERT_TRUE(WaitDelivered("first", seconds(30))) << daemon_.Log();
  const std::string pg_before = PgStateDigest(pg_.ConnectionUrl());

  MH_ASSERT_OK_AND_ASSIGN(CommandResult r, Migrate(daemon_.state_dir()));
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.out.find("stop the daemon first"), std::string::npos) << r.out;
  EXPECT_EQ(PgStateDigest(pg_.ConnectionUrl()), pg_before);
  EXPECT_EQ(pg_before.find("watermarks"), std::string::npos) << "no schema was created: " << pg_before;

  ASSERT_NO_FATAL_FAILURE(Append("second"));
  ASSERT_TRUE(WaitDelivered("second", seconds(30))) << daemon_.Log();
  ExpectEachDeliveredOnce({"first", "second"});
  ASSERT_NO_FATAL_FAILURE(StopCleanly(daemon_));
}
#endif

}  // namespace
}  // namespace mailhook::testsupport
