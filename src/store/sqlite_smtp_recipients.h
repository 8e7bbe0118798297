#pragma once
/// SqliteSmtpRecipients: SmtpRecipients (store/smtp_recipients.h) over one SQLite connection (Db), with
/// its SQL; a second backend implements SmtpRecipients with its own.

#include "store/db.h"
#include "store/smtp_recipients.h"

namespace mailhook::store {

/// The SQLite SmtpRecipients.
class SqliteSmtpRecipients final : public SmtpRecipients {
 public:
  explicit SqliteSmtpRecipients(Db& db) : db_(db) {}

  util::Result<std::vector<RecipientState>> ForEvent(const std::string& target, const std::string& event_id) override;
  util::Status Record(const std::string& target, const std::string& event_id,
                      const std::vector<RecipientState>& states) override;
  util::Status Forget(const std::string& target, const std::string& event_id) override;
  util::Status PruneEnded() override;

 private:
  Db& db_;
};

}  // namespace mailhook::store
