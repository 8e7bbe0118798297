#pragma once
/// Store: the daemon's durable state in one SQLite file, <state_dir>/mailhook.db.
///
/// What lives here, one table class each over one connection (Db): the IMAP
/// watermark per (account, folder) (Watermarks), extraction attempts per
/// message (Attempts), the outbox with its leases (Outbox), the dead letters
/// (DeadLetters), post-actions waiting for delivery (PostActions), large
/// payloads (Bodies), the replies of smtp targets (SmtpSent) and their
/// recipients' states (SmtpRecipients). The
/// watermark only moves in the same transaction that makes the events
/// durable (CommitMessages), so a crash replays and never skips.
///
/// Threads and processes: one Store object per thread; a Store (and its
/// connection) must never be used by two threads. Several Store objects, in
/// this process or in another one (`mailhook deadletters ...` while the daemon
/// runs), may open the same file at once: the database is in WAL mode with a
/// busy timeout, so writers wait for each other instead of failing.
///
/// Failures: every method returns a Result/Status; the Error names the file and the
/// fix (disk full, read-only directory, corrupt file). A failed write changes
/// nothing: each write is one transaction (Db::InTransaction).

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "store/db.h"
#include "store/outbox.h"
#include "store/rows.h"
#include "store/sqlite_attempts.h"
#include "store/sqlite_bodies.h"
#include "store/sqlite_dead_letters.h"
#include "store/sqlite_fingerprints.h"
#include "store/sqlite_post_actions.h"
#include "store/sqlite_smtp_recipients.h"
#include "store/sqlite_smtp_sent.h"
#include "store/sqlite_watermarks.h"
#include "util/result.h"

namespace mailhook::store {

/// The SQLite-backed state. Not thread-safe: one object per thread.
class Store {
 public:
  /// Opens the SQLite file at `path` (creating it and its directory `dir`,
  /// named `dir_name` in messages, when missing) and migrates the schema.
  /// Callers use OpenStore (open_store.h), which chooses the backend.
  static util::Result<std::unique_ptr<Store>> Open(const std::string& dir, const std::string& dir_name,
                                                   const std::string& path);

  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  /// The database file's path, for messages.
  const std::string& path() const { return db_->path(); }

  Watermarks& watermarks() { return watermarks_; }
  Attempts& attempts() { return attempts_; }
  Outbox& outbox() { return outbox_; }
  DeadLetters& dead_letters() { return dead_letters_; }
  PostActions& post_actions() { return post_actions_; }
  Bodies& bodies() { return bodies_; }
  Fingerprints& fingerprints() { return fingerprints_; }
  SmtpSent& smtp_sent() { return smtp_sent_; }
  SmtpRecipients& smtp_recipients() { return smtp_recipients_; }

  /// ONE transaction: inserts every item (Outbox::Add: a replay creates no
  /// second row), records `post_actions` and `fingerprints`, forgets the attempts of the items'
  /// UIDs and sets the watermark (unless nullopt: the first pass over a
  /// folder's unseen messages leaves it unset until the end). All or nothing.
  util::Status CommitMessages(const std::string& account, const std::string& folder, std::optional<Watermark> new_mark,
                              const std::vector<OutboxItem>& items, const std::vector<PostAction>& post_actions = {},
                              const std::vector<Fingerprint>& fingerprints = {});
  util::Status CommitMessages(const std::string& account, const std::string& folder, Watermark new_mark,
                              const std::vector<OutboxItem>& items, const std::vector<PostAction>& post_actions = {},
                              const std::vector<Fingerprint>& fingerprints = {}) {
    return CommitMessages(account, folder, std::optional<Watermark>(new_mark), items, post_actions, fingerprints);
  }

  /// Start-up housekeeping, once per daemon start (not per Open: the daemon
  /// opens one Store per watcher and per worker): forgets delivered markers
  /// past the dedupe window and deletes payloads no row refers to any more.
  util::Status Housekeep();

  /// smtp targets' housekeeping, run periodically (the dispatcher, hourly):
  /// forgets replies reserved before SmtpSent::KeepSince(now, longest_window)
  /// and the per-recipient rows of smtp deliveries that ended.
  util::Status HousekeepSmtp(TimePoint now, std::chrono::milliseconds longest_window);

  /// Test-only fault injection: called at named points inside write transactions
  /// ("commit_messages.inserted", "commit_messages.before_commit",
  /// "transaction.before_commit").
  void SetFaultHookForTesting(std::function<void(std::string_view point)> hook) {
    db_->SetFaultHookForTesting(std::move(hook));
  }
  /// Test-only: statements this connection has prepared so far (each SQL
  /// text once, then reused: see StatementCache).
  int64_t StatementsPreparedForTesting() const;

 private:
  explicit Store(std::unique_ptr<Db> db);

  std::unique_ptr<Db> db_;
  SqliteBodies bodies_;
  SqliteWatermarks watermarks_;
  SqliteAttempts attempts_;
  Outbox outbox_;
  SqliteDeadLetters dead_letters_;
  SqlitePostActions post_actions_;
  SqliteFingerprints fingerprints_;
  SqliteSmtpSent smtp_sent_;
  SqliteSmtpRecipients smtp_recipients_;
};

}  // namespace mailhook::store
