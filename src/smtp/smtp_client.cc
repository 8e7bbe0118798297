#include "smtp/smtp_client.h"

#include <poll.h>

#include <algorithm>
#include <cctype>

#include <libetpan/libetpan.h>

#include "imap/etpan_ptr.h"
#include "imap/tls_stream.h"
#include "smtp/helo_name.h"
#include "smtp/smtp_trace.h"
#include "util/base64.h"
#include "util/log.h"
#include "util/strings.h"

namespace mailhook::smtp {
namespace {

using Clock = std::chrono::steady_clock;

/// What EHLO told us (RFC 5321 §4.1.1.1; extensions by their keyword).
struct Extensions {
  bool starttls = false;
  bool size_given = false;
  uint64_t size = 0;  // 0: no limit announced
  bool eightbitmime = false;
  bool smtputf8 = false;
  std::vector<std::string> auth;  // mechanisms, upper case
};

bool HasMechanism(const Extensions& ext, std::string_view mech) {
  return std::find(ext.auth.begin(), ext.auth.end(), mech) != ext.auth.end();
}

/// One line's keyword and arguments from the raw EHLO lines (the reply text
/// of ParseReply joins lines, so EHLO keeps its own lines).
Extensions ParseEhlo(const std::vector<std::string>& lines) {
  Extensions ext;
  for (size_t i = 1; i < lines.size(); ++i) {  // the first line greets
    std::string line = util::Upper(lines[i].size() > 4 ? std::string_view(lines[i]).substr(4) : std::string_view());
    std::vector<std::string> words;
    for (size_t at = 0; at < line.size();) {
      size_t end = line.find_first_of(" =", at);
      if (end == std::string::npos) end = line.size();
      if (end > at) words.push_back(line.substr(at, end - at));
      at = end + 1;
    }
    if (words.empty()) continue;
    if (words[0] == "STARTTLS") ext.starttls = true;
    if (words[0] == "8BITMIME") ext.eightbitmime = true;
    if (words[0] == "SMTPUTF8") ext.smtputf8 = true;
    if (words[0] == "AUTH") ext.auth.insert(ext.auth.end(), words.begin() + 1, words.end());
    if (words[0] == "SIZE") {
      ext.size_given = true;
      if (words.size() > 1 && words[1].size() <= 18 &&
          std::all_of(words[1].begin(), words[1].end(), [](char c) { return c >= '0' && c <= '9'; }))
        ext.size = std::stoull(words[1]);
    }
  }
  return ext;
}

bool IsAscii(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; });
}

/// An address fit for MAIL FROM/RCPT TO: no line breaks or brackets that
/// would let a template inject a command, and not over the 256 bytes of a
/// path (RFC 5321 §4.5.3.1.3).
bool SafeAddress(const std::string& a) { return a.size() <= 256 && a.find_first_of("\r\n<> \t") == std::string::npos; }

/// One SMTP session on a verified stream.
class Client {
 public:
  explicit Client(const SmtpOptions& o)
      : o_(o),
        trace_(o.account_label.empty() ? "smtp:" + o.host : o.account_label, o.username, o.secret),
        deadline_(Clock::now() + o.timeout) {}

  /// Connect, TLS, greeting, EHLO, STARTTLS, AUTH. nullopt: ready for MAIL.
  std::optional<SendOutcome> Open();
  SendOutcome Send(const std::string& from, const std::vector<std::string>& recipients, std::string_view message);
  void Quit();
  const std::string& helo_name() const { return helo_name_; }
  const std::vector<std::string>& offered_auth() const { return ext_.auth; }
  bool encrypted() const { return stream_ && imap::IsEncrypted(stream_.get()); }
  /// MAIL FROM with the parameters the server announced (RFC 1870 SIZE,
  /// RFC 6152 BODY=8BITMIME, RFC 6531 SMTPUTF8); nullopt when accepted.
  std::optional<SendOutcome> Mail(const std::string& from, const std::vector<std::string>& recipients,
                                  std::string_view data);

 private:
  std::optional<SendOutcome> Ehlo();
  std::optional<SendOutcome> StartTls();
  std::optional<SendOutcome> Handshake(std::string_view what);
  std::optional<SendOutcome> Auth();
  std::optional<SendOutcome> AuthExchange(const std::string& first, std::string_view shown);

  bool Write(std::string_view line, bool withheld = false, std::string_view shown_prefix = {});
  /// The dot-stuffed message, in pieces, each write within the time left.
  bool WriteData(std::string_view data);
  /// Reads one reply; false on a connection error, timeout or a bad reply
  /// (then io_error_ says what).
  bool Read(SmtpReply* reply, std::vector<std::string>* lines = nullptr);
  /// Sends `line` and reads its reply; a connection error becomes a reply with code 0.
  SmtpReply Command(std::string_view line, bool withheld = false, std::string_view shown_prefix = {});

  SendOutcome Fail(SendClass cls, SmtpReply reply, const std::string& error) const;
  SendOutcome FailReply(const SmtpReply& reply, SmtpStage stage, std::string_view what) const;
  bool Stopped() const;
  /// Records why the stream broke; false.
  bool Broken(std::string why) {
    io_error_ = std::move(why);
    broken_ = true;
    return false;
  }

  /// What is left of the attempt's one deadline (0 when it has passed).
  std::chrono::milliseconds Left() const;
  /// Why the attempt ended at the deadline, naming the step it was in.
  std::string TimedOut() const;

  const SmtpOptions& o_;
  SmtpTrace trace_;
  // One deadline for the whole attempt: every wait (connect, TLS, each reply,
  // each write) takes what is left of it, so a server that answers each step
  // just under `timeout` cannot stretch one attempt toward the dispatcher's
  // lease.
  const Clock::time_point deadline_;
  std::string stage_ = "connect";  // the step under way, for TimedOut()
  imap::StreamPtr stream_;
  std::string pending_;   // bytes read past the last reply line
  std::string io_error_;  // why the last Read/Write failed
  bool broken_ = false;   // the stream is out of step or gone: no QUIT
  Extensions ext_;
  std::string helo_name_;  // as sent in EHLO
};

bool Client::Stopped() const {
  if (o_.stop_fd < 0) return false;
  pollfd p{o_.stop_fd, POLLIN, 0};
  return poll(&p, 1, 0) > 0;
}

std::chrono::milliseconds Client::Left() const {
  // Rounded up: a wait for the last fraction of a millisecond ends at the
  // deadline, not just before it.
  const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline_ - Clock::now());
  return std::max(left, std::chrono::milliseconds(0));
}

std::string Client::TimedOut() const {
  return "timed out at " + stage_ + ": the whole attempt may take timeout " + std::to_string(o_.timeout.count()) +
         " ms";
}

bool Client::Write(std::string_view line, bool withheld, std::string_view shown_prefix) {
  trace_.Sent(line, withheld, shown_prefix);
  if (Left().count() == 0) return Broken(TimedOut());
  imap::SetStreamTimeout(stream_.get(), Left());
  std::string bytes(line);
  bytes += "\r\n";
  if (mailstream_write(stream_.get(), bytes.data(), bytes.size()) < 0 || mailstream_flush(stream_.get()) < 0) {
    return Broken(Stopped()             ? "stopped while sending"
                  : Left().count() == 0 ? TimedOut()
                                        : "connection lost while sending");
  }
  return true;
}

bool Client::WriteData(std::string_view data) {
  // Pieces, so that a server reading slowly meets the deadline within about
  // one piece's wait rather than after the whole message.
  constexpr size_t kPiece = 16 * 1024;
  for (size_t at = 0; at < data.size(); at += kPiece) {
    if (Left().count() == 0) return Broken(TimedOut());
    imap::SetStreamTimeout(stream_.get(), Left());
    const std::string_view piece = data.substr(at, kPiece);
    if (mailstream_write(stream_.get(), piece.data(), piece.size()) < 0) break;
    if (at + kPiece >= data.size() && mailstream_flush(stream_.get()) >= 0) return true;
  }
  return Broken(Stopped()             ? "stopped while sending the message"
                : Left().count() == 0 ? TimedOut()
                                      : "connection lost while sending the message");
}

bool Client::Read(SmtpReply* reply, std::vector<std::string>* lines) {
  std::string raw;
  size_t count = 0;
  for (;;) {
    const size_t nl = pending_.find('\n');
    if (nl == std::string::npos) {
      if (pending_.size() > kMaxReplyLine) {
        return Broken("the server sent a reply line over " + std::to_string(kMaxReplyLine) + " bytes");
      }
      const auto left = Left();
      if (left.count() <= 0) return Broken(TimedOut());
      imap::SetStreamTimeout(stream_.get(), left);
      char buf[4096];
      const auto waiting_since = Clock::now();
      const ssize_t n = mailstream_read(stream_.get(), buf, sizeof buf);
      if (n <= 0) {
        // The driver's poll timeout ends the wait (it rounds to whole ms).
        const bool timed_out = Clock::now() - waiting_since >= left - std::chrono::milliseconds(5);
        return Broken(Stopped()   ? "stopped while waiting for the server"
                      : timed_out ? TimedOut()
                                  : "the server closed the connection");
      }
      pending_.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (nl + 1 > kMaxReplyLine) {
      return Broken("the server sent a reply line over " + std::to_string(kMaxReplyLine) + " bytes");
    }
    std::string line = pending_.substr(0, nl + 1);
    pending_.erase(0, nl + 1);
    std::string_view bare(line);
    while (!bare.empty() && (bare.back() == '\n' || bare.back() == '\r')) bare.remove_suffix(1);
    trace_.Received(bare);
    if (lines) lines->emplace_back(bare);
    raw += line;
    if (++count > kMaxReplyLines) {
      return Broken("the server sent a reply of more than " + std::to_string(kMaxReplyLines) + " lines");
    }
    if (line.size() < 4 || line[3] != '-') break;
  }
  *reply = ParseReply(raw);
  reply->text = trace_.Clean(reply->text);
  if (reply->code == 0) return Broken(reply->text);
  return true;
}

SmtpReply Client::Command(std::string_view line, bool withheld, std::string_view shown_prefix) {
  SmtpReply reply;
  if (!Write(line, withheld, shown_prefix) || !Read(&reply)) {
    reply = SmtpReply();
    reply.text = io_error_;
  }
  return reply;
}

SendOutcome Client::Fail(SendClass cls, SmtpReply reply, const std::string& error) const {
  SendOutcome out;
  out.cls = cls;
  out.reply = std::move(reply);
  out.error = trace_.Clean(error, 600);
  return out;
}

/// The error for a reply that ended the session, with the fix where one is known.
SendOutcome Client::FailReply(const SmtpReply& reply, SmtpStage stage, std::string_view what) const {
  const std::string server = o_.host + ":" + std::to_string(o_.port);
  if (reply.code == 0) {
    return Fail(SendClass::kRetry, reply,
                std::string(what) + " failed on " + server + ": " + reply.text + " (temporary)");
  }
  // A reply that ended the session is never a success, whatever its code: a
  // 250 to DATA or a "200" greeting (not an SMTP server) sent nothing.
  SendClass cls = ClassifyReply(reply, stage);
  if (cls == SendClass::kSent) cls = SendClass::kNeedsOperator;
  std::string said =
      std::to_string(reply.code) + (reply.enhanced.empty() ? "" : " " + reply.enhanced) + " " + reply.text;
  std::string error = server + " refused " + std::string(what) + ": " + said;
  if (cls == SendClass::kNeedsOperator && (stage == SmtpStage::kAuth || reply.code == 535 || reply.code == 534)) {
    error +=
        "; bad credentials or mechanism: check username and password; for Gmail/Microsoft 365 use an app "
        "password or auth: xoauth2 (Microsoft 365 also needs SMTP AUTH enabled for the mailbox)";
  } else if (cls == SendClass::kNeedsOperator && reply.code == 530) {
    error += "; the server requires authentication (or TLS) first: set username and a password or token";
  } else if (cls == SendClass::kNeedsOperator) {
    error += "; the server refuses this client: check host, port and tls for this server";
  } else if (cls == SendClass::kRetry) {
    error += " (temporary)";
  }
  return Fail(cls, reply, error);
}

std::optional<SendOutcome> Client::Open() {
  auto stream = imap::OpenPlainStream(o_.host, o_.port, Left(), o_.stop_fd, "465 for tls: implicit, 587 for starttls");
  if (!stream) {
    const SendClass cls = stream.error().NeedsOperator() ? SendClass::kNeedsOperator : SendClass::kRetry;
    return Fail(cls, SmtpReply{0, "", stream.error().message()},
                "connecting to " + o_.host + ":" + std::to_string(o_.port) + " failed: " + stream.error().message() +
                    (Left().count() == 0 ? " (" + TimedOut() + ")" : ""));
  }
  stream_ = std::move(stream.value());
  imap::StopScanningImapNesting(stream_.get());  // a "(" in a reply is only text
  // Every wait of the stream ends by the attempt's deadline: a TLS handshake
  // step or a reply trickled a byte at a time cannot stretch it.
  imap::SetStreamDeadline(stream_.get(), deadline_);
  if (o_.tls == config::TlsMode::kImplicit) {
    if (auto failed = Handshake("TLS")) return failed;
  }
  stage_ = "the greeting";
  SmtpReply greeting;
  if (!Read(&greeting)) greeting = SmtpReply{0, "", io_error_};
  if (greeting.code != 220) return FailReply(greeting, SmtpStage::kConnect, "the connection (greeting)");
  if (auto failed = Ehlo()) return failed;
  if (o_.tls == config::TlsMode::kStartTls) {
    if (auto failed = StartTls()) return failed;
  }
  return Auth();
}

/// The TLS handshake within the time left (each of its waits gets what is
/// left when it starts: tls_stream's driver has one timeout per wait).
std::optional<SendOutcome> Client::Handshake(std::string_view what) {
  stage_ = std::string(what) + " handshake";
  imap::SetStreamTimeout(stream_.get(), Left());
  auto tls = imap::StartTls(stream_.get(), imap::TlsOptions{o_.host, o_.ca_file, o_.tls_verify, "smtp target",
                                                            "465 is implicit TLS, 587 needs tls: starttls"});
  if (tls) return std::nullopt;
  broken_ = true;
  const SendClass cls = tls.error().NeedsOperator() ? SendClass::kNeedsOperator : SendClass::kRetry;
  return Fail(cls, SmtpReply{0, "", tls.error().message()},
              std::string(what) + " with " + o_.host + " failed: " + tls.error().message() +
                  (Left().count() == 0 ? " (" + TimedOut() + ")" : ""));
}

std::optional<SendOutcome> Client::Ehlo() {
  stage_ = "EHLO";
  std::vector<std::string> lines;
  SmtpReply reply;
  std::string name = o_.helo_name;
  if (name.empty()) name = LocalAddressLiteral(mailstream_low_get_fd(mailstream_get_low(stream_.get())));
  if (name.empty()) name = "localhost";  // getsockname failed on a connected socket: no address to name
  helo_name_ = name;
  if (!Write("EHLO " + name) || !Read(&reply, &lines)) reply = SmtpReply{0, "", io_error_};
  if (reply.code != 250) return FailReply(reply, SmtpStage::kEhlo, "EHLO");
  ext_ = ParseEhlo(lines);
  return std::nullopt;
}

std::optional<SendOutcome> Client::StartTls() {
  if (!ext_.starttls) {
    return Fail(
        SendClass::kNeedsOperator, SmtpReply{0, "", "STARTTLS not offered"},
        o_.host + ":" + std::to_string(o_.port) +
            " does not offer STARTTLS, which tls: starttls requires (no credentials or mail were sent): use tls: "
            "implicit with port 465, or enable STARTTLS on the server");
  }
  stage_ = "STARTTLS";
  SmtpReply reply = Command("STARTTLS");
  if (reply.code != 220) return FailReply(reply, SmtpStage::kStartTls, "STARTTLS");
  // Bytes after the 220 came in clear and would be read as if encrypted
  // (the STARTTLS command injection, CVE-2011-0411 and kin).
  if (!pending_.empty() || stream_->read_buffer_len != 0) {
    broken_ = true;
    return Fail(SendClass::kRetry, SmtpReply{0, "", "data after STARTTLS"},
                o_.host + " sent data after its answer to STARTTLS (an injection attempt or a broken server)");
  }
  if (auto failed = Handshake("STARTTLS")) return failed;
  return Ehlo();  // RFC 3207 §4.2: forget what was said in clear
}

std::optional<SendOutcome> Client::Auth() {
  if (o_.auth == SmtpAuth::kNone) return std::nullopt;
  const std::string mech(AuthName(o_.auth));
  stage_ = "AUTH " + mech;
  if (!HasMechanism(ext_, mech)) {
    std::string offered;
    for (const std::string& m : ext_.auth) offered += (offered.empty() ? "" : " ") + m;
    return Fail(SendClass::kNeedsOperator, SmtpReply{0, "", "AUTH " + mech + " not offered"},
                o_.host + " does not offer AUTH " + mech + " (offered: " + (offered.empty() ? "none" : offered) +
                    "): choose an offered auth mechanism" +
                    (o_.tls == config::TlsMode::kNone ? ", or use TLS (servers offer AUTH only over TLS)" : ""));
  }
  const std::string& secret = o_.secret.reveal();
  if (o_.auth == SmtpAuth::kPlain) {
    return AuthExchange("AUTH PLAIN " + util::Base64Encode(std::string(1, '\0') + o_.username + '\0' + secret),
                        "AUTH PLAIN ");
  }
  if (o_.auth == SmtpAuth::kXoauth2) {
    return AuthExchange(
        "AUTH XOAUTH2 " + util::Base64Encode("user=" + o_.username + "\1auth=Bearer " + secret + "\1\1"),
        "AUTH XOAUTH2 ");
  }
  return AuthExchange("AUTH LOGIN", "");
}

/// AUTH and its 334 continuations (RFC 4954 §4) up to the final reply.
/// LOGIN answers its two challenges with the user name and the password;
/// PLAIN (a server that wants the response separately) and XOAUTH2 (whose
/// 334 carries an error in JSON, answered with an empty line) likewise.
std::optional<SendOutcome> Client::AuthExchange(const std::string& first, std::string_view shown) {
  SmtpReply reply = shown.empty() ? Command(first) : Command(first, true, shown);
  for (int step = 0; reply.code == 334 && step < 3; ++step) {
    std::string answer;
    if (o_.auth == SmtpAuth::kLogin) {
      answer = util::Base64Encode(step == 0 ? o_.username : o_.secret.reveal());
    } else if (o_.auth == SmtpAuth::kPlain && step == 0) {
      answer = util::Base64Encode(std::string(1, '\0') + o_.username + '\0' + o_.secret.reveal());
    }
    reply = Command(answer, true, "");
  }
  if (reply.code == 235) return std::nullopt;
  if (reply.code == 334) {
    Command("*");  // RFC 4954 §4: cancel an exchange that went on too long
    reply.text = "the server kept asking for more AUTH data";
    reply.code = 535;
  }
  return FailReply(reply, SmtpStage::kAuth, "AUTH " + std::string(AuthName(o_.auth)));
}

SendOutcome Client::Send(const std::string& from, const std::vector<std::string>& recipients,
                         std::string_view message) {
  const std::string data = DotStuff(message);
  if (auto failed = Mail(from, recipients, data)) return std::move(*failed);

  SendOutcome out;
  std::optional<SendClass> refused;  // worst class of the refused recipients
  size_t accepted = 0;
  stage_ = "RCPT TO";
  for (const std::string& to : recipients) {
    RecipientOutcome r{to, Command("RCPT TO:<" + to + ">"), SendClass::kSent};
    r.cls = ClassifyReply(r.reply, SmtpStage::kRcpt);
    if (r.reply.code == 0) {
      SendOutcome failed = FailReply(r.reply, SmtpStage::kRcpt, "RCPT TO");
      failed.recipients = std::move(out.recipients);
      return failed;
    }
    if (r.cls == SendClass::kSent) {
      ++accepted;
    } else {
      refused = refused ? Worse(*refused, r.cls) : r.cls;
    }
    out.recipients.push_back(std::move(r));
  }
  if (accepted == 0) {
    SendOutcome failed = FailReply(out.recipients.back().reply, SmtpStage::kRcpt, "every recipient (RCPT TO)");
    for (const RecipientOutcome& r : out.recipients) {
      if (r.cls == *refused) failed = FailReply(r.reply, SmtpStage::kRcpt, "every recipient (RCPT TO)");
    }
    failed.cls = *refused;
    failed.recipients = std::move(out.recipients);
    Command("RSET");
    return failed;
  }
  stage_ = "DATA";
  SmtpReply reply = Command("DATA");
  if (reply.code != 354) {
    SendOutcome failed = FailReply(reply, SmtpStage::kData, "DATA");
    for (RecipientOutcome& r : out.recipients) {
      if (r.cls != SendClass::kSent) continue;
      r.reply = reply;
      r.cls = failed.cls;
    }
    failed.recipients = std::move(out.recipients);
    return failed;
  }
  trace_.SentData(data.size());
  stage_ = "sending the message";
  if (!WriteData(data)) {
    reply = SmtpReply{0, "", io_error_};
  } else if (stage_ = "the reply after DATA"; !Read(&reply)) {
    // RFC 1047: the server may have taken the message and the answer got
    // lost; a retry can then deliver it twice, which beats losing it.
    reply = SmtpReply{0, "", io_error_};
  }
  SendOutcome done =
      reply.code == 250 ? SendOutcome{} : FailReply(reply, SmtpStage::kMessage, "the message (after DATA)");
  done.cls = reply.code == 250 ? SendClass::kSent : done.cls;
  done.reply = reply;
  for (RecipientOutcome& r : out.recipients) {
    if (r.cls != SendClass::kSent) continue;
    r.reply = reply;
    r.cls = done.cls;
  }
  done.recipients = std::move(out.recipients);
  if (done.cls == SendClass::kSent && refused) {
    done.error = trace_.Clean(std::to_string(recipients.size() - accepted) + " of " +
                              std::to_string(recipients.size()) + " recipients refused; sent to the others");
  }
  return done;
}

std::optional<SendOutcome> Client::Mail(const std::string& from, const std::vector<std::string>& recipients,
                                        std::string_view data) {
  if (ext_.size > 0 && data.size() > ext_.size) {
    return Fail(SendClass::kPermanent, SmtpReply{0, "", "message too large"},
                "the message (" + std::to_string(data.size()) + " bytes) is over the " + std::to_string(ext_.size) +
                    " bytes " + o_.host + " accepts (EHLO SIZE): make it smaller (attach less)");
  }
  if (!ext_.eightbitmime && !IsAscii(data)) {
    // RFC 6152 §3: 8-bit data only to a server that offers 8BITMIME.
    SendOutcome out = Fail(SendClass::kPermanent, SmtpReply{0, "", "8BITMIME not offered"},
                           "the message has 8-bit data and " + o_.host +
                               " does not offer 8BITMIME (RFC 6152): it would be mangled, so it is not sent");
    out.needs_seven_bit = true;
    return out;
  }
  stage_ = "MAIL FROM";
  std::string mail = "MAIL FROM:<" + from + ">";
  if (ext_.size_given) mail += " SIZE=" + std::to_string(data.size());
  if (ext_.eightbitmime && !IsAscii(data)) mail += " BODY=8BITMIME";
  bool utf8_address = !IsAscii(from);
  for (const std::string& to : recipients) utf8_address = utf8_address || !IsAscii(to);
  if (utf8_address && !ext_.smtputf8) {
    return Fail(SendClass::kPermanent, SmtpReply{0, "", "SMTPUTF8 not offered"},
                "an address has non-ASCII characters and " + o_.host +
                    " does not offer SMTPUTF8 (RFC 6531): use an ASCII address");
  }
  if (utf8_address) mail += " SMTPUTF8";
  const SmtpReply reply = Command(mail);
  if (reply.code != 250) return FailReply(reply, SmtpStage::kMail, "MAIL FROM");
  return std::nullopt;
}

void Client::Quit() {
  if (!stream_ || broken_) {
    stream_.reset();
    return;
  }
  // A polite end (RFC 5321 §4.1.1.10); the message's fate is decided
  // already, so a server slow to answer does not hold the sender up.
  trace_.Sent("QUIT");
  // Within what is left of the attempt, and at most a second.
  const auto wait = std::min(Left(), std::chrono::milliseconds(1000));
  if (wait.count() == 0) {
    stream_.reset();
    return;
  }
  imap::SetStreamTimeout(stream_.get(), wait);
  static constexpr std::string_view kQuit = "QUIT\r\n";
  if (mailstream_write(stream_.get(), kQuit.data(), kQuit.size()) >= 0 && mailstream_flush(stream_.get()) >= 0) {
    char buf[512];
    const ssize_t n = mailstream_read(stream_.get(), buf, sizeof buf);
    const std::string_view got(buf, n > 0 ? static_cast<size_t>(n) : 0);
    if (!got.empty()) trace_.Received(got.substr(0, got.find_first_of("\r\n")));
  }
  stream_.reset();
}

}  // namespace

std::string_view AuthName(SmtpAuth auth) {
  switch (auth) {
    case SmtpAuth::kPlain: return "PLAIN";
    case SmtpAuth::kLogin: return "LOGIN";
    case SmtpAuth::kXoauth2: return "XOAUTH2";
    case SmtpAuth::kNone: break;
  }
  return "";
}

std::string DotStuff(std::string_view message) {
  std::string out;
  out.reserve(message.size() + message.size() / 64 + 8);
  bool line_start = true;
  for (size_t i = 0; i < message.size(); ++i) {
    const char c = message[i];
    if (line_start && c == '.') out += '.';
    line_start = false;
    if (c == '\r' && i + 1 < message.size() && message[i + 1] == '\n') continue;  // the LF ends it
    if (c == '\n') {
      out += "\r\n";
      line_start = true;
      continue;
    }
    out += c;
  }
  if (!line_start) out += "\r\n";
  out += ".\r\n";
  return out;
}

CheckOutcome CheckSubmission(const SmtpOptions& options) {
  Client client(options);
  CheckOutcome out;
  if (auto failed = client.Open()) {
    out.cls = failed->cls;
    out.error = std::move(failed->error);
  } else {
    out.cls = SendClass::kSent;
  }
  out.helo_name = client.helo_name();
  out.auth = client.offered_auth();
  out.encrypted = client.encrypted();
  client.Quit();
  return out;
}

SendOutcome SendMail(const SmtpOptions& options, const std::string& envelope_from,
                     const std::vector<std::string>& recipients, std::string_view message) {
  SendOutcome out;
  out.cls = SendClass::kPermanent;
  if (recipients.empty()) {
    out.error = "no recipients: the target's to/cc templates gave no address";
    return out;
  }
  if (!SafeAddress(envelope_from)) {
    out.error = "the envelope sender is not a plain address (no spaces, brackets or line breaks, at most 256 bytes)";
    return out;
  }
  for (const std::string& to : recipients) {
    if (to.empty() || !SafeAddress(to)) {
      out.error = "a recipient is not a plain address (no spaces, brackets or line breaks, at most 256 bytes)";
      return out;
    }
  }
  Client client(options);
  if (auto failed = client.Open()) {
    client.Quit();
    return std::move(*failed);
  }
  out = client.Send(envelope_from, recipients, message);
  client.Quit();
  return out;
}

}  // namespace mailhook::smtp
