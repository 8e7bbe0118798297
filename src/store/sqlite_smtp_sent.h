#pragma once
/// SqliteSmtpSent: SmtpSent (store/smtp_sent.h) over one SQLite connection (Db), with
/// its SQL; a second backend implements SmtpSent with its own.

#include "store/db.h"
#include "store/smtp_sent.h"

namespace mailhook::store {

/// The SQLite SmtpSent.
class SqliteSmtpSent final : public SmtpSent {
 public:
  explicit SqliteSmtpSent(Db& db) : db_(db) {}

  util::Result<ReplyReservation> ReserveReply(const SentReply& reply, ReplyLimit limit) override;
  util::Status ReleaseReply(const std::string& target, const std::string& event_id) override;
  util::Result<bool> AlreadyAnswered(const std::string& target, const std::string& message_id) override;
  util::Result<int64_t> SentSince(const std::string& target, const std::string& sender, TimePoint since) override;
  util::Status RecordSent(const SentReply& reply) override;
  util::Status PruneSentBefore(TimePoint before) override;

 private:
  Db& db_;
};

}  // namespace mailhook::store
