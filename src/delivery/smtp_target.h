#pragma once
/// SmtpTarget: sends a mail for each outbox row of an `smtp:` target
/// (CONTRACT.md Additions): `mode: reply` answers the message's sender,
/// threaded (In-Reply-To, References), `mode: forward` sends to the
/// configured addresses, with `attach_original` the original attached as
/// message/rfc822 (from the stored event's "original_rfc822"; one that
/// message/rfc822 cannot carry goes as the base64 file original.eml, one too
/// large to store is left out; the forward says so: never a lost forward). The outgoing message is built by
/// mime::BuildMessage from the target's templates filled with the event (util::MailTemplate) and sent by smtp::SendMail
/// over the verified transport.
///
/// Replies are automatic responses (RFC 3834): before anything is sent the
/// loop rules (loop_guard.h) and the per-sender rate limit are checked; a
/// skipped reply is a success (logged at info as `smtp.skipped` with the rule,
/// counted in mailhook_smtp_skipped_total{smtp,rule}), never retried.
///
/// Outcomes: sent → success; 4xx, network and TLS network errors → retry on
/// the schedule; bad credentials and other operator errors → retry no sooner
/// than kOperatorRetry (one clear error, no hot loop); 5xx → permanent (dead
/// letter with the server's text). Thread-safe: Deliver may run on several
/// dispatcher workers at once. Never throws.
///
/// Several recipients: each one's fate is recorded in the ledger when it is
/// final (sent, or refused with a 5yz) before Deliver returns. A recipient
/// deferred (4yz) while others took the message makes the delivery a retry,
/// and the retry sends the same bytes (same Message-ID) to the recipients
/// not yet done only. When only 5yz-refused recipients are left the delivery
/// ends: success if anyone got the message, else a dead letter with the
/// servers' texts. A retry's error names the recipients still missing, so
/// the dead letter of exhausted retries does too.

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>
#include "config/config.h"
#include "delivery/oauth2_token_cache.h"
#include "delivery/target.h"
#include "mime/mail_builder.h"
#include "smtp/smtp_client.h"
#include "util/mail_template.h"

#include "store/open_store.h"
#include "store/smtp_sent.h"
#include "util/mutex.h"
#include "util/result.h"
#include "util/secret.h"
#include "util/thread_annotations.h"

namespace mailhook::delivery {

/// What sending one message came to (smtp::SendOutcome without the transport).
struct SendReport {
  enum class Kind { kSent, kRetry, kNeedsOperator, kPermanent };
  /// What became of one recipient.
  struct Recipient {
    std::string address;       ///< as passed to the sender
    Kind kind = Kind::kRetry;  ///< kSent: the message was taken for it (only when the report's kind is kSent)
    std::string reply;         ///< the server's reply ("451 4.2.1 try later")
  };
  Kind kind = Kind::kRetry;
  std::string error;  ///< cause and fix; empty when sent to everyone
  /// One per RCPT TO the server answered, in order. Empty: every recipient
  /// shares `kind` (a failure before RCPT, or a fake).
  std::vector<Recipient> recipients;
  /// kPermanent because of the message's size (over EHLO SIZE, or 552 /
  /// 5.3.4 / 5.2.3): a forward then goes again without its original.
  bool too_large = false;
  /// kPermanent, nothing sent: 8-bit data for a server without 8BITMIME; a
  /// forward then attaches its original as the base64 file original.eml.
  bool needs_seven_bit = false;
};

/// Sends one built message, giving up by `deadline` (one delivery attempt
/// may send twice or three times: the fallbacks of a forward's original).
/// Production: smtp::SendMail with the target's server settings; unit
/// tests: a fake.
using MailSender = std::function<SendReport(
    const std::string& envelope_from, const std::vector<std::string>& recipients, std::string_view message,
    std::chrono::steady_clock::time_point deadline, const util::CancelToken& cancel)>;

/// Where each send's AUTH secret comes from: the password (or an access
/// token from oauth2.token*) resolved once, or the OAuth2 refresh flow's
/// current access token. `stop_fd` (readable when the dispatcher stops) ends
/// a token request in flight. A failure becomes the send's outcome by its
/// RetryClass (kNeedsOperator: operator error; else retry); nothing is sent.
using SecretSource = std::function<util::Result<util::Secret>(int stop_fd)>;
/// Told the secret the server refused at AUTH (535, or 5.7.8 bad
/// credentials), so a token cache forgets it and the next send refreshes.
using SecretRefused = std::function<void(const util::Secret& refused)>;

/// The target's submission options (host, TLS, AUTH, timeout, EHLO name),
/// without a secret or stop fd: what each send and `check --connect` use.
smtp::SmtpOptions SubmissionOptions(const config::SmtpTarget& target);

/// The production MailSender: smtp::SendMail to the target's submission
/// server with the secret `source` gives for each send.
MailSender SubmissionSender(const config::SmtpTarget& target, SecretSource source, SecretRefused refused = {});
/// The same with the target's password (or access token) source, resolved
/// before each send: a token command gives a fresh token, a rotated file is
/// read again (as an account does before each login).
MailSender SubmissionSender(const config::SmtpTarget& target);
/// The same with the refresh flow (`oauth2:` with token_url): the cache's
/// token for each send; a token the server refuses is rejected in the cache,
/// so the next send refreshes it (once).
MailSender SubmissionSender(const config::SmtpTarget& target, std::shared_ptr<OAuth2TokenCache> tokens);

/// Remembers the replies a target sent, for the "already answered" rule and
/// the per-sender rate limit, and per recipient how far each delivery got
/// (replies and forwards). Production: the state store (smtp_sent and
/// smtp_recipients tables).
class ReplyLedger {
 public:
  virtual ~ReplyLedger() = default;
  /// Decides and, when kReserved, records the reply in one step. A retry of
  /// the same event is kReserved (its own earlier reservation does not count).
  virtual util::Result<store::ReplyReservation> Reserve(const store::SentReply& reply, store::ReplyLimit limit) = 0;
  /// Forgets the reservation of an event whose reply can never go out.
  virtual util::Status Release(const std::string& target, const std::string& event_id) = 0;
  /// The recipients of (target, event) whose fate is final: sent, or refused
  /// with a 5yz (store::SmtpRecipients). The others are still to be sent.
  virtual util::Result<std::vector<store::RecipientState>> Recipients(const std::string& target,
                                                                      const std::string& event_id) = 0;
  /// Records final states, durably, before Deliver returns.
  virtual util::Status RecordRecipients(const std::string& target, const std::string& event_id,
                                        const std::vector<store::RecipientState>& states) = 0;
  /// Forgets them (nobody got the message: a replay tries everyone again).
  virtual util::Status ForgetRecipients(const std::string& target, const std::string& event_id) = 0;
};

/// The ledger in the state store (store::SmtpSent), on a connection of its
/// own opened at first use; calls are serialised.
std::shared_ptr<ReplyLedger> StoreReplyLedger(store::StoreOpener open);

/// One smtp target from the config.
class SmtpTarget : public Target {
 public:
  /// An operator error (bad credentials, TLS not verifiable) is retried no
  /// sooner than this, whatever the schedule says.
  static constexpr std::chrono::minutes kOperatorRetry{30};

  /// Compiles the templates (an unknown field is an error naming it).
  static util::Result<std::unique_ptr<SmtpTarget>> Create(const config::SmtpTarget& target, MailSender sender,
                                                          std::shared_ptr<ReplyLedger> ledger,
                                                          std::function<void(std::string_view rule)> on_skip = {});

  Outcome Deliver(const store::Delivery& delivery, const util::CancelToken& cancel) override;

 private:
  struct Templates {
    std::optional<util::MailTemplate> subject, text, html;
    std::vector<util::MailTemplate> to, cc;
  };
  SmtpTarget(config::SmtpTarget target, Templates templates, MailSender sender, std::shared_ptr<ReplyLedger> ledger,
             std::function<void(std::string_view)> on_skip);

  /// Reply mode: whom to answer, or the loop rule that says not to ("" then
  /// `skip` names it); the reply is reserved in the ledger.
  util::Result<std::string> ReplyRecipient(const std::string& payload, const std::string& event_id,
                                           std::string& skip) const;
  /// Forward mode: `skip` names the rule when the message is our own.
  util::Result<std::string> ForwardCheck(const std::string& payload, std::string& skip) const;
  /// Builds and sends the mail.
  Outcome Send(const nlohmann::json& event, const std::string& event_id, const std::string& reply_to,
               std::chrono::system_clock::time_point created, const util::CancelToken& cancel);
  /// The recipients (envelope) and the mail's To, Cc and threading.
  util::Result<std::vector<std::string>> Address(const nlohmann::json& event, const std::string& reply_to,
                                                 mime::OutgoingMail& mail) const;
  /// The text and html bodies as the templates rendered them, before any note.
  struct Bodies {
    std::optional<std::string> text, html;
  };
  /// The rest of the mail from the templates, built (mime::BuildMessage);
  /// `rendered` gets the bodies before a note about the original is added.
  util::Result<std::string> Compose(const nlohmann::json& event, const std::string& event_id, mime::OutgoingMail& mail,
                                    Bodies& rendered) const;
  /// attach_original: sets mail.attached_message from the event's
  /// "original_rfc822"; else returns why not ("too_large": null, over
  /// mime::kMaxOriginalBytes; "unreadable": null with "original_omitted"
  /// saying so, the server would not send it; "not_stored": absent, queued
  /// before the setting) and the forward goes out inline with OmittedNote.
  static std::string AttachOriginal(const nlohmann::json& event, mime::OutgoingMail& mail);
  /// The sentence a forward carries when its original is missing, for
  /// `reason` (AttachOriginal's), or attached as a file ("unsafe": refused
  /// as message/rfc822 by the builder).
  static std::string OmittedNote(const std::string& reason, const nlohmann::json& event);
  /// Appends `note` to the text and html bodies.
  static void AddNote(const std::string& note, mime::OutgoingMail& mail);
  /// After a permanent refusal of a forward with its original: the message
  /// again with the original as a base64 file (8-bit data for a server
  /// without 8BITMIME), else without it (the server's size limit), each with
  /// a note; nullopt when neither applies.
  std::optional<util::Result<std::string>> RebuildForServer(const SendReport& report, const Bodies& rendered,
                                                            const std::string& event_id,
                                                            mime::OutgoingMail& mail) const;
  /// True when a recipient of this event is recorded as sent (or the
  /// record cannot be read).
  bool AnyoneGotIt(const std::string& event_id) const;
  Outcome Skip(std::string_view rule, const std::string& event_id) const;
  /// While an operator error holds the target (kOperatorRetry after it), the
  /// outcome every delivery gets without connecting.
  std::optional<Outcome> OperatorHold() EXCLUDES(mu_);
  Outcome FromReport(const SendReport& report) EXCLUDES(mu_);
  /// Records what this attempt settled per recipient and decides the outcome.
  Outcome Settle(const SendReport& report, const std::vector<std::string>& pending,
                 const std::vector<store::RecipientState>& done, const std::string& event_id) EXCLUDES(mu_);

  const config::SmtpTarget target_;
  const std::string id_;  ///< "smtp:<name>", as stored
  const Templates templates_;
  const MailSender sender_;
  const std::shared_ptr<ReplyLedger> ledger_;
  const std::function<void(std::string_view)> on_skip_;
  util::Mutex mu_;
  std::chrono::steady_clock::time_point hold_until_ GUARDED_BY(mu_);
  std::string hold_error_ GUARDED_BY(mu_);
};

}  // namespace mailhook::delivery
