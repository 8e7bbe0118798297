#pragma once
/// PgSmtpRecipients: SmtpRecipients (store/smtp_recipients.h) over one
/// PgConnection, with its SQL against the schema of pg_schema.h. Not
/// thread-safe (the connection is not).

#include "pgstore/pg_connection.h"
#include "store/smtp_recipients.h"

namespace mailhook::pgstore {

/// The PostgreSQL SmtpRecipients.
class PgSmtpRecipients final : public store::SmtpRecipients {
 public:
  /// `conn` must outlive this and be migrated (MigratePg).
  explicit PgSmtpRecipients(PgConnection& conn) : conn_(conn) {}

  util::Result<std::vector<store::RecipientState>> ForEvent(const std::string& target,
                                                            const std::string& event_id) override;
  util::Status Record(const std::string& target, const std::string& event_id,
                      const std::vector<store::RecipientState>& states) override;
  util::Status Forget(const std::string& target, const std::string& event_id) override;
  util::Status PruneEnded() override;

 private:
  PgConnection& conn_;
};

}  // namespace mailhook::pgstore
