#include "delivery/smtp_target.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "delivery/loop_guard.h"
#include "mime/event.h"
#include "mime/mail_builder.h"
#include "smtp/helo_name.h"
#include "smtp/smtp_client.h"
#include "store/open_store.h"
#include "store/store.h"
#include "util/base64.h"
#include "util/log.h"
#include "util/mutex.h"
#include "util/strings.h"
#include "util/target_id.h"

namespace mailhook::delivery {
namespace {

using nlohmann::json;
using util::Error;
using util::RetryClass;

std::string StringAt(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::vector<std::string> Strings(const json& j, const char* key) {
  std::vector<std::string> out;
  auto it = j.find(key);
  if (it == j.end() || !it->is_array()) return out;
  for (const json& s : *it) {
    if (s.is_string()) out.push_back(s.get<std::string>());
  }
  return out;
}

// A rendered address list ("a@b, Name <c@d>"): the header's addresses
// (names kept) and the envelope's (IDNA A-labels).
util::Status AddRecipients(const std::string& rendered, std::vector<mime::MailAddress>& header,
                           std::vector<std::string>& envelope) {
  for (const mime::Address& a : mime::ParseAddressList(rendered)) {
    if (a.address.empty()) continue;
    auto address = mime::EnvelopeAddress(a.address);
    if (!address.ok()) return address.error();
    header.push_back({a.name, a.address});
    envelope.push_back(std::move(*address));
  }
  return util::Ok();
}

Outcome Permanent(std::string why) { return Outcome{OutcomeKind::kPermanent, 0, std::nullopt, std::move(why), false}; }

// The display name the answered address has in the message: its From
// entry (decoded by mime), else the Sender header's; "" when it has none.
std::string SenderName(const json& event, const std::string& address) {
  const json& message = *event.find("message");
  if (auto from = message.find("from"); from != message.end() && from->is_array()) {
    for (const json& a : *from) {
      if (a.is_object() && util::Lower(StringAt(a, "address")) == util::Lower(address)) return StringAt(a, "name");
    }
  }
  if (auto h = event.find("auto_reply_headers"); h != event.end() && h->is_object()) {
    for (const mime::Address& a : mime::ParseAddressList(StringAt(*h, "sender"))) {
      if (util::Lower(a.address) == util::Lower(address)) return a.name;
    }
  }
  return "";
}

const store::RecipientState* FindState(const std::vector<store::RecipientState>& states, const std::string& to) {
  for (const auto& r : states) {
    if (r.recipient == to) return &r;
  }
  return nullptr;
}

std::string Join(const std::vector<std::string>& parts) {
  std::string out;
  for (const std::string& p : parts) out += (out.empty() ? "" : ", ") + p;
  return out;
}

// What one attempt settled per recipient.
struct Attempted {
  std::vector<store::RecipientState> settled;  ///< final now: sent, or refused with a 5yz
  std::vector<std::string> deferred;  ///< still to send (4yz, or the attempt failed before them): "addr (reply)"
};

Attempted Classify(const SendReport& report, const std::vector<std::string>& pending,
                   std::chrono::system_clock::time_point now) {
  using Kind = SendReport::Kind;
  using Status = store::RecipientState::Status;
  Attempted a;
  for (const std::string& to : pending) {
    auto it = std::find_if(report.recipients.begin(), report.recipients.end(),
                           [&](const SendReport::Recipient& r) { return r.address == to; });
    const SendReport::Recipient* r = it == report.recipients.end() ? nullptr : &*it;
    // An accepted RCPT means sent only when the message itself was taken.
    if (report.kind == Kind::kSent && (r == nullptr || r->kind == Kind::kSent)) {
      a.settled.push_back({to, Status::kSent, r ? r->reply : "", now});
    } else if (r != nullptr && r->kind == Kind::kPermanent) {
      a.settled.push_back({to, Status::kRefused, r->reply, now});
    } else if (r == nullptr && report.kind == Kind::kPermanent && report.recipients.empty()) {
      a.settled.push_back({to, Status::kRefused, report.error, now});  // the message itself was refused
    } else {
      a.deferred.push_back(r != nullptr && !r->reply.empty() ? to + " (" + r->reply + ")" : to);
    }
  }
  return a;
}

}  // namespace

util::Result<std::unique_ptr<SmtpTarget>> SmtpTarget::Create(const config::SmtpTarget& target, MailSender sender,
                                                             std::shared_ptr<ReplyLedger> ledger,
                                                             std::function<void(std::string_view)> on_skip) {
  const std::string where = "smtp." + target.name;
  auto compile = [&](const std::string& source, util::MailTemplate::Escape escape,
                     const std::string& key) -> util::Result<util::MailTemplate> {
    auto t = util::MailTemplate::Compile(source, escape);
    if (!t.ok()) return t.error().WithMessage(where + "." + key + ": " + t.error().message());
    return t;
  };
  Templates t;
  auto subject = compile(target.subject, util::MailTemplate::Escape::kHeader, "subject");
  if (!subject.ok()) return subject.error();
  t.subject = std::move(*subject);
  if (target.text) {
    auto text = compile(*target.text, util::MailTemplate::Escape::kText, "text");
    if (!text.ok()) return text.error();
    t.text = std::move(*text);
  }
  if (target.html) {
    auto html = compile(*target.html, util::MailTemplate::Escape::kHtml, "html");
    if (!html.ok()) return html.error();
    t.html = std::move(*html);
  }
  for (const auto& [list, into, key] : {std::tuple{&target.to, &t.to, "to"}, std::tuple{&target.cc, &t.cc, "cc"}}) {
    for (const std::string& source : *list) {
      auto address = util::MailTemplate::CompileAddresses(source);
      if (!address.ok()) return address.error().WithMessage(where + "." + key + ": " + address.error().message());
      into->push_back(std::move(*address));
    }
  }
  return std::unique_ptr<SmtpTarget>(
      new SmtpTarget(target, std::move(t), std::move(sender), std::move(ledger), std::move(on_skip)));
}

SmtpTarget::SmtpTarget(config::SmtpTarget target, Templates templates, MailSender sender,
                       std::shared_ptr<ReplyLedger> ledger, std::function<void(std::string_view)> on_skip)
    : target_(std::move(target)),
      id_(util::TargetId::Smtp(target_.name).ToString()),
      templates_(std::move(templates)),
      sender_(std::move(sender)),
      ledger_(std::move(ledger)),
      on_skip_(std::move(on_skip)) {}

util::Result<std::string> SmtpTarget::ReplyRecipient(const std::string& payload, const std::string& event_id,
                                                     std::string& skip) const {
  const LoopFacts facts = LoopFactsFromEventJson(payload);
  if (auto rule = StaticSkipRule(facts, target_.from.address)) {
    skip = std::string(RuleName(*rule));
    return std::string();
  }
  auto verdict = ledger_->Reserve(
      store::SentReply{id_, facts.sender_address, facts.message_id, event_id, std::chrono::system_clock::now()},
      store::ReplyLimit{target_.rate_limit.per_sender, target_.rate_limit.window});
  if (!verdict.ok()) return verdict.error();
  if (*verdict == store::ReplyReservation::kAlreadyAnswered) skip = RuleName(SkipRule::kAlreadyAnswered);
  if (*verdict == store::ReplyReservation::kRateLimited) skip = RuleName(SkipRule::kRateLimited);
  return facts.sender_address;
}

Outcome SmtpTarget::Skip(std::string_view rule, const std::string& event_id) const {
  util::Log(util::Area::kDelivery)
      .info("smtp.skipped target={} event={} rule={} note=\"no automatic reply (RFC 3834)\"", target_.name, event_id,
            rule);
  if (on_skip_) on_skip_(rule);
  return Outcome{OutcomeKind::kSuccess, 0, std::nullopt, "", false};
}

Outcome SmtpTarget::FromReport(const SendReport& report) {
  Outcome out;
  out.error = report.error;
  for (const SendReport::Recipient& r : report.recipients) {
    if (r.kind == SendReport::Kind::kSent) continue;
    std::string refused = r.address + ": " + r.reply;
    std::replace(refused.begin(), refused.end(), '"', '\'');  // the server's text: no fake log fields
    util::Log(util::Area::kDelivery).warn("smtp.recipient_refused target={} reply=\"{}\"", target_.name, refused);
  }
  switch (report.kind) {
    case SendReport::Kind::kSent: out.kind = OutcomeKind::kSuccess; break;
    case SendReport::Kind::kRetry: out.kind = OutcomeKind::kRetry; break;
    case SendReport::Kind::kNeedsOperator: {
      out.kind = OutcomeKind::kRetry;
      out.retry_after = kOperatorRetry;
      util::MutexLock lock(mu_);
      hold_until_ = std::chrono::steady_clock::now() + kOperatorRetry;
      hold_error_ = report.error;
      break;
    }
    case SendReport::Kind::kPermanent: out.kind = OutcomeKind::kPermanent; break;
  }
  return out;
}

util::Result<std::vector<std::string>> SmtpTarget::Address(const json& event, const std::string& reply_to,
                                                           mime::OutgoingMail& mail) const {
  std::vector<std::string> envelope;
  if (target_.mode == config::SmtpMode::kReply) {
    if (auto s = AddRecipients(reply_to, mail.to, envelope); !s.ok()) return s.error();
    const json& message = *event.find("message");
    // "To: Bob Example <bob@…>", as a person's reply would be; the builder
    // encodes (RFC 2047) or quotes the name. The envelope keeps the address.
    if (!mail.to.empty()) mail.to.back().name = SenderName(event, reply_to);
    const std::string message_id = StringAt(message, "message_id");
    mime::ReplyThreading thread =
        mime::ThreadReply(message_id.empty() ? std::nullopt : std::optional<std::string>(message_id),
                          Strings(message, "references"), Strings(message, "in_reply_to"));
    mail.in_reply_to = std::move(thread.in_reply_to);
    mail.references = std::move(thread.references);
    mail.auto_submitted = "auto-replied";
  } else {
    for (const util::MailTemplate& t : templates_.to) {
      if (auto s = AddRecipients(t.Render(event), mail.to, envelope); !s.ok()) return s.error();
    }
    mail.auto_submitted = "auto-generated";
  }
  for (const util::MailTemplate& t : templates_.cc) {
    if (auto s = AddRecipients(t.Render(event), mail.cc, envelope); !s.ok()) return s.error();
  }
  if (envelope.empty()) {
    return Error("smtp.no_recipient", RetryClass::kNeedsOperator,
                 "smtp." + target_.name + ": no recipient: the `to` and `cc` templates rendered empty");
  }
  return envelope;
}

util::Result<std::string> SmtpTarget::Compose(const json& event, const std::string& event_id, mime::OutgoingMail& mail,
                                              Bodies& rendered) const {
  mail.from = {target_.from.name, target_.from.address};
  mail.subject = templates_.subject->Render(event);
  if (target_.mode == config::SmtpMode::kReply && mail.subject.starts_with("Re: ")) {
    mail.subject = mime::ReplySubject(mail.subject.substr(4));  // "Re: Re: x" → "Re: x"
  }
  if (templates_.text) mail.text = templates_.text->Render(event);
  if (templates_.html) mail.html = templates_.html->Render(event);
  rendered = {mail.text, mail.html};
  // The outbox row's time, not now: every attempt sends the same bytes.
  if (mail.date == std::chrono::system_clock::time_point{}) mail.date = std::chrono::system_clock::now();
  const std::string& from = target_.from.address;
  // The same Message-ID (and bytes) on every retry of this event.
  mail.message_id = mime::MakeMessageId(event_id + "\n" + target_.name, from.substr(from.rfind('@') + 1));
  if (target_.mode != config::SmtpMode::kForward || !target_.attach_original) return mime::BuildMessage(mail);
  const std::string omitted = AttachOriginal(event, mail);
  if (omitted.empty()) {
    auto built = mime::BuildMessage(mail);
    if (built.ok() || built.error().code() != "mail.attach_unsafe") return built;
    // A line over 998 octets or a NUL: message/rfc822 cannot carry it, a
    // base64 file can, byte for byte. The same choice on every retry.
    util::Log(util::Area::kDelivery)
        .info("smtp.original_as_file target={} event={} reason=unsafe_for_message_rfc822", target_.name, event_id);
    AddNote(OmittedNote("unsafe", event), mail);
    mail.unsafe_original_as_file = true;
    return mime::BuildMessage(mail);
  }
  // Never a lost forward: it goes out without the original, saying why.
  const std::string note = OmittedNote(omitted, event);
  util::Log(util::Area::kDelivery)
      .warn("smtp.original_omitted target={} event={} reason={} note=\"{}\"", target_.name, event_id, omitted, note);
  AddNote(note, mail);
  return mime::BuildMessage(mail);
}

void SmtpTarget::AddNote(const std::string& note, mime::OutgoingMail& mail) {
  // Our own sentence (no markup to escape), after what the templates wrote.
  if (mail.text) *mail.text += "\n\n[" + note + "]\n";
  if (mail.html) *mail.html += "\n<p>[" + note + "]</p>\n";
}

std::string SmtpTarget::AttachOriginal(const json& event, mime::OutgoingMail& mail) {
  auto it = event.find("original_rfc822");
  if (it == event.end()) return "not_stored";
  if (!it->is_string()) {
    // Null: over the limit, unless the watcher stored another reason.
    auto why = event.find("original_omitted");
    return why != event.end() && *why == "unreadable" ? "unreadable" : "too_large";
  }
  auto raw = util::Base64DecodeStrict(it->get_ref<const std::string&>());
  if (!raw) return "not_stored";  // cannot happen: the watcher encoded it
  mail.attached_message = std::move(*raw);
  return "";
}

std::string SmtpTarget::OmittedNote(const std::string& reason, const json& event) {
  if (reason == "too_large") {
    uint64_t size = 0;
    if (auto m = event.find("message"); m != event.end() && m->contains("size") && (*m)["size"].is_number_unsigned()) {
      size = (*m)["size"].get<uint64_t>();
    }
    const uint64_t mib = (size + (1 << 20) - 1) >> 20;
    return "the original (" + std::to_string(mib) + " MiB) was too large to attach (over " +
           std::to_string(mime::kMaxOriginalBytes >> 20) + " MiB)";
  }
  if (reason == "unreadable") {
    return "the original could not be attached: the mail server would not send its bytes (the daemon's log has "
           "imap.original_unreadable with the server's answer)";
  }
  if (reason == "unsafe") {
    return "the original is attached as the file original.eml: it has a line over 998 octets or a NUL byte, "
           "which an attached message (message/rfc822) cannot carry";
  }
  return "the original was not stored with this message (it arrived before attach_original was set)";
}

Outcome SmtpTarget::Deliver(const store::Delivery& delivery, const util::CancelToken& cancel) {
  if (cancel.cancelled()) return Outcome{OutcomeKind::kRetry, 0, std::nullopt, "", true};
  const std::string& event_id = delivery.item.event_id;
  const json event = json::parse(delivery.item.payload, nullptr, false);
  // Only a received message is answered or forwarded: a message.unprocessable
  // event carries no auto-reply headers, so the loop rules could not judge it.
  if (event.is_discarded() || !event.is_object() || StringAt(event, "type") != "message.received" ||
      !event.contains("message") || !event.find("message")->is_object() || !event.contains("auto_reply_headers")) {
    return Skip("not_a_received_message", event_id);
  }
  if (auto held = OperatorHold()) return *held;
  const bool reply = target_.mode == config::SmtpMode::kReply;
  std::string skip;
  auto to = reply ? ReplyRecipient(delivery.item.payload, event_id, skip) : ForwardCheck(delivery.item.payload, skip);
  if (!to.ok()) return Outcome{OutcomeKind::kRetry, 0, std::nullopt, to.error().message(), false};
  if (!skip.empty()) return Skip(skip, event_id);
  Outcome out = Send(event, event_id, *to, delivery.created_at, cancel);
  if (cancel.cancelled() && out.kind == OutcomeKind::kRetry) out.cancelled = true;  // shutdown: not an attempt
  // A reply that can never go out must not count against the sender.
  if (reply && out.kind == OutcomeKind::kPermanent) {
    if (auto s = ledger_->Release(id_, event_id); !s.ok()) {
      util::Log(util::Area::kDelivery)
          .error("smtp.release_failed target={} event={} cause=\"{}\"", target_.name, event_id, s.error().message());
    }
  }
  // Nobody got it: a replay of the dead letter tries every recipient again.
  // Somebody did (an earlier attempt; this one failed before sending, e.g.
  // a template broken by a reload): kept, so a replay does not resend to them.
  if (out.kind == OutcomeKind::kPermanent && !AnyoneGotIt(event_id)) {
    if (auto s = ledger_->ForgetRecipients(id_, event_id); !s.ok()) {
      util::Log(util::Area::kDelivery)
          .error("smtp.record_failed target={} event={} cause=\"{}\"", target_.name, event_id, s.error().message());
    }
  }
  return out;
}

bool SmtpTarget::AnyoneGotIt(const std::string& event_id) const {
  auto states = ledger_->Recipients(id_, event_id);
  // Unreadable: keep the rows (a resend is worse than a replay that skips).
  if (!states.ok()) return true;
  return std::any_of(states->begin(), states->end(),
                     [](const store::RecipientState& r) { return r.status == store::RecipientState::Status::kSent; });
}

util::Result<std::string> SmtpTarget::ForwardCheck(const std::string& payload, std::string& skip) const {
  // A forward of our own mail (to an address this daemon watches) would
  // forward itself again and again: skip what we sent.
  const LoopFacts facts = LoopFactsFromEventJson(payload);
  if (util::Lower(facts.sender_address) == util::Lower(target_.from.address)) {
    skip = std::string(RuleName(SkipRule::kOwnAddress));
  }
  return std::string();
}

Outcome SmtpTarget::Send(const json& event, const std::string& event_id, const std::string& reply_to,
                         std::chrono::system_clock::time_point created, const util::CancelToken& cancel) {
  mime::OutgoingMail mail;
  mail.date = created;
  auto envelope = Address(event, reply_to, mail);
  if (!envelope.ok()) return Permanent(envelope.error().message());
  Bodies rendered;
  auto bytes = Compose(event, event_id, mail, rendered);
  if (!bytes.ok()) return Permanent(bytes.error().message());
  auto envelope_from = mime::EnvelopeAddress(target_.from.address);
  if (!envelope_from.ok()) return Permanent(envelope_from.error().message());
  // An earlier attempt may have reached some recipients: only the others
  // get this one (the same bytes, so the same Message-ID).
  auto done = ledger_->Recipients(id_, event_id);
  if (!done.ok()) return Outcome{OutcomeKind::kRetry, 0, std::nullopt, done.error().message(), false};
  std::vector<std::string> pending;
  for (const std::string& to : *envelope) {
    if (!FindState(*done, to) && std::find(pending.begin(), pending.end(), to) == pending.end()) pending.push_back(to);
  }
  // Nothing left (a crash after the last record, a replayed dead letter):
  // decided by what is recorded, without connecting.
  if (pending.empty()) return Settle(SendReport{SendReport::Kind::kSent, "", {}}, pending, *done, event_id);
  // `timeout` bounds the attempt, resends included, so it fits the dispatcher's lease.
  const auto deadline = std::chrono::steady_clock::now() + target_.timeout;
  SendReport report = sender_(*envelope_from, pending, *bytes, deadline, cancel);
  // At most twice: as a 7-bit file for a server without 8BITMIME, then
  // without the original for the server's size limit.
  for (int again = 0; again < 2; ++again) {
    auto rebuilt = RebuildForServer(report, rendered, event_id, mail);
    if (!rebuilt) break;
    if (!rebuilt->ok()) return Permanent(rebuilt->error().message());
    report = sender_(*envelope_from, pending, **rebuilt, deadline, cancel);
  }
  return Settle(report, pending, *done, event_id);
}

std::optional<util::Result<std::string>> SmtpTarget::RebuildForServer(const SendReport& report, const Bodies& rendered,
                                                                      const std::string& event_id,
                                                                      mime::OutgoingMail& mail) const {
  if (report.kind != SendReport::Kind::kPermanent || !mail.attached_message) return std::nullopt;
  std::string note;
  if (report.needs_seven_bit && !mail.original_as_file) {
    // An 8-bit original cannot go as message/rfc822 to this server; base64 can.
    note = "the original is attached as the file original.eml: " + target_.host + " does not accept 8-bit data";
    util::Log(util::Area::kDelivery)
        .info("smtp.original_as_file target={} event={} reason=no_8bitmime", target_.name, event_id);
    mail.original_as_file = true;
  } else if (report.too_large) {
    // Never a lost forward: the server's size limit (Postfix's default is
    // 10 MB) refused it with the original, so it goes without, saying so.
    note = "the original was too large for " + target_.host + " to accept, so it is not attached";
    util::Log(util::Area::kDelivery)
        .warn("smtp.original_omitted target={} event={} reason=refused_by_server_size note=\"{}\"", target_.name,
              event_id, note);
    mail.attached_message.reset();
    mail.unsafe_original_as_file = false;
    mail.original_as_file = false;
    mail.text = rendered.text;  // without a note about the original as a file
    mail.html = rendered.html;
  } else {
    return std::nullopt;
  }
  AddNote(note, mail);
  return mime::BuildMessage(mail);
}

Outcome SmtpTarget::Settle(const SendReport& report, const std::vector<std::string>& pending,
                           const std::vector<store::RecipientState>& done, const std::string& event_id) {
  Outcome out = FromReport(report);
  const Attempted a = Classify(report, pending, std::chrono::system_clock::now());
  // Recorded even when this attempt ends the delivery: a crash before the
  // dispatcher marks the row delivered then finds everyone settled and sends
  // nothing again. The server's 250 after DATA came before this write: a
  // crash in between sends the message again to recipients who have it. A
  // duplicate beats a loss (RFC 1047), and the Message-ID is the same, so a
  // receiver can drop it.
  if (auto s = ledger_->RecordRecipients(id_, event_id, a.settled); !s.ok()) {
    util::Log(util::Area::kDelivery)
        .error("smtp.record_failed target={} event={} cause=\"{}\"", target_.name, event_id, s.error().message());
    return Outcome{OutcomeKind::kRetry, 0, std::nullopt, s.error().message(), false};
  }
  std::vector<store::RecipientState> all = done;
  all.insert(all.end(), a.settled.begin(), a.settled.end());
  if (!a.deferred.empty()) {
    // Deferred recipients are retried on the schedule (or after an operator
    // hold). Named in the error, so the dead letter of exhausted retries
    // says who never got the message.
    if (out.kind != OutcomeKind::kRetry) out = Outcome{OutcomeKind::kRetry, 0, std::nullopt, report.error, false};
    out.error += (out.error.empty() ? "" : "; ") + std::string("not yet delivered to: ") + Join(a.deferred);
    return out;
  }
  if (std::any_of(all.begin(), all.end(),
                  [](const auto& r) { return r.status == store::RecipientState::Status::kSent; })) {
    return Outcome{OutcomeKind::kSuccess, 0, std::nullopt, "", false};
  }
  std::vector<std::string> refused;
  for (const auto& r : all) refused.push_back(r.recipient + ": " + r.reply);
  return Permanent("no recipient took the message: " + Join(refused));
}

std::optional<Outcome> SmtpTarget::OperatorHold() {
  util::MutexLock lock(mu_);
  const auto now = std::chrono::steady_clock::now();
  if (now >= hold_until_) return std::nullopt;
  // One clear error, not one login per queued event: a revoked password
  // tried by hundreds of events can get the mailbox locked.
  return Outcome{OutcomeKind::kRetry, 0, std::chrono::duration_cast<Duration>(hold_until_ - now),
                 "held after an operator error (" + hold_error_ + ")", false};
}

namespace {

class StoreLedger : public ReplyLedger {
 public:
  explicit StoreLedger(store::StoreOpener open) : open_(std::move(open)) {}

  util::Result<store::ReplyReservation> Reserve(const store::SentReply& reply, store::ReplyLimit limit) override {
    util::MutexLock lock(mu_);
    if (auto s = Open(); !s.ok()) return s.error();
    return store_->smtp_sent().ReserveReply(reply, limit);
  }

  util::Status Release(const std::string& target, const std::string& event_id) override {
    util::MutexLock lock(mu_);
    if (auto s = Open(); !s.ok()) return s;
    return store_->smtp_sent().ReleaseReply(target, event_id);
  }

  util::Result<std::vector<store::RecipientState>> Recipients(const std::string& target,
                                                              const std::string& event_id) override {
    util::MutexLock lock(mu_);
    if (auto s = Open(); !s.ok()) return s.error();
    return store_->smtp_recipients().ForEvent(target, event_id);
  }

  util::Status RecordRecipients(const std::string& target, const std::string& event_id,
                                const std::vector<store::RecipientState>& states) override {
    util::MutexLock lock(mu_);
    if (auto s = Open(); !s.ok()) return s;
    return store_->smtp_recipients().Record(target, event_id, states);
  }

  util::Status ForgetRecipients(const std::string& target, const std::string& event_id) override {
    util::MutexLock lock(mu_);
    if (auto s = Open(); !s.ok()) return s;
    return store_->smtp_recipients().Forget(target, event_id);
  }

 private:
  util::Status Open() REQUIRES(mu_) {
    if (store_ && !store_->broken()) return util::Ok();
    store_.reset();
    auto opened = open_();
    if (!opened.ok()) return opened.error();
    store_ = std::move(opened).value();
    return util::Ok();
  }

  const store::StoreOpener open_;
  util::Mutex mu_;
  std::unique_ptr<store::Store> store_ GUARDED_BY(mu_);
};

}  // namespace

namespace {

SendReport::Kind KindOf(smtp::SendClass cls) {
  switch (cls) {
    case smtp::SendClass::kSent: return SendReport::Kind::kSent;
    case smtp::SendClass::kRetry: return SendReport::Kind::kRetry;
    case smtp::SendClass::kNeedsOperator: return SendReport::Kind::kNeedsOperator;
    case smtp::SendClass::kPermanent: return SendReport::Kind::kPermanent;
  }
  return SendReport::Kind::kRetry;
}

smtp::SmtpAuth AuthOf(config::SmtpAuth auth) {
  switch (auth) {
    case config::SmtpAuth::kPlain: return smtp::SmtpAuth::kPlain;
    case config::SmtpAuth::kLogin: return smtp::SmtpAuth::kLogin;
    case config::SmtpAuth::kXoauth2: return smtp::SmtpAuth::kXoauth2;
  }
  return smtp::SmtpAuth::kPlain;
}

// A refused AUTH: the credentials, not the server or the message (a 535, or
// 5.7.8 "authentication credentials invalid", RFC 4954 §6). XOAUTH2's error
// challenge (334 JSON) ends in one of these too.
bool CredentialsRefused(const smtp::SendOutcome& sent) {
  return sent.cls == smtp::SendClass::kNeedsOperator && (sent.reply.code == 535 || sent.reply.enhanced == "5.7.8");
}

// A message refused for its size: over the SIZE the server announced (the
// client's own check, code 0), or 552 / 5.3.4 "message too big for system" /
// 5.2.3 "message length exceeds administrative limit" (RFC 5321 4.5.3.1.10,
// RFC 3463); not 5.2.2, a full mailbox, which a smaller message does not cure.
bool TooLarge(const smtp::SendOutcome& sent) {
  if (sent.cls != smtp::SendClass::kPermanent) return false;
  const std::string& enhanced = sent.reply.enhanced;
  if (enhanced == "5.3.4" || enhanced == "5.2.3") return true;
  if (sent.reply.code == 0) return sent.reply.text == "message too large";
  return sent.reply.code == 552 && enhanced.empty();
}

}  // namespace

smtp::SmtpOptions SubmissionOptions(const config::SmtpTarget& target) {
  smtp::SmtpOptions options;
  options.host = target.host;
  options.port = target.port;
  options.tls = target.tls;
  options.ca_file = target.ca_file;
  options.tls_verify = target.tls_verify;
  options.auth = AuthOf(target.auth);
  options.username = target.username;
  options.timeout = target.timeout;
  options.account_label = util::TargetId::Smtp(target.name).ToString();
  // The host's FQDN, else (empty) the address literal (smtp/helo_name.h).
  options.helo_name = smtp::HeloName();
  return options;
}

MailSender SubmissionSender(const config::SmtpTarget& target, SecretSource source, SecretRefused refused) {
  const smtp::SmtpOptions options = SubmissionOptions(target);
  return [options, source = std::move(source), refused = std::move(refused)](
             const std::string& from, const std::vector<std::string>& recipients, std::string_view message,
             std::chrono::steady_clock::time_point deadline, const util::CancelToken& cancel) {
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      return SendReport{SendReport::Kind::kRetry,
                        options.account_label + ": the attempt's timeout (" + std::to_string(options.timeout.count()) +
                            " ms) ran out before this send",
                        {}};
    }
    auto secret = source(cancel.fd());
    if (!secret.ok()) {
      // No connection without a secret: the token endpoint's error is the outcome.
      return SendReport{secret.error().NeedsOperator() ? SendReport::Kind::kNeedsOperator : SendReport::Kind::kRetry,
                        options.account_label + ": " + secret.error().message(),
                        {}};
    }
    smtp::SmtpOptions call = options;
    call.secret = *secret;
    call.stop_fd = cancel.fd();
    call.timeout = std::min(options.timeout, left);
    smtp::SendOutcome sent = smtp::SendMail(call, from, recipients, message);
    if (refused && CredentialsRefused(sent)) refused(*secret);
    SendReport report{KindOf(sent.cls), sent.error, {}, TooLarge(sent), sent.needs_seven_bit};
    for (const smtp::RecipientOutcome& r : sent.recipients) {
      const std::string enhanced = r.reply.enhanced.empty() ? "" : r.reply.enhanced + " ";
      report.recipients.push_back(
          {r.address, KindOf(r.cls), std::to_string(r.reply.code) + " " + enhanced + r.reply.text});
    }
    return report;
  };
}

MailSender SubmissionSender(const config::SmtpTarget& target) {
  return SubmissionSender(target, [password = target.password](int) { return password.Resolve(); });
}

MailSender SubmissionSender(const config::SmtpTarget& target, std::shared_ptr<OAuth2TokenCache> tokens) {
  return SubmissionSender(
      target, [tokens](int stop_fd) { return tokens->AccessToken(stop_fd); },
      [tokens](const util::Secret& refused) { tokens->Reject(refused); });
}

std::shared_ptr<ReplyLedger> StoreReplyLedger(store::StoreOpener open) {
  return std::make_shared<StoreLedger>(std::move(open));
}

}  // namespace mailhook::delivery
