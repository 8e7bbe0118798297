#pragma once
/// PostgresServer: a private, real PostgreSQL (Debian's, 15) for integration
/// tests, started with scripts/postgres in a fresh temp directory: a cluster
/// made by initdb, listening on a unix socket in that directory and on a free
/// 127.0.0.1 port only, fsync off, with the role `mailhook` (LOGIN, not a
/// superuser) owning the database `mailhook`. Runs as the caller, or as the
/// system user mailhooktest when the tests run as root (initdb and the
/// postmaster refuse root). Each instance picks its own port, so tests may run
/// in parallel. The directory is on /dev/shm when that is a tmpfs with room
/// (MAILHOOK_POSTGRES_TMPDIR overrides), else under $TMPDIR; initdb runs once
/// per PostgreSQL build and its output is copied from
/// ~/.cache/mailhook/postgres-initdb-* (see scripts/postgres). A cluster whose
/// test process died without the destructor is removed by the next start.

#include <sys/types.h>

#include <string>
#include <vector>

#include "temp_dir.h"
#include "util/result.h"

namespace mailhook::testsupport {

/// How to configure the instance (scripts/postgres start options).
struct PostgresOptions {
  /// Non-empty: TCP connections need this password (scram-sha-256) and
  /// ConnectionUrl() carries it; empty: TCP is trusted. Letters, digits and
  /// `._-` only (a fixture, not a secret). Fixed by the first Start().
  std::string password = {};
};

/// One private PostgreSQL cluster. Driven from one thread (the test). A
/// failure means the environment is broken (PostgreSQL missing: scripts/deps;
/// port taken): the Error says which. Stop() keeps the data, so Start() after
/// it (or Restart()) is the same database on the same port. The destructor
/// stops the cluster at once (immediate shutdown) and removes its directory.
class PostgresServer {
 public:
  PostgresServer();
  ~PostgresServer();
  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;

  /// Empty when a cluster can run here (Debian's postgresql installed);
  /// otherwise why not and how to fix it (for GTEST_SKIP).
  static std::string WhyCannotRun();

  /// First call: initdb, then start on a free loopback port. Later calls
  /// (after Stop()): start the same cluster on the same port. Returns once
  /// 127.0.0.1:port accepts connections (pg_ctl -w, then pg_isready).
  /// Measured at load average 8: about 1.1 s from the cached template on
  /// tmpfs (5-8 s with initdb on disk); a restart about 1 s.
  util::Status Start(const PostgresOptions& options = {});
  /// Fast shutdown (open transactions rolled back, clients disconnected);
  /// waits until the postmaster has exited. The data stays.
  util::Status Stop();
  /// Immediate shutdown, as a crash would look to clients (the next Start()
  /// recovers from the WAL); waits until the postmaster has exited.
  util::Status Kill();
  /// Stop() then Start(): same port, same data, a new postmaster.
  util::Status Restart();

  bool running() const;
  /// The postmaster's pid while running, else -1.
  pid_t pid() const { return pid_; }
  /// postgresql://mailhook[:password]@127.0.0.1:<port>/mailhook
  std::string ConnectionUrl() const;
  const std::string& host() const { return host_; }  ///< "127.0.0.1"
  int port() const { return port_; }
  const std::string& user() const { return user_; }          ///< "mailhook"
  const std::string& database() const { return database_; }  ///< "mailhook"
  const std::string& password() const { return password_; }  ///< PostgresOptions::password
  /// The folder of the unix socket (.s.PGSQL.<port>), for `host=` in libpq.
  std::string socket_dir() const { return dir_.Sub("run"); }
  const std::string& dir() const { return dir_.path(); }
  std::string data_dir() const { return dir_.Sub("data"); }
  std::string log_path() const { return dir_.Sub("postgres.log"); }
  std::string ReadLog() const;

 private:
  util::Status RunScript(const std::vector<std::string>& args);
  util::Status LoadEnv();
  /// `args` plus --owner-pid <this process> (see scripts/postgres).
  static std::vector<std::string> WithOwner(std::vector<std::string> args);

  TempDir dir_;
  std::string script_;
  std::string host_ = "127.0.0.1";
  std::string user_ = "mailhook";
  std::string database_ = "mailhook";
  std::string password_;
  int port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace mailhook::testsupport
