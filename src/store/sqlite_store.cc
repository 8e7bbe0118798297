#include "store/sqlite_store.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "store/schema.h"
#include "store/statement_cache.h"

namespace mailhook::store {
namespace {

using util::Error;
using util::Ok;
using util::Result;
using util::RetryClass;
using util::Status;

// (event_id, target) pairs delivered within this window are remembered so that a
// replayed CommitMessages does not send them again.
constexpr auto kDeliveredRetention = std::chrono::hours(7 * 24);

// Creates the database's directory (state_dir, or the directory of a
// `sqlite:PATH` url: `what` names it for messages) 0700 when missing and
// checks that it is writable.
Status PrepareStateDir(const std::string& state_dir, const std::string& what) {
  // The state holds whole events (mail bodies, attachments): state_dir is
  // made 0700 and the database files 0600, whatever the umask. mkdir's mode
  // is applied at creation, so the directory is never open in between.
  std::error_code ec;
  std::filesystem::path dir(state_dir);
  if (!dir.has_filename()) dir = dir.parent_path();  // "a/b/" is "a/b"
  if (dir.has_parent_path()) std::filesystem::create_directories(dir.parent_path(), ec);
  if (!ec && ::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    ec = std::error_code(errno, std::generic_category());
  }
  if (ec) {
    return StoreError("store.mkdir", RetryClass::kNeedsOperator,
                      "cannot create " + what + " " + state_dir + ": " + ec.message() + "; create it or point " + what +
                          " at a writable directory");
  }
  // WAL needs to create -wal and -shm files beside the database, so the directory
  // itself must be writable, not just the file. Checking here gives a clearer
  // message than SQLite's "unable to open database file".
  if (access(state_dir.c_str(), W_OK | X_OK) != 0) {
    int err = errno;
    return StoreError("store.readonly", RetryClass::kNeedsOperator,
                      what + " " + state_dir + " is not writable (" + std::strerror(err) +
                          "); make it writable by uid " + std::to_string(geteuid()) +
                          " (e.g. a writable volume) or point " + what + " elsewhere");
  }
  return Ok();
}

}  // namespace

SqliteStore::SqliteStore(std::unique_ptr<Db> db)
    : db_(std::move(db)),
      bodies_(*db_),
      watermarks_(*db_),
      attempts_(*db_),
      outbox_(*db_, bodies_, SqliteLeases::ForFile(db_->path())),
      dead_letters_(*db_, bodies_),
      post_actions_(*db_),
      fingerprints_(*db_),
      smtp_sent_(*db_),
      smtp_recipients_(*db_) {}

Result<std::unique_ptr<Store>> SqliteStore::Open(const std::string& dir, const std::string& dir_name,
                                                 const std::string& path) {
  if (auto s = PrepareStateDir(dir, dir_name); !s) return s.error();
  auto db = Db::Open(path);
  if (!db.ok()) return db.error();
  if (auto s = Migrate(**db); !s) return s.error();
  return std::unique_ptr<Store>(new SqliteStore(std::move(*db)));
}

Status SqliteStore::CommitMessages(const std::string& account, const std::string& folder,
                                   std::optional<Watermark> new_mark, const std::vector<OutboxItem>& items,
                                   const std::vector<PostAction>& post_actions,
                                   const std::vector<Fingerprint>& fingerprints) {
  return db_->InTransaction([&]() -> Status {
    if (auto s = outbox_.Add(items); !s) return s;
    db_->Fault("commit_messages.inserted");
    if (auto s = post_actions_.Add(post_actions); !s) return s;
    if (auto s = fingerprints_.Add(account, folder, fingerprints); !s) return s;
    // What is durable now needs no attempt count any more.
    std::vector<uint32_t> uids;
    for (const auto& item : items) uids.push_back(item.uid);
    if (auto s = attempts_.Forget(account, folder, uids); !s) return s;
    if (new_mark) {
      if (auto s = watermarks_.Set(account, folder, *new_mark); !s) return s;
      if (auto s = attempts_.ForgetBelow(account, folder, *new_mark); !s) return s;
    }
    db_->Fault("commit_messages.before_commit");
    return Ok();
  });
}

int64_t SqliteStore::StatementsPreparedForTesting() const { return db_->statements().prepares(); }

Status SqliteStore::Housekeep() {
  return db_->InTransaction([&]() -> Status {
    if (auto s = outbox_.PruneDelivered(Clock::now() - kDeliveredRetention); !s) return s;
    return bodies_.DeleteOrphans();
  });
}

Status SqliteStore::HousekeepSmtp(TimePoint now, std::chrono::milliseconds longest_window) {
  if (auto s = smtp_sent_.PruneSentBefore(SmtpSent::KeepSince(now, longest_window)); !s) return s;
  return smtp_recipients_.PruneEnded();
}

}  // namespace mailhook::store
