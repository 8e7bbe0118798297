// `mailhook store migrate` (daemon::RunStoreMigrate) from a SQLite state
// filled through the Store the daemon uses, into a private PostgreSQL
// (PostgresServer), checked through the same Store interfaces over PgStore:
// every row there and equal (ids, event ids, payloads in pieces, attempts and
// due times), no lease carried over, a replay of a delivered or dead event
// adds nothing, a new row gets a fresh id; a second migration into the
// now non-empty store and one from a state_dir a daemon holds are refused
// and change nothing; the URL's password is never printed.

#include "daemon/store_migrate_command.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "daemon/state_dir_lock.h"
#include "pgstore/pg_connection.h"
#include "pgstore/pg_schema.h"
#include "pgstore/pg_store.h"
#include "postgres_server.h"
#include "status_assert.h"
#include "store/open_store.h"
#include "store/store.h"
#include "temp_dir.h"

namespace mailhook::daemon {
namespace {

using std::chrono::milliseconds;
using store::Clock;
using store::OutboxItem;
using store::Watermark;
using testsupport::PostgresServer;
using testsupport::TempDir;

constexpr const char* kPassword = "pw-store-migrate-5";

OutboxItem Event(const std::string& id, uint32_t uid, std::string payload) {
  return {.event_id = id,
          .target = "webhook:crm",
          .account = "support",
          .folder = "INBOX",
          .uidvalidity = 7,
          .uid = uid,
          .payload = std::move(payload),
          .pieces = {}};
}

OutboxItem InPieces(const std::string& id, uint32_t uid, const std::vector<std::string>& pieces) {
  OutboxItem item = Event(id, uid, "");
  for (const auto& p : pieces) item.pieces.push_back(std::make_shared<const std::string>(p));
  return item;
}

std::string Joined(const OutboxItem& item) {
  std::string out;
  for (const auto& p : item.pieces) out += *p;
  return out;
}

/// What the SQLite state held, to compare the destination with.
struct Filled {
  std::map<std::string, int64_t> ids;  // by event id
  std::string large, dead;             // payloads in pieces
  store::TimePoint retry_at;
};

class StoreMigrateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::string why = PostgresServer::WhyCannotRun(); !why.empty()) GTEST_SKIP() << why;
    MH_ASSERT_OK(pg_.Start({.password = kPassword}));
  }

  int Migrate(const std::string& from, std::string& out) {
    std::ostringstream text;
    const int code = RunStoreMigrate({.from = from, .to = pg_.ConnectionUrl()}, text);
    out = text.str();
    EXPECT_EQ(out.find(kPassword), std::string::npos) << out;
    return code;
  }

  std::unique_ptr<store::Store> OpenPg() {
    auto store = pgstore::PgStore::Open(pg_.ConnectionUrl(), {});
    EXPECT_TRUE(store.ok()) << (store.ok() ? "" : store.error().message());
    return store.ok() ? std::move(store).value() : nullptr;
  }

  // The state a daemon leaves: rows pending (one retried, one still leased),
  // one dead, one delivered, with post-actions, fingerprints, attempts,
  // smtp replies and two folders' watermarks.
  void Fill(Filled& f) {
    auto opened = store::OpenStore({.state_dir = dir_.path()});
    MH_ASSERT_OK(opened);
    store::Store& s = **opened;
    const OutboxItem large =
        InPieces("evt_b", 2, {std::string(1500000, 'x'), "{\"mid\":1}", std::string(1 << 20, 'y')});
    const OutboxItem dead = InPieces("evt_c", 3, {std::string(5000, 'd')});
    f.large = Joined(large);
    f.dead = Joined(dead);
    const std::vector<store::Fingerprint> fps = {{7, 1, "<a@example.org>", 1234}, {7, 2, "\xff\xfe raw", 99}};
    MH_ASSERT_OK(s.CommitMessages("support", "INBOX", Watermark{7, 4},
                                  {Event("evt_a", 1, R"({"a":1})"), large, dead, Event("evt_d", 4, R"({"d":1})")},
                                  {{"evt_a", "support", "INBOX", 7, 1}}, fps));
    MH_ASSERT_OK(s.CommitMessages("support", "Archive", Watermark{3, 10}, {}));
    // More rows than one batch of the copy holds (two full ones and a rest).
    std::vector<store::Fingerprint> bulk;
    for (uint32_t uid = 1; uid <= 450; ++uid) bulk.push_back({5, uid, "<" + std::to_string(uid) + "@bulk>", uid});
    MH_ASSERT_OK(s.fingerprints().Add("support", "Bulk", bulk));
    MH_ASSERT_OK_AND_ASSIGN(auto claimed, s.outbox().ClaimDue(Clock::now(), 10));
    ASSERT_EQ(claimed.size(), 4u);
    for (const auto& d : claimed) f.ids[d.item.event_id] = d.id;
    MH_ASSERT_OK(s.outbox().MarkDelivered(f.ids["evt_d"]));
    MH_ASSERT_OK(s.outbox().MoveToDeadLetters(f.ids["evt_c"], 5, "HTTP 500"));
    f.retry_at = Clock::now() + std::chrono::minutes(10);
    MH_ASSERT_OK(s.outbox().ScheduleRetry(f.ids["evt_a"], 2, f.retry_at, "timeout"));
    // evt_b stays leased: the copy must not carry the lease.
    const std::vector<uint32_t> nine = {9};
    MH_ASSERT_OK(s.attempts().Begin("support", "INBOX", 7, nine));
    MH_ASSERT_OK(s.attempts().RecordFailure("support", "INBOX", 9, "mime.parse", "bad \xff byte"));
    MH_ASSERT_OK(s.smtp_sent().RecordSent({"smtp:auto", "a@example.org", "<m1@x>", "evt_a", Clock::now()}));
    MH_ASSERT_OK(s.smtp_recipients().Record("smtp:auto", "evt_a", {{"a@example.org", {}, "250 ok", Clock::now()}}));
  }

  PostgresServer pg_;
  TempDir dir_;
};

int64_t MsOf(store::TimePoint t) { return std::chrono::duration_cast<milliseconds>(t.time_since_epoch()).count(); }

// The rows and payloads the daemon's dispatcher would claim from the copy.
void ExpectOutboxCopied(store::Store& pg, const Filled& f) {
  MH_ASSERT_OK_AND_ASSIGN(auto pending, pg.outbox().ListPending());
  ASSERT_EQ(pending.size(), 2u);
  for (const auto& d : pending) {
    EXPECT_EQ(d.id, f.ids.at(d.item.event_id)) << d.item.event_id;
    if (d.item.event_id == "evt_a") {
      EXPECT_EQ(d.attempts, 2);
      EXPECT_EQ(MsOf(d.next_attempt_at), MsOf(f.retry_at));
      EXPECT_EQ(d.last_error, "timeout");
    }
  }
  // Due now: evt_b, whose SQLite lease did not come along; evt_a at its retry.
  MH_ASSERT_OK_AND_ASSIGN(auto now, pg.outbox().ClaimDue(Clock::now(), 10));
  ASSERT_EQ(now.size(), 1u);
  EXPECT_EQ(now[0].item.event_id, "evt_b");
  EXPECT_EQ(now[0].item.payload, f.large);
  MH_ASSERT_OK_AND_ASSIGN(auto later, pg.outbox().ClaimDue(f.retry_at + std::chrono::seconds(1), 10));
  ASSERT_EQ(later.size(), 1u);
  EXPECT_EQ(later[0].item.event_id, "evt_a");
  EXPECT_EQ(later[0].item.payload, R"({"a":1})");
  MH_ASSERT_OK_AND_ASSIGN(auto dead, pg.dead_letters().List());
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].id, f.ids.at("evt_c"));
  EXPECT_EQ(dead[0].item.payload, f.dead);
  EXPECT_EQ(dead[0].attempts, 5);
  EXPECT_EQ(dead[0].last_error, "HTTP 500");
}

void ExpectSideTablesCopied(store::Store& pg) {
  MH_ASSERT_OK_AND_ASSIGN(auto inbox, pg.watermarks().Get("support", "INBOX"));
  EXPECT_EQ(inbox, (Watermark{7, 4}));
  MH_ASSERT_OK_AND_ASSIGN(auto archive, pg.watermarks().Get("support", "Archive"));
  EXPECT_EQ(archive, (Watermark{3, 10}));
  MH_ASSERT_OK_AND_ASSIGN(auto bulk, pg.fingerprints().List("support", "Bulk", 5));
  ASSERT_EQ(bulk.size(), 450u);
  EXPECT_EQ(bulk[449], (store::Fingerprint{5, 450, "<450@bulk>", 450}));
  MH_ASSERT_OK_AND_ASSIGN(auto actions, pg.post_actions().Count());
  EXPECT_EQ(actions, 1);
  MH_ASSERT_OK_AND_ASSIGN(auto fps, pg.fingerprints().List("support", "INBOX", 7));
  ASSERT_EQ(fps.size(), 2u);
  EXPECT_EQ(fps[0], (store::Fingerprint{7, 1, "<a@example.org>", 1234}));
  EXPECT_EQ(fps[1].key.rfind("sha256:", 0), 0u) << fps[1].key;  // as PgFingerprints stores such a key
  MH_ASSERT_OK_AND_ASSIGN(auto attempts, pg.attempts().List("support", "INBOX", 7));
  ASSERT_EQ(attempts.size(), 1u);
  EXPECT_EQ(attempts[0].uid, 9u);
  EXPECT_EQ(attempts[0].count, 1);
  EXPECT_EQ(attempts[0].last_code, "mime.parse");
  MH_ASSERT_OK_AND_ASSIGN(auto answered, pg.smtp_sent().AlreadyAnswered("smtp:auto", "<m1@x>"));
  EXPECT_TRUE(answered);
  MH_ASSERT_OK_AND_ASSIGN(auto recipients, pg.smtp_recipients().ForEvent("smtp:auto", "evt_a"));
  ASSERT_EQ(recipients.size(), 1u);
  EXPECT_EQ(recipients[0].reply, "250 ok");
}

TEST_F(StoreMigrateTest, MovesTheWholeStateAndRefusesASecondMigration) {
  Filled f;
  ASSERT_NO_FATAL_FAILURE(Fill(f));
  std::string out;
  ASSERT_EQ(Migrate(dir_.path(), out), 0) << out;
  EXPECT_NE(out.find("  outbox 2\n"), std::string::npos) << out;
  EXPECT_NE(out.find("  dead_letters 1\n"), std::string::npos) << out;
  EXPECT_NE(out.find("  delivered 1\n"), std::string::npos) << out;
  EXPECT_NE(out.find("  bodies 2\n"), std::string::npos) << out;
  EXPECT_NE(out.find("<redacted>"), std::string::npos) << out;

  {
    // The source is left as it was (a user goes back by not setting store.url).
    auto sqlite = store::OpenStore({.state_dir = dir_.path()});
    MH_ASSERT_OK(sqlite);
    MH_ASSERT_OK_AND_ASSIGN(auto left, (*sqlite)->outbox().ListPending());
    EXPECT_EQ(left.size(), 2u);
    MH_ASSERT_OK_AND_ASSIGN(auto left_dead, (*sqlite)->dead_letters().Count());
    EXPECT_EQ(left_dead, 1);
  }
  auto pg = OpenPg();
  ASSERT_NE(pg, nullptr);
  ASSERT_NO_FATAL_FAILURE(ExpectOutboxCopied(*pg, f));
  ASSERT_NO_FATAL_FAILURE(ExpectSideTablesCopied(*pg));

  // A replay of the delivered and the dead event adds no row; a new event
  // gets an id past every id SQLite handed out (evt_d's, deleted, included).
  MH_ASSERT_OK(pg->CommitMessages("support", "INBOX", Watermark{7, 5},
                                  {Event("evt_d", 4, "{}"), Event("evt_c", 3, "{}"), Event("evt_e", 5, "{}")}));
  MH_ASSERT_OK_AND_ASSIGN(auto pending, pg->outbox().ListPending());
  ASSERT_EQ(pending.size(), 3u);
  const auto e = std::find_if(pending.begin(), pending.end(), [](const auto& d) { return d.item.event_id == "evt_e"; });
  ASSERT_NE(e, pending.end());
  EXPECT_GT(e->id, f.ids.at("evt_d"));

  // Into the store that now holds a state: refused, nothing changed.
  ASSERT_EQ(Migrate(dir_.path(), out), 1) << out;
  EXPECT_NE(out.find("already holds mailhook state"), std::string::npos) << out;
  EXPECT_NE(out.find("nothing was copied"), std::string::npos) << out;
  MH_ASSERT_OK_AND_ASSIGN(auto count, pg->outbox().PendingCount());
  EXPECT_EQ(count, 3);
  MH_ASSERT_OK_AND_ASSIGN(auto dead, pg->dead_letters().Count());
  EXPECT_EQ(dead, 1);
}

TEST_F(StoreMigrateTest, RefusesAStateDirADaemonHolds) {
  Filled f;
  ASSERT_NO_FATAL_FAILURE(Fill(f));
  std::string out;
  {
    MH_ASSERT_OK_AND_ASSIGN(auto lock, StateDirLock::Acquire(dir_.path()));
    ASSERT_EQ(Migrate("sqlite:" + dir_.path() + "/mailhook.db", out), 1) << out;
    EXPECT_NE(out.find("stop the daemon first"), std::string::npos) << out;
    auto conn = pgstore::PgConnection::Connect(pg_.ConnectionUrl());
    MH_ASSERT_OK(conn);
    MH_ASSERT_OK_AND_ASSIGN(auto version, pgstore::PgSchemaVersionOf(**conn));
    EXPECT_EQ(version, 0) << "the destination was touched";
  }
  // The daemon stopped: the same command moves the state, here with the
  // URL in a file (--to-file), off the command line.
  const std::string url_file = dir_.Sub("url");
  { std::ofstream(url_file) << pg_.ConnectionUrl() << "\n"; }
  std::ostringstream text;
  ASSERT_EQ(RunStoreMigrate({.from = "sqlite:" + dir_.path() + "/mailhook.db", .to_file = url_file}, text), 0)
      << text.str();
  EXPECT_EQ(text.str().find(kPassword), std::string::npos) << text.str();
  auto pg = OpenPg();
  ASSERT_NE(pg, nullptr);
  MH_ASSERT_OK_AND_ASSIGN(auto count, pg->outbox().PendingCount());
  EXPECT_EQ(count, 2);
}

TEST_F(StoreMigrateTest, NamesAMissingSourceAndALocalDestination) {
  std::string out;
  EXPECT_EQ(Migrate(dir_.Sub("nowhere"), out), 1) << out;
  EXPECT_NE(out.find("there is no SQLite state at"), std::string::npos) << out;
  auto conn = pgstore::PgConnection::Connect(pg_.ConnectionUrl());
  MH_ASSERT_OK(conn);
  MH_ASSERT_OK_AND_ASSIGN(auto version, pgstore::PgSchemaVersionOf(**conn));
  EXPECT_EQ(version, 0) << "the destination was touched";
  MH_ASSERT_OK(store::OpenStore({.state_dir = dir_.path()}));  // an empty state
  std::ostringstream text;
  EXPECT_EQ(RunStoreMigrate({.from = dir_.path(), .to = "sqlite:/tmp/x.db"}, text), 1);
  EXPECT_NE(text.str().find("--to must be a postgresql:// URL"), std::string::npos) << text.str();
}

}  // namespace
}  // namespace mailhook::daemon
