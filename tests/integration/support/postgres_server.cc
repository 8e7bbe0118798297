#include "postgres_server.h"

#include <glob.h>
#include <linux/magic.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>

#include <gtest/gtest.h>

#include "dovecot_server.h"

#ifndef MAILHOOK_SOURCE_DIR
#error "MAILHOOK_SOURCE_DIR must be defined (the repository root, for scripts/postgres)"
#endif

namespace mailhook::testsupport {
namespace {

using util::Error;
using util::RetryClass;

// Live and not a zombie: the postmaster is adopted by whatever reaps orphans,
// which may not have reaped it yet.
bool Alive(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) return false;
  auto close = line.rfind(')');
  return close != std::string::npos && close + 2 < line.size() && line[close + 2] != 'Z';
}

// Where the cluster's directory goes: MAILHOOK_POSTGRES_TMPDIR if set, else
// /dev/shm when it is a writable tmpfs with room, else $TMPDIR. Why tmpfs:
// measured on this machine under load, copying the 39 MB initdb template took
// 4.4 s onto the disk and 0.18 s onto /dev/shm, and a cluster is thrown away
// anyway. Containers often give /dev/shm only 64 MB: then the disk.
std::string ClusterParent() {
  if (const char* dir = std::getenv("MAILHOOK_POSTGRES_TMPDIR"); dir != nullptr && *dir != '\0') return dir;
  struct statfs fs {};
  constexpr unsigned long long kRoom = 512ull << 20;
  if (statfs("/dev/shm", &fs) == 0 && fs.f_type == TMPFS_MAGIC &&
      static_cast<unsigned long long>(fs.f_bavail) * fs.f_bsize >= kRoom && access("/dev/shm", W_OK | X_OK) == 0) {
    return "/dev/shm";
  }
  return "";
}

}  // namespace

PostgresServer::PostgresServer()
    : dir_("mailhook-postgres-", ClusterParent()), script_(std::string(MAILHOOK_SOURCE_DIR) + "/scripts/postgres") {}

PostgresServer::~PostgresServer() {
  // A failed test gets the server's side of the story in its output.
  if (::testing::Test::HasFailure()) {
    std::string log = ReadLog();
    if (log.size() > 4000) log = "…" + log.substr(log.size() - 4000);
    std::cerr << "---- postgres.log (" << log_path() << ")\n" << log << "----\n";
  }
  // Immediate: nothing of a throwaway cluster is worth a checkpoint. TempDir
  // then removes the directory.
  if (pid_ > 0) (void)RunScript({"stop", dir_.path(), "--kill"});
}

std::string PostgresServer::WhyCannotRun() {
  // Debian keeps the server's programs per major version, out of PATH.
  glob_t found{};
  const bool installed = glob("/usr/lib/postgresql/*/bin/initdb", 0, nullptr, &found) == 0 && found.gl_pathc > 0;
  globfree(&found);
  if (!installed && getenv("POSTGRES_BINDIR") == nullptr) {
    return "PostgreSQL's server is not installed (no /usr/lib/postgresql/*/bin/initdb): run scripts/deps "
           "(Debian packages postgresql and libpq-dev) to cover the PostgreSQL harness.";
  }
  return "";
}

util::Status PostgresServer::RunScript(const std::vector<std::string>& args) {
  return RunServerScript(script_, args, std::chrono::seconds(60),
                         "is PostgreSQL installed (scripts/deps: postgresql)? See " + log_path() + ".");
}

util::Status PostgresServer::LoadEnv() {
  std::map<std::string, std::string> env = ReadServerEnv(dir_.Sub("env"));
  if (env["POSTGRES_PORT"].empty() || env["POSTGRES_PID"].empty()) {
    return Error("postgres.env", RetryClass::kNeedsOperator, "scripts/postgres wrote no usable " + dir_.Sub("env"));
  }
  port_ = std::stoi(env["POSTGRES_PORT"]);
  pid_ = std::stoi(env["POSTGRES_PID"]);
  user_ = env["POSTGRES_USER"];
  database_ = env["POSTGRES_DATABASE"];
  password_ = env["POSTGRES_PASSWORD"];
  return util::Ok();
}

std::vector<std::string> PostgresServer::WithOwner(std::vector<std::string> args) {
  // This process owns the cluster: if it dies without the destructor, the
  // next cluster started beside it removes it (on /dev/shm it holds memory).
  // A kept test directory (MAILHOOK_KEEP_TEST_DIRS) is left alone.
  if (std::getenv("MAILHOOK_KEEP_TEST_DIRS") == nullptr) {
    args.push_back("--owner-pid");
    args.push_back(std::to_string(getpid()));
  }
  return args;
}

util::Status PostgresServer::Start(const PostgresOptions& options) {
  if (std::string why = WhyCannotRun(); !why.empty()) return Error("postgres.missing", RetryClass::kNeedsOperator, why);
  if (running()) return Error("postgres.running", RetryClass::kNeedsOperator, "already running: Stop() it first");
  // Started before: scripts/postgres reuses the port and password in DIR/env.
  if (port_ != 0) {
    auto s = RunScript(WithOwner({"start", dir_.path()}));
    if (!s.ok()) return s;
    return LoadEnv();
  }
  util::Status last = util::Ok();
  // The port is free when chosen but released before the postmaster binds
  // it; another process may take it in between, so retry with a new one.
  for (int attempt = 0; attempt < 3; ++attempt) {
    auto ports = FreeLoopbackPorts(1);
    if (ports.size() != 1) return Error("postgres.ports", RetryClass::kNeedsOperator, "cannot bind 127.0.0.1:0");
    std::vector<std::string> args = WithOwner({"start", dir_.path(), "--port", std::to_string(ports[0])});
    if (!options.password.empty()) {
      args.push_back("--password");
      args.push_back(options.password);
    }
    last = RunScript(args);
    if (last.ok()) return LoadEnv();
    (void)RunScript({"stop", dir_.path(), "--kill"});
  }
  return last;
}

util::Status PostgresServer::Stop() {
  auto s = RunScript({"stop", dir_.path()});
  if (s.ok()) pid_ = -1;
  return s;
}

util::Status PostgresServer::Kill() {
  auto s = RunScript({"stop", dir_.path(), "--kill"});
  if (s.ok()) pid_ = -1;
  return s;
}

util::Status PostgresServer::Restart() {
  if (running()) {
    auto s = Stop();
    if (!s.ok()) return s;
  }
  return Start();
}

bool PostgresServer::running() const { return pid_ > 0 && Alive(pid_); }

std::string PostgresServer::ConnectionUrl() const {
  std::string credentials = user_;
  // scripts/postgres allows only [A-Za-z0-9._-] in the password: no
  // percent-encoding needed.
  if (!password_.empty()) credentials += ":" + password_;
  return "postgresql://" + credentials + "@" + host_ + ":" + std::to_string(port_) + "/" + database_;
}

std::string PostgresServer::ReadLog() const { return ReadFile(log_path()); }

}  // namespace mailhook::testsupport
