#pragma once
/// PgSmtpSent: SmtpSent (store/smtp_sent.h) over one PgConnection, with its
/// SQL against the schema of pg_schema.h. ReserveReply's check and record
/// run under a transaction-scoped advisory lock on (target, sender): SQLite
/// serialises write transactions, PostgreSQL's READ COMMITTED does not, and
/// two replicas' workers must not both pass a sender's limit.
/// Not thread-safe (the connection is not).

#include "pgstore/pg_connection.h"
#include "store/smtp_sent.h"

namespace mailhook::pgstore {

/// The PostgreSQL SmtpSent.
class PgSmtpSent final : public store::SmtpSent {
 public:
  /// `conn` must outlive this and be migrated (MigratePg).
  explicit PgSmtpSent(PgConnection& conn) : conn_(conn) {}

  util::Result<store::ReplyReservation> ReserveReply(const store::SentReply& reply, store::ReplyLimit limit) override;
  util::Status ReleaseReply(const std::string& target, const std::string& event_id) override;
  util::Result<bool> AlreadyAnswered(const std::string& target, const std::string& message_id) override;
  util::Result<int64_t> SentSince(const std::string& target, const std::string& sender,
                                  store::TimePoint since) override;
  util::Status RecordSent(const store::SentReply& reply) override;
  util::Status PruneSentBefore(store::TimePoint before) override;

 private:
  /// ReserveReply's checks in their order, inside its transaction.
  util::Result<store::ReplyReservation> Decide(const store::SentReply& reply, const std::string& sender,
                                               store::ReplyLimit limit);

  PgConnection& conn_;
};

}  // namespace mailhook::pgstore
