#pragma once
/// PgStore: the Store (store/store.h) in PostgreSQL over one PgConnection,
/// with the pg_*.h table classes sharing it: the twin of store::SqliteStore
/// for several replicas on one database (issue #11).
///
/// Fencing: a replica may write an account's events and watermark only while
/// it holds the account's lease (pg_leases.h). The store asks its FenceSource
/// for the account's Fence at each CommitMessages and checks it (CheckFence)
/// first inside the commit's transaction: a replica that lost the lease
/// (paused past the TTL, cut off) fails with store.fenced and writes nothing.
/// Without a FenceSource (one node on PostgreSQL) there is no check.
///
/// A broken connection (server restarted, network cut) stays broken: every
/// call fails with store.pg.connection (kBackoff); the owner throws the store
/// away and opens a new one (PgConnection's file comment).
///
/// Not thread-safe: one object per thread, as every Store.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pgstore/pg_attempts.h"
#include "pgstore/pg_bodies.h"
#include "pgstore/pg_connection.h"
#include "pgstore/pg_dead_letters.h"
#include "pgstore/pg_fingerprints.h"
#include "pgstore/pg_leases.h"
#include "pgstore/pg_outbox.h"
#include "pgstore/pg_post_actions.h"
#include "pgstore/pg_smtp_recipients.h"
#include "pgstore/pg_smtp_sent.h"
#include "pgstore/pg_watermarks.h"
#include "store/store.h"
#include "util/result.h"

namespace mailhook::pgstore {

/// The lease this replica holds on `account` now, as its lease keeper last
/// claimed or renewed it (PgLeases::Claim/Renew); nullopt when it holds none.
/// Called on the store's thread at every CommitMessages (before its
/// transaction begins), so it must be cheap and thread-safe against the
/// keeper that updates it (a copy under a mutex). A renewal keeps the
/// Fence (same owner and generation): only a takeover changes it.
/// A nullopt from a set FenceSource fails the commit with store.fenced: a
/// replica that holds no lease must not write, rather than write unchecked.
using FenceSource = std::function<std::optional<Fence>(const std::string& account)>;

/// How PgStore opens and whom it writes as.
struct PgStoreOptions {
  PgConnectOptions connect;
  /// This replica's uuid (PgLeases::replica_id()), written as the outbox's
  /// lease_owner; "" for none (one node).
  std::string replica_id;
  /// PgLeases' TTL (store.lease_ttl): a replica whose heartbeat is older is
  /// dead, and its outbox leases are free at once (PgOutbox).
  std::chrono::milliseconds replica_ttl = PgOutbox::kDefaultReplicaTtl;
  /// Unset: no fence check (one node). Set: every CommitMessages checks the
  /// account's Fence in its transaction (see FenceSource).
  FenceSource fences;
};

/// The PostgreSQL-backed state. Not thread-safe: one object per thread.
class PgStore final : public store::Store {
 public:
  /// Connects to `url` (postgresql://…, with its password), migrates the
  /// schema (MigratePg: once, under an advisory lock, whatever the number of
  /// replicas starting) and returns the store. Failures: PgConnection::Connect's
  /// and MigratePg's Errors; no message holds the password.
  static util::Result<std::unique_ptr<store::Store>> Open(const std::string& url, PgStoreOptions options);
  /// The same over an open connection (its session settings, e.g. a test's
  /// search_path, kept); `options.connect` is unused.
  static util::Result<std::unique_ptr<store::Store>> Open(std::unique_ptr<PgConnection> conn, PgStoreOptions options);

  /// The URL with its password replaced by <redacted> (pg_url.h).
  const std::string& path() const override { return conn_->redacted_url(); }
  /// The connection broke (PgConnection::broken): open a new store.
  bool broken() const override { return conn_->broken(); }

  store::Watermarks& watermarks() override { return watermarks_; }
  store::Attempts& attempts() override { return attempts_; }
  store::Outbox& outbox() override { return outbox_; }
  store::DeadLetters& dead_letters() override { return dead_letters_; }
  store::PostActions& post_actions() override { return post_actions_; }
  store::Bodies& bodies() override { return bodies_; }
  store::Fingerprints& fingerprints() override { return fingerprints_; }
  store::SmtpSent& smtp_sent() override { return smtp_sent_; }
  store::SmtpRecipients& smtp_recipients() override { return smtp_recipients_; }

  /// As Store's, with the account's fence checked first in the transaction
  /// when a FenceSource is set: store.fenced (kBackoff) and nothing
  /// written when this replica no longer holds the lease.
  using store::Store::CommitMessages;
  util::Status CommitMessages(const std::string& account, const std::string& folder,
                              std::optional<store::Watermark> new_mark, const std::vector<store::OutboxItem>& items,
                              const std::vector<store::PostAction>& post_actions,
                              const std::vector<store::Fingerprint>& fingerprints) override;
  util::Status Housekeep() override;
  util::Status HousekeepSmtp(store::TimePoint now, std::chrono::milliseconds longest_window) override;

  /// The same points as SqliteStore: "commit_messages.inserted",
  /// "commit_messages.before_commit" (CommitMessages) and
  /// "transaction.before_commit" (every PgConnection::InTransaction).
  void SetFaultHookForTesting(std::function<void(std::string_view point)> hook) override {
    conn_->SetFaultHookForTesting(std::move(hook));
  }
  /// Named statements prepared on this connection so far: each table class
  /// prepares a statement on its first use and reuses it (as SQLite's
  /// StatementCache), so repeating a call adds none.
  int64_t StatementsPreparedForTesting() const override { return conn_->prepared_count(); }

 private:
  PgStore(std::unique_ptr<PgConnection> conn, PgStoreOptions options);
  /// The Fence to check for `account` (nullopt: no FenceSource, no check), or
  /// store.fenced when the FenceSource has none for it.
  util::Result<std::optional<Fence>> FenceOf(const std::string& account);

  std::unique_ptr<PgConnection> conn_;
  FenceSource fences_;
  PgBodies bodies_;
  PgWatermarks watermarks_;
  PgAttempts attempts_;
  PgOutbox outbox_;
  PgDeadLetters dead_letters_;
  PgPostActions post_actions_;
  PgFingerprints fingerprints_;
  PgSmtpSent smtp_sent_;
  PgSmtpRecipients smtp_recipients_;
};

}  // namespace mailhook::pgstore
