#pragma once
/// Store: the daemon's durable state, behind one interface whatever the
/// backend (today SqliteStore: one SQLite file, <state_dir>/mailhook.db).
/// OpenStore (open_store.h) opens one.
///
/// What lives here, one table interface each: the IMAP
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
/// runs), may open the same state at once: writers wait for each other
/// instead of failing (SQLite: WAL mode with a busy timeout).
///
/// Failures: every method returns a Result/Status; the Error names the file and the
/// fix (disk full, read-only directory, corrupt file). A failed write changes
/// nothing: each write is one transaction.

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "store/attempts.h"
#include "store/bodies.h"
#include "store/dead_letters.h"
#include "store/fingerprints.h"
#include "store/outbox.h"
#include "store/post_actions.h"
#include "store/rows.h"
#include "store/smtp_recipients.h"
#include "store/smtp_sent.h"
#include "store/watermarks.h"
#include "util/result.h"

namespace mailhook::store {

/// The durable state over one connection. Not thread-safe: one object per thread.
class Store {
 public:
  virtual ~Store() = default;
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  /// Where the state lives (the database file's path), for messages.
  virtual const std::string& path() const = 0;
  /// True when every later call will fail the same way (a PostgreSQL
  /// connection the server or the network ended): the owner throws this
  /// store away and opens a new one (store::StoreOpener). A SQLite file
  /// store never breaks this way.
  virtual bool broken() const = 0;

  virtual Watermarks& watermarks() = 0;
  virtual Attempts& attempts() = 0;
  virtual Outbox& outbox() = 0;
  virtual DeadLetters& dead_letters() = 0;
  virtual PostActions& post_actions() = 0;
  virtual Bodies& bodies() = 0;
  virtual Fingerprints& fingerprints() = 0;
  virtual SmtpSent& smtp_sent() = 0;
  virtual SmtpRecipients& smtp_recipients() = 0;

  /// ONE transaction: inserts every item (Outbox::Add: a replay creates no
  /// second row), records `post_actions` and `fingerprints`, forgets the attempts of the items'
  /// UIDs and sets the watermark (unless nullopt: the first pass over a
  /// folder's unseen messages leaves it unset until the end). All or nothing.
  virtual util::Status CommitMessages(const std::string& account, const std::string& folder,
                                      std::optional<Watermark> new_mark, const std::vector<OutboxItem>& items,
                                      const std::vector<PostAction>& post_actions = {},
                                      const std::vector<Fingerprint>& fingerprints = {}) = 0;
  util::Status CommitMessages(const std::string& account, const std::string& folder, Watermark new_mark,
                              const std::vector<OutboxItem>& items, const std::vector<PostAction>& post_actions = {},
                              const std::vector<Fingerprint>& fingerprints = {}) {
    return CommitMessages(account, folder, std::optional<Watermark>(new_mark), items, post_actions, fingerprints);
  }

  /// Start-up housekeeping, once per daemon start (not per OpenStore: the
  /// daemon opens several, one per account sync and one for the dispatcher): forgets delivered
  /// markers past the dedupe window and deletes payloads no row refers to any more.
  virtual util::Status Housekeep() = 0;

  /// smtp targets' housekeeping, run periodically (the dispatcher, hourly):
  /// forgets replies reserved before SmtpSent::KeepSince(now, longest_window)
  /// and the per-recipient rows of smtp deliveries that ended.
  virtual util::Status HousekeepSmtp(TimePoint now, std::chrono::milliseconds longest_window) = 0;

  /// Test-only fault injection: called at named points inside write transactions
  /// ("commit_messages.inserted", "commit_messages.before_commit",
  /// "transaction.before_commit").
  virtual void SetFaultHookForTesting(std::function<void(std::string_view point)> hook) = 0;
  /// Test-only: statements this connection has prepared so far (each SQL
  /// text once, then reused: see StatementCache).
  virtual int64_t StatementsPreparedForTesting() const = 0;

 protected:
  Store() = default;
};

}  // namespace mailhook::store
