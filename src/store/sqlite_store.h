#pragma once
/// SqliteStore: the Store in one SQLite file over one connection (Db), with
/// the SQLite table classes (sqlite_*.h) sharing it.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "store/db.h"
#include "store/sqlite_attempts.h"
#include "store/sqlite_bodies.h"
#include "store/sqlite_dead_letters.h"
#include "store/sqlite_fingerprints.h"
#include "store/sqlite_outbox.h"
#include "store/sqlite_post_actions.h"
#include "store/sqlite_smtp_recipients.h"
#include "store/sqlite_smtp_sent.h"
#include "store/sqlite_watermarks.h"
#include "store/store.h"
#include "util/result.h"

namespace mailhook::store {

/// The SQLite-backed state. Not thread-safe: one object per thread.
class SqliteStore final : public Store {
 public:
  /// Opens the SQLite file at `path` (creating it and its directory `dir`,
  /// named `dir_name` in messages, when missing) and migrates the schema.
  /// Callers use OpenStore (open_store.h), which chooses the backend.
  static util::Result<std::unique_ptr<Store>> Open(const std::string& dir, const std::string& dir_name,
                                                   const std::string& path);

  const std::string& path() const override { return db_->path(); }
  bool broken() const override { return false; }

  Watermarks& watermarks() override { return watermarks_; }
  Attempts& attempts() override { return attempts_; }
  Outbox& outbox() override { return outbox_; }
  DeadLetters& dead_letters() override { return dead_letters_; }
  PostActions& post_actions() override { return post_actions_; }
  Bodies& bodies() override { return bodies_; }
  Fingerprints& fingerprints() override { return fingerprints_; }
  SmtpSent& smtp_sent() override { return smtp_sent_; }
  SmtpRecipients& smtp_recipients() override { return smtp_recipients_; }

  using Store::CommitMessages;
  util::Status CommitMessages(const std::string& account, const std::string& folder, std::optional<Watermark> new_mark,
                              const std::vector<OutboxItem>& items, const std::vector<PostAction>& post_actions,
                              const std::vector<Fingerprint>& fingerprints) override;
  util::Status Housekeep() override;
  util::Status HousekeepSmtp(TimePoint now, std::chrono::milliseconds longest_window) override;

  void SetFaultHookForTesting(std::function<void(std::string_view point)> hook) override {
    db_->SetFaultHookForTesting(std::move(hook));
  }
  int64_t StatementsPreparedForTesting() const override;

 private:
  explicit SqliteStore(std::unique_ptr<Db> db);

  std::unique_ptr<Db> db_;
  SqliteBodies bodies_;
  SqliteWatermarks watermarks_;
  SqliteAttempts attempts_;
  SqliteOutbox outbox_;
  SqliteDeadLetters dead_letters_;
  SqlitePostActions post_actions_;
  SqliteFingerprints fingerprints_;
  SqliteSmtpSent smtp_sent_;
  SqliteSmtpRecipients smtp_recipients_;
};

}  // namespace mailhook::store
