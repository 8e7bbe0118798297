#pragma once
/// PostfixServer: a private, real Postfix 3.7 (Debian's) on 127.0.0.1 for the
/// SMTP target's integration tests, started with scripts/postfix in a fresh
/// temp directory (own config, queue and data directories, log). It accepts
/// submission with STARTTLS required before AUTH (PLAIN, LOGIN; checked by a
/// test Dovecot's auth, so alice/secret1 and bob/secret2) and delivers
/// alice@example.test and bob@example.test by LMTP into that Dovecot's INBOX.
/// Other example.test addresses get 550 5.1.1, other domains 550 5.1.1 too
/// (nothing is relayed off the machine). Every RCPT TO is also asked of a
/// SmtpPolicyServer, so a test can make Postfix answer 451-then-250 or 550.
/// Postfix's master runs as root and its daemons as the postfix user: root
/// only (tests skip with WhyCannotRun()'s text otherwise).

#include <chrono>
#include <string>
#include <vector>

#include "dovecot_server.h"
#include "smtp_policy_server.h"
#include "temp_dir.h"
#include "util/result.h"

namespace mailhook::testsupport {

/// How to configure the instance (scripts/postfix start options).
struct PostfixOptions {
  /// RCPT TO:<address> gets "550 5.1.1 <address>: ... no such user" from
  /// Postfix's own check_recipient_access map (texthash, fixed at start).
  std::vector<std::string> rejected_recipients = {};
};

/// One private Postfix instance. Driven from one thread (the test); the
/// policy rules and counters are thread-safe. A failure means the environment
/// is broken (Postfix or dovecot-lmtpd missing: scripts/deps; Dovecot started
/// without its MTA sockets): the Error says which. The destructor kills the
/// instance and removes its directory; the Dovecot must outlive it.
class PostfixServer {
 public:
  PostfixServer();
  ~PostfixServer();
  PostfixServer(const PostfixServer&) = delete;
  PostfixServer& operator=(const PostfixServer&) = delete;

  /// Empty when this process can run Postfix (root); otherwise why not (for GTEST_SKIP).
  static std::string WhyCannotRun();
  /// `base` with the auth and LMTP sockets Start() needs, under dovecot.dir();
  /// start the Dovecot with these: `dovecot.Start(PostfixServer::DovecotOptionsFor(dovecot))`.
  static DovecotOptions DovecotOptionsFor(const DovecotServer& dovecot, DovecotOptions base = {});

  /// Starts the policy server and Postfix (submission on a free loopback
  /// port), delivering into `dovecot`. Returns once the port listens.
  /// Measured: about 1 s (`postfix start` checks its folders first).
  util::Status Start(const DovecotServer& dovecot, const PostfixOptions& options = {});
  /// SIGTERM to the master; waits for it to exit.
  util::Status Stop();

  const std::string& host() const { return host_; }          ///< "127.0.0.1"
  const std::string& tls_name() const { return tls_name_; }  ///< "localhost" (in the certificate)
  int submission_port() const { return submission_port_; }   ///< STARTTLS required before AUTH
  const std::string& ca_file() const { return ca_file_; }    ///< the Dovecot's test CA (PEM)
  const std::string& dir() const { return dir_.path(); }
  std::string log_path() const { return dir_.Sub("postfix.log"); }
  std::string ReadLog() const;
  /// Waits until the log contains `needle` (e.g. "status=sent").
  bool WaitForLog(const std::string& needle, std::chrono::milliseconds timeout) const;

  /// The first RCPT TO:<address> gets `reply` (451 by default), later ones
  /// 250. With PolicyStage::kEndOfData the reply comes after the message's
  /// final "." instead (single-recipient messages only).
  void DeferFirstAttemptFor(const std::string& address, const std::string& reply = "451 4.7.1 try again later",
                            PolicyStage stage = PolicyStage::kRcpt) {
    policy_.DeferFirstAttemptFor(address, reply, stage);
  }
  /// Every RCPT TO:<address> from now on gets `reply` (550 by default).
  void RejectRecipient(const std::string& address, const std::string& reply = "550 5.1.1 no such user",
                       PolicyStage stage = PolicyStage::kRcpt) {
    policy_.RejectRecipient(address, reply, stage);
  }
  /// Policy requests so far at RCPT TO: one per RCPT TO that passed the access map.
  int policy_requests() const { return policy_.requests(); }
  const SmtpPolicyServer& policy() const { return policy_; }

 private:
  util::Status RunScript(const std::vector<std::string>& args);

  TempDir dir_;
  std::string script_;
  SmtpPolicyServer policy_;
  std::string host_ = "127.0.0.1";
  std::string tls_name_ = "localhost";
  int submission_port_ = 0;
  int master_pid_ = -1;
  std::string ca_file_;
};

}  // namespace mailhook::testsupport
