#include "pgstore/pg_store.h"

#include <utility>

#include "pgstore/pg_schema.h"

namespace mailhook::pgstore {
namespace {

using util::Error;
using util::Ok;
using util::Result;
using util::RetryClass;
using util::Status;

// (event_id, target) pairs delivered within this window are remembered so
// that a replayed CommitMessages does not send them again (as SqliteStore).
constexpr auto kPgDeliveredRetention = std::chrono::hours(7 * 24);

Error NoLeaseError(const std::string& account, const std::string& why) {
  return Error(util::ErrorKind::kStore, "store.fenced", RetryClass::kBackoff,
               "account " + account + ": " + why +
                   "; the write is rolled back, nothing was written. This replica stops the account's sessions and "
                   "the lease's holder goes on");
}

}  // namespace

PgStore::PgStore(std::unique_ptr<PgConnection> conn, PgStoreOptions options)
    : conn_(std::move(conn)),
      fences_(std::move(options.fences)),
      bodies_(*conn_),
      watermarks_(*conn_),
      attempts_(*conn_),
      outbox_(*conn_, bodies_, std::move(options.replica_id), options.replica_ttl),
      dead_letters_(*conn_, bodies_),
      post_actions_(*conn_),
      fingerprints_(*conn_),
      smtp_sent_(*conn_),
      smtp_recipients_(*conn_) {}

Result<std::unique_ptr<store::Store>> PgStore::Open(const std::string& url, PgStoreOptions options) {
  auto conn = PgConnection::Connect(url, options.connect);
  if (!conn) return conn.error();
  return Open(std::move(conn).value(), std::move(options));
}

Result<std::unique_ptr<store::Store>> PgStore::Open(std::unique_ptr<PgConnection> conn, PgStoreOptions options) {
  if (auto s = MigratePg(*conn); !s) return s.error();
  return std::unique_ptr<store::Store>(new PgStore(std::move(conn), std::move(options)));
}

Result<std::optional<Fence>> PgStore::FenceOf(const std::string& account) {
  if (!fences_) return std::optional<Fence>();  // one node: nobody else writes
  std::optional<Fence> fence = fences_(account);
  if (!fence) return NoLeaseError(account, "this replica holds no lease on the account");
  if (fence->account != account) {
    return NoLeaseError(account, "the fence given is account " + fence->account + "'s (a bug in mailhook: report it)");
  }
  return fence;
}

Status PgStore::CommitMessages(const std::string& account, const std::string& folder,
                               std::optional<store::Watermark> new_mark, const std::vector<store::OutboxItem>& items,
                               const std::vector<store::PostAction>& post_actions,
                               const std::vector<store::Fingerprint>& fingerprints) {
  // Asked before BEGIN: the source may take its keeper's mutex, and the
  // transaction (holding the lease row) stays short.
  auto fence = FenceOf(account);
  if (!fence) return fence.error();
  return conn_->InTransaction([&]() -> Status {
    // First: the lease row locked FOR SHARE makes a takeover wait for this
    // commit, so the old owner's last commit precedes it or fails here.
    if (*fence) {
      if (auto s = CheckFence(*conn_, **fence); !s) return s;
    }
    if (auto s = outbox_.Add(items); !s) return s;
    conn_->Fault("commit_messages.inserted");
    if (auto s = post_actions_.Add(post_actions); !s) return s;
    if (auto s = fingerprints_.Add(account, folder, fingerprints); !s) return s;
    // What is durable now needs no attempt count any more.
    std::vector<uint32_t> uids;
    uids.reserve(items.size());
    for (const auto& item : items) uids.push_back(item.uid);
    if (auto s = attempts_.Forget(account, folder, uids); !s) return s;
    if (new_mark) {
      if (auto s = watermarks_.Set(account, folder, *new_mark); !s) return s;
      if (auto s = attempts_.ForgetBelow(account, folder, *new_mark); !s) return s;
    }
    conn_->Fault("commit_messages.before_commit");
    return Ok();
  });
}

Status PgStore::Housekeep() {
  // Safe beside other replicas' commits: a payload whose row is not
  // committed yet is not visible here (READ COMMITTED), so not an orphan.
  return conn_->InTransaction([&]() -> Status {
    if (auto s = outbox_.PruneDelivered(store::Clock::now() - kPgDeliveredRetention); !s) return s;
    return bodies_.DeleteOrphans();
  });
}

Status PgStore::HousekeepSmtp(store::TimePoint now, std::chrono::milliseconds longest_window) {
  if (auto s = smtp_sent_.PruneSentBefore(store::SmtpSent::KeepSince(now, longest_window)); !s) return s;
  return smtp_recipients_.PruneEnded();
}

}  // namespace mailhook::pgstore
