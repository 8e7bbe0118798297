#pragma once
/// CourierServer: a private, real Courier-IMAP 5.0 on 127.0.0.1 for
/// integration tests, started with scripts/courier in a fresh temp directory
/// (own CA, userdb users alice/secret1 and bob/secret2 with Maildirs). The
/// Debian packages are unpacked once into a cache (Courier conflicts with the
/// installed Dovecot), so the first Start() on a machine downloads ~2 MB.
/// Courier's config and auth socket paths are compiled in (/etc/courier,
/// /run/courier), so the instance runs in its own mount namespace: that needs
/// root: Start() fails with kNeedsOperator when not root (tests skip with
/// WhyCannotRun()'s text instead). Each instance picks its own free ports,
/// so tests may run in parallel.

#include <string>
#include <vector>

#include "config_yaml.h"
#include "dovecot_server.h"  // ImapUser, FreeLoopbackPorts
#include "temp_dir.h"
#include "util/result.h"

namespace mailhook::testsupport {

/// One private Courier instance. Driven from one thread (the test). A failure
/// means the environment is broken (no apt access for the first download, not
/// root, port taken): the Error says which and how to fix. The destructor kills
/// the instance (its whole process group) and removes its directory.
class CourierServer {
 public:
  CourierServer();
  ~CourierServer();
  CourierServer(const CourierServer&) = delete;
  CourierServer& operator=(const CourierServer&) = delete;

  /// Empty when this process can run Courier; otherwise why not (for GTEST_SKIP).
  static std::string WhyCannotRun();

  /// Starts the instance on two free loopback ports (imaps, imap). Returns
  /// once both ports listen and both users have logged in once.
  util::Status Start();
  /// Graceful stop (SIGTERM to the instance's process group; waits for it).
  util::Status Stop();

  const std::string& host() const { return host_; }          ///< "127.0.0.1"
  const std::string& tls_name() const { return tls_name_; }  ///< "localhost" (in the cert)
  int imaps_port() const { return imaps_port_; }             ///< implicit TLS (couriertls)
  int imap_port() const { return imap_port_; }               ///< plain + STARTTLS, LOGIN allowed
  const std::string& ca_file() const { return ca_file_; }    ///< PEM of the test CA
  const std::string& dir() const { return dir_.path(); }
  /// authdaemond, couriertcpd and imapd log here (LOGIN, LOGOUT, errors).
  std::string log_path() const { return dir_.Sub("courier.log"); }
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
  int leader_pid_ = -1;
  std::string ca_file_;
  std::vector<ImapUser> users_;
};

/// One `accounts:` entry pointing at `server` (same rules as the Dovecot
/// overload in config_yaml.h: implicit → imaps port, ca_file set).
std::string AccountYaml(const CourierServer& server, const AccountSpec& spec);

}  // namespace mailhook::testsupport
