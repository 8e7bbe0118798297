#pragma once
/// DovecotServer: a private, real Dovecot on 127.0.0.1 for integration tests,
/// started with scripts/dovecot in a fresh temp directory (own CA, config,
/// users alice/secret1 and bob/secret2, Maildirs, log). Each instance picks its
/// own free ports, so tests may run in parallel.

#include <sys/types.h>

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "temp_dir.h"
#include "util/result.h"

namespace mailhook::testsupport {

/// Which certificate the server presents (see scripts/dovecot).
enum class ServerCert {
  kGood,       ///< signed by ca_file() for localhost and 127.0.0.1
  kWrongName,  ///< signed by ca_file(), but for wrong.example only
  kUntrusted,  ///< self-signed for localhost and 127.0.0.1
};

/// How to configure the instance (scripts/dovecot start options). The
/// defaults are what every test had before: NOTIFY on, 100 sessions per
/// user and IP.
struct DovecotOptions {
  ServerCert cert = ServerCert::kGood;
  /// false: `mailbox_list_index = no`, which takes NOTIFY (RFC 5465) out of
  /// Dovecot's capabilities — a server without NOTIFY (verified: the
  /// capability is gone, STATUS/IDLE still work).
  bool notify = true;
  /// mail_max_userip_connections: sessions one user may have from one IP;
  /// the next login gets `NO [LIMIT]`. Raise it for many IDLE connections
  /// (20 folders without NOTIFY need 20 + the worker's).
  int max_userip_connections = 100;
  /// Non-empty: Dovecot's oauth2 passdb for XOAUTH2 and OAUTHBEARER, asking
  /// this introspection URL (`introspection_mode = post`, form body
  /// `token=...`; the answer must say active: true and username: <user>).
  /// Each refused login delays the next from the same IP (2, 4, 8... 15 s).
  std::string oauth2_introspection_url = {};
  /// Non-empty: an auth client unix socket at this absolute path (mode
  /// 0666), for an MTA's SASL (Postfix `smtpd_sasl_type = dovecot`).
  std::string auth_socket = {};
  /// Non-empty: LMTP (dovecot-lmtpd) on a unix socket at this absolute path
  /// (mode 0666); alice@ and bob@ any domain are delivered to their INBOX.
  std::string lmtp_socket = {};
  /// More users beside alice and bob: user01/pass01 … userNN/passNN (in
  /// users() and password()), for many accounts on one server.
  int extra_users = 0;
};

/// A test user and its password (fixtures, not secrets).
struct ImapUser {
  std::string name;
  std::string password;
};

/// One private Dovecot instance. Driven from one thread (the test); the
/// accessors are safe to read from others. A failure means the environment is
/// broken (Dovecot missing, port taken): the Error says which and how to fix.
/// The destructor kills the instance and removes its directory.
class DovecotServer {
 public:
  DovecotServer();
  ~DovecotServer();
  DovecotServer(const DovecotServer&) = delete;
  DovecotServer& operator=(const DovecotServer&) = delete;

  /// Starts the instance on two free loopback ports (imaps, imap). Returns
  /// once both ports listen.
  util::Status Start(ServerCert cert = ServerCert::kGood);
  /// Start with options (NOTIFY off, a session limit). Restart() keeps them.
  util::Status Start(const DovecotOptions& options);
  /// Graceful stop (SIGTERM to the master; waits for it to exit).
  util::Status Stop();
  /// Stop() then start again with the same ports, certificates and mail.
  util::Status Restart();
  /// Restart presenting another certificate.
  util::Status RestartWithCert(ServerCert cert);
  /// SIGKILLs the `imap` processes that serve logged-in sessions (Dovecot's
  /// master and listeners keep running), as a dropped connection would look to
  /// a client. Waits until they are gone; returns how many were killed.
  /// Removes the Maildir dotlocks (dovecot-uidlist.lock) the killed sessions
  /// left: Dovecot would wait out their 2-minute stale timeout.
  util::Result<int> KillSessionProcesses();
  /// Pids of the `imap` session processes right now. Dovecot serves each
  /// logged-in IMAP connection in its own `imap` process (service imap's
  /// client_limit is 1), so this is the number of logged-in connections to
  /// this instance — of every client: mailhook's, and the test's own
  /// ImapClient calls while they run (each process may outlive its LOGOUT
  /// by a few ms). Connections still in the login phase (imap-login) are
  /// not counted.
  ///
  /// To assert "mailhook uses at most N connections": start the daemon, wait
  /// until it is ready (WaitForSessions(1, ...) and its readiness endpoint or
  /// log), make no ImapClient call meanwhile, then check
  /// WaitForSessionsAtMost(N, ...) (it settles) and SessionPids().size() <= N
  /// again after the events were delivered.
  std::vector<pid_t> SessionPids() const;
  /// Waits until at least `n` imap session processes exist (clients logged in).
  bool WaitForSessions(size_t n, std::chrono::milliseconds timeout) const;
  /// Waits until at most `n` imap session processes exist (closed sessions'
  /// processes have exited).
  bool WaitForSessionsAtMost(size_t n, std::chrono::milliseconds timeout) const;
  /// The process titles of the session processes (verbose_proctitle):
  /// "dovecot-<instance>/imap [alice 127.0.0.1 IDLE]" — user, client IP and
  /// the command running now, so a test can wait until a client is in IDLE.
  std::vector<std::string> SessionTitles() const;
  /// Waits until some session's title contains `text` (e.g. "IDLE").
  bool WaitForSessionTitle(const std::string& text, std::chrono::milliseconds timeout) const;

  bool running() const;
  const std::string& host() const { return host_; }          ///< "127.0.0.1"
  const std::string& tls_name() const { return tls_name_; }  ///< "localhost" (in the good cert)
  int imaps_port() const { return imaps_port_; }             ///< implicit TLS
  int imap_port() const { return imap_port_; }               ///< plain + STARTTLS
  const std::string& ca_file() const { return ca_file_; }    ///< PEM of the test CA
  const std::string& dir() const { return dir_.path(); }
  /// DovecotOptions::auth_socket and lmtp_socket as started; empty when off.
  const std::string& auth_socket() const { return auth_socket_; }
  const std::string& lmtp_socket() const { return lmtp_socket_; }
  /// Certificate and key files of each kind (PEM), e.g. for an HTTPS receiver.
  std::string cert_file(ServerCert cert = ServerCert::kGood) const;
  std::string key_file(ServerCert cert = ServerCert::kGood) const;
  std::string log_path() const { return dir_.Sub("dovecot.log"); }
  std::string ReadLog() const;
  /// alice/secret1 and bob/secret2 (then DovecotOptions::extra_users).
  const std::vector<ImapUser>& users() const { return users_; }
  /// Password of a known user; empty for an unknown one.
  std::string password(const std::string& user) const;

 private:
  util::Status RunScript(const std::vector<std::string>& args);
  util::Status LoadEnv();
  void RemoveDotlocksOf(const std::vector<pid_t>& pids) const;

  TempDir dir_;
  std::string script_;
  std::string host_ = "127.0.0.1";
  std::string tls_name_ = "localhost";
  int imaps_port_ = 0;
  int imap_port_ = 0;
  pid_t master_pid_ = -1;
  std::string ca_file_;
  std::string auth_socket_;
  std::string lmtp_socket_;
  std::vector<ImapUser> users_;
  ServerCert cert_ = ServerCert::kGood;
};

/// Two (or n) distinct free TCP ports on 127.0.0.1, as chosen by the kernel.
/// They are released before returning, so a race is possible but rare.
std::vector<int> FreeLoopbackPorts(size_t n);

/// The KEY=VALUE lines of the env file scripts/dovecot and scripts/cyrus
/// write on start; missing file: empty.
std::map<std::string, std::string> ReadServerEnv(const std::string& path);

/// Runs a server script (scripts/dovecot, scripts/cyrus) with `args`; a
/// non-zero exit is an Error naming the script, `hint` (what to check) and
/// its stderr.
util::Status RunServerScript(const std::string& script, const std::vector<std::string>& args,
                             std::chrono::seconds timeout, const std::string& hint);

}  // namespace mailhook::testsupport
