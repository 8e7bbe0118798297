#include "store/schema.h"

#include <iterator>
#include <string>

#include "store/statement.h"

namespace mailhook::store {
namespace {

// Bump when the schema changes and add a step to kMigrations.
constexpr int kSchemaVersion = 7;

// The schema, one step per version: step N takes version N-1 to N. A flat
// table of DDL; to change the schema, append a step and bump kSchemaVersion.
constexpr const char* kMigrations[] = {
    // v1: Times are milliseconds since the Unix epoch (UTC).
    R"sql(
        CREATE TABLE IF NOT EXISTS watermarks (
          account TEXT NOT NULL, folder TEXT NOT NULL,
          uidvalidity INTEGER NOT NULL, last_uid INTEGER NOT NULL,
          updated_at INTEGER NOT NULL,
          PRIMARY KEY (account, folder));
        CREATE TABLE IF NOT EXISTS outbox (
          id INTEGER PRIMARY KEY AUTOINCREMENT,
          event_id TEXT NOT NULL, target TEXT NOT NULL,
          account TEXT NOT NULL, folder TEXT NOT NULL,
          uidvalidity INTEGER NOT NULL, uid INTEGER NOT NULL,
          payload TEXT NOT NULL,
          attempts INTEGER NOT NULL DEFAULT 0,
          created_at INTEGER NOT NULL,
          next_attempt_at INTEGER NOT NULL,
          lease_until INTEGER NOT NULL DEFAULT 0,
          last_error TEXT NOT NULL DEFAULT '',
          UNIQUE (event_id, target));
        CREATE INDEX IF NOT EXISTS outbox_due ON outbox (next_attempt_at, id);
        CREATE TABLE IF NOT EXISTS dead_letters (
          id INTEGER PRIMARY KEY,
          event_id TEXT NOT NULL, target TEXT NOT NULL,
          account TEXT NOT NULL, folder TEXT NOT NULL,
          uidvalidity INTEGER NOT NULL, uid INTEGER NOT NULL,
          payload TEXT NOT NULL,
          attempts INTEGER NOT NULL,
          created_at INTEGER NOT NULL,
          failed_at INTEGER NOT NULL,
          last_error TEXT NOT NULL,
          UNIQUE (event_id, target));
        CREATE TABLE IF NOT EXISTS delivered (
          event_id TEXT NOT NULL, target TEXT NOT NULL,
          delivered_at INTEGER NOT NULL,
          PRIMARY KEY (event_id, target));
        CREATE INDEX IF NOT EXISTS delivered_at ON delivered (delivered_at);
      )sql",
    // v2: post-actions (on_delivered) waiting for every target of an event.
    R"sql(
        CREATE TABLE IF NOT EXISTS post_actions (
          event_id TEXT PRIMARY KEY,
          account TEXT NOT NULL, folder TEXT NOT NULL,
          uidvalidity INTEGER NOT NULL, uid INTEGER NOT NULL,
          created_at INTEGER NOT NULL);
        CREATE INDEX IF NOT EXISTS post_actions_folder ON post_actions (account, folder);
      )sql",
    // v3: large payloads (events with attachment contents) live in their
    // own table, keyed by the outbox id, which a dead letter keeps: a lease
    // or retry UPDATE of an outbox row then never rewrites (and holds in
    // memory) the payload, and moving to and from the dead letters never
    // copies it. Written and read in pieces; the row's `payload` is ''.
    // The body is the last column, so SQLite reserves it as a zeroblob
    // without building it in memory.
    R"sql(
        CREATE TABLE IF NOT EXISTS bodies (id INTEGER PRIMARY KEY, body BLOB NOT NULL);
      )sql",
    // v4: extraction attempts per message, so a message that fails every
    // time (a poison message) is counted across sessions and crashes and
    // becomes message.unprocessable after limits.max_attempts.
    R"sql(
        CREATE TABLE IF NOT EXISTS attempts (
          account TEXT NOT NULL, folder TEXT NOT NULL,
          uidvalidity INTEGER NOT NULL, uid INTEGER NOT NULL,
          count INTEGER NOT NULL, last_code TEXT NOT NULL DEFAULT '',
          last_error TEXT NOT NULL DEFAULT '', updated_at INTEGER NOT NULL,
          PRIMARY KEY (account, folder, uid));
      )sql",
    // v5: a fingerprint of each message that became an event (and of those
    // a baseline passed over), so that after a UIDVALIDITY change the
    // folder's messages are matched to what was already handled instead of
    // being skipped or sent again. watermarks.fp_floor: the messages at or
    // below it were handled without a fingerprint (before this version, or
    // passed over by a baseline not yet covered); 0 when every handled
    // message has one. An existing state is uncovered up to its watermark.
    R"sql(
        CREATE TABLE IF NOT EXISTS fingerprints (
          account TEXT NOT NULL, folder TEXT NOT NULL,
          uidvalidity INTEGER NOT NULL, uid INTEGER NOT NULL,
          message_key TEXT NOT NULL, size INTEGER NOT NULL,
          PRIMARY KEY (account, folder, uidvalidity, uid));
        CREATE INDEX IF NOT EXISTS fingerprints_match ON fingerprints (account, folder, message_key, size);
        ALTER TABLE watermarks ADD COLUMN fp_floor INTEGER NOT NULL DEFAULT 0;
        UPDATE watermarks SET fp_floor = last_uid;
      )sql",
    // v6: the replies `smtp:` targets reserved or sent (store/smtp_sent.h),
    // for the RFC 3834 rules "never answer a message twice" and the
    // per-sender rate limit. One reservation per (target, event): a retry of
    // the event finds its own. `sender` is lower-cased.
    R"sql(
        CREATE TABLE IF NOT EXISTS smtp_sent (
          target TEXT NOT NULL, sender TEXT NOT NULL,
          message_id TEXT NOT NULL, event_id TEXT NOT NULL,
          sent_at INTEGER NOT NULL,
          UNIQUE (target, event_id));
        CREATE INDEX IF NOT EXISTS smtp_sent_message ON smtp_sent (target, message_id);
        CREATE INDEX IF NOT EXISTS smtp_sent_sender ON smtp_sent (target, sender, sent_at);
      )sql",
    // v7: per recipient, the final state of an smtp target's delivery
    // (store/smtp_recipients.h): 'sent' or 'refused' (5yz). A recipient
    // without a row was deferred (4yz) and is what a retry sends to.
    R"sql(
        CREATE TABLE IF NOT EXISTS smtp_recipients (
          target TEXT NOT NULL, event_id TEXT NOT NULL, recipient TEXT NOT NULL,
          state TEXT NOT NULL, reply TEXT NOT NULL DEFAULT '',
          updated_at INTEGER NOT NULL,
          PRIMARY KEY (target, event_id, recipient));
      )sql",
};
static_assert(std::size(kMigrations) == kSchemaVersion);

util::Result<int64_t> UserVersion(Db& db) {
  // Scoped by the caller: a live statement holds a read transaction, and
  // upgrading that to a write fails with SQLITE_BUSY without waiting on the
  // busy timeout.
  Stmt v(db, "PRAGMA user_version");
  if (!v.Step()) return db.SqlError("reading schema version");
  return v.Int(0);
}

}  // namespace

int SchemaVersion() { return kSchemaVersion; }

util::Status Migrate(Db& db) {
  auto version = UserVersion(db);
  if (!version.ok()) return version.error();
  if (*version > kSchemaVersion) {
    return StoreError("store.schema", util::RetryClass::kNeedsOperator,
                      db.path() + " has schema version " + std::to_string(*version) +
                          ", newer than this mailhook understands (" + std::to_string(kSchemaVersion) +
                          "); run a newer mailhook");
  }
  if (*version == kSchemaVersion) return util::Ok();
  return db.InTransaction([&]() -> util::Status {
    // Again, now under the write lock: another process or thread opening
    // the same file may have migrated meanwhile (a step need not be
    // idempotent).
    auto now = UserVersion(db);
    if (!now.ok()) return now.error();
    if (*now >= kSchemaVersion) return util::Ok();
    for (int64_t step = *now; step < kSchemaVersion; ++step) {
      if (auto s = db.Exec(kMigrations[step]); !s) return s;
    }
    return db.Exec(("PRAGMA user_version = " + std::to_string(kSchemaVersion)).c_str());
  });
}

}  // namespace mailhook::store
