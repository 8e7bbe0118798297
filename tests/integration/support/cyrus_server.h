#pragma once
/// CyrusServer: a private, real Cyrus IMAP 3.6 on 127.0.0.1 for integration
/// tests, started with scripts/cyrus in a fresh temp directory (own CA,
/// config, SASL users alice/secret1 and bob/secret2 with their INBOXes). The
/// Debian packages are unpacked once into a cache (Cyrus conflicts with the
/// installed Dovecot), so the first Start() on a machine downloads ~3 MB.
/// Each instance picks its own free ports, so tests may run in parallel.

#include <chrono>
#include <string>
#include <vector>

#include "config_yaml.h"
#include "dovecot_server.h"  // ImapUser, FreeLoopbackPorts
#include "temp_dir.h"
#include "util/result.h"

namespace mailhook::testsupport {

/// One private Cyrus instance. Driven from one thread (the test); the
/// accessors are safe to read from others. A failure means the environment is
/// broken (no apt access for the first download, port taken): the Error says
/// which and how to fix. The destructor kills the instance and removes its
/// directory.
class CyrusServer {
 public:
  CyrusServer();
  ~CyrusServer();
  CyrusServer(const CyrusServer&) = delete;
  CyrusServer& operator=(const CyrusServer&) = delete;

  /// Starts the instance on two free loopback ports (imaps, imap). Returns
  /// once both ports listen, idled runs and both users have logged in once.
  util::Status Start();
  /// Graceful stop (SIGTERM to the master; waits for it to exit).
  util::Status Stop();
  bool running() const;

  /// Waits until at least `n` sessions of `user` are in IDLE, as Cyrus itself
  /// records it (the command column of {configdirectory}/proc/<pid>).
  bool WaitForIdleSessions(const std::string& user, size_t n, std::chrono::milliseconds timeout) const;

  const std::string& host() const { return host_; }          ///< "127.0.0.1"
  const std::string& tls_name() const { return tls_name_; }  ///< "localhost" (in the cert)
  int imaps_port() const { return imaps_port_; }             ///< implicit TLS
  int imap_port() const { return imap_port_; }               ///< plain + STARTTLS, LOGIN allowed
  const std::string& ca_file() const { return ca_file_; }    ///< PEM of the test CA
  const std::string& dir() const { return dir_.path(); }
  /// Cyrus logs to syslog only; this is master's stderr (start-up failures).
  std::string log_path() const { return dir_.Sub("master.log"); }
  std::string ReadLog() const;
  /// alice/secret1 and bob/secret2.
  const std::vector<ImapUser>& users() const { return users_; }
  /// Password of a known user; empty for an unknown one.
  std::string password(const std::string& user) const;
  /// name/password pairs, as ImapClient's (host, port, users) constructor takes them.
  std::vector<std::pair<std::string, std::string>> user_pairs() const;

 private:
  util::Status RunScript(const std::vector<std::string>& args);
  util::Status LoadEnv();

  TempDir dir_;
  std::string script_;
  std::string host_ = "127.0.0.1";
  std::string tls_name_ = "localhost";
  int imaps_port_ = 0;
  int imap_port_ = 0;
  int master_pid_ = -1;
  std::string ca_file_;
  std::vector<ImapUser> users_;
};

/// One `accounts:` entry pointing at `server` (same rules as the Dovecot
/// overload in config_yaml.h: implicit → imaps port, ca_file set).
std::string AccountYaml(const CyrusServer& server, const AccountSpec& spec);

}  // namespace mailhook::testsupport
