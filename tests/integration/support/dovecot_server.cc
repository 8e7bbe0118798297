#include "dovecot_server.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "child_process.h"

#ifndef MAILHOOK_SOURCE_DIR
#error "MAILHOOK_SOURCE_DIR must be defined (the repository root, for scripts/dovecot)"
#endif

namespace mailhook::testsupport {
namespace {

using util::Error;
using util::RetryClass;

const char* CertName(ServerCert cert) {
  switch (cert) {
    case ServerCert::kGood: return "good";
    case ServerCert::kWrongName: return "wrong";
    case ServerCert::kUntrusted: return "untrusted";
  }
  return "good";
}

// /proc/<pid>/stat: "pid (comm) state ppid ..."; comm may contain spaces.
bool ReadStat(pid_t pid, std::string* comm, char* state, pid_t* ppid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) return false;
  auto open = line.find('(');
  auto close = line.rfind(')');
  if (open == std::string::npos || close == std::string::npos || close + 4 > line.size()) return false;
  *comm = line.substr(open + 1, close - open - 1);
  std::istringstream rest(line.substr(close + 2));
  rest >> *state >> *ppid;
  return static_cast<bool>(rest);
}

bool Alive(pid_t pid) {
  std::string comm;
  char state = 0;
  pid_t ppid = 0;
  return ReadStat(pid, &comm, &state, &ppid) && state != 'Z';
}

// Live children of `parent` whose command name is `name`.
std::vector<pid_t> ChildrenNamed(pid_t parent, const std::string& name) {
  std::vector<pid_t> out;
  DIR* d = opendir("/proc");
  if (d == nullptr) return out;
  while (dirent* e = readdir(d)) {
    char* end = nullptr;
    long pid = std::strtol(e->d_name, &end, 10);
    if (end == e->d_name || *end != '\0') continue;
    std::string comm;
    char state = 0;
    pid_t ppid = 0;
    if (ReadStat(static_cast<pid_t>(pid), &comm, &state, &ppid) && ppid == parent && comm == name && state != 'Z') {
      out.push_back(static_cast<pid_t>(pid));
    }
  }
  closedir(d);
  return out;
}

// Polls a condition that has no file descriptor or notifier to wait on
// (another process's state in /proc), with a deadline.
template <typename Pred>
bool PollUntil(Pred pred, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

}  // namespace

std::vector<int> FreeLoopbackPorts(size_t n) {
  std::vector<int> fds, ports;
  // Keep all sockets bound until every port is chosen, so they are distinct.
  for (size_t i = 0; i < n; ++i) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      if (fd >= 0) close(fd);
      break;
    }
    fds.push_back(fd);
    ports.push_back(ntohs(addr.sin_port));
  }
  for (int fd : fds) close(fd);
  return ports;
}

DovecotServer::DovecotServer()
    : dir_("mailhook-dovecot-"), script_(std::string(MAILHOOK_SOURCE_DIR) + "/scripts/dovecot") {
  users_ = {{"alice", "secret1"}, {"bob", "secret2"}};
}

DovecotServer::~DovecotServer() {
  // A failed test gets the server's side of the story in its output.
  if (::testing::Test::HasFailure()) {
    std::string log = ReadLog();
    if (log.size() > 4000) log = "…" + log.substr(log.size() - 4000);
    std::cerr << "---- dovecot.log (" << log_path() << ")\n" << log << "----\n";
  }
  if (master_pid_ > 0) (void)RunScript({"stop", dir_.path(), "--kill"});
}

util::Status RunServerScript(const std::string& script, const std::vector<std::string>& args,
                             std::chrono::seconds timeout, const std::string& hint) {
  std::vector<std::string> argv{script};
  argv.insert(argv.end(), args.begin(), args.end());
  auto r = RunCommand(argv, timeout);
  if (!r.ok()) return r.error();
  if (r->exit_code != 0) {
    const std::string name = std::filesystem::path(script).filename().string();
    return Error(name + ".script", RetryClass::kNeedsOperator,
                 "scripts/" + name + " " + args[0] + " failed (exit " + std::to_string(r->exit_code) + "); " + hint +
                     " stderr: " + r->err);
  }
  return util::Ok();
}

util::Status DovecotServer::RunScript(const std::vector<std::string>& args) {
  return RunServerScript(script_, args, std::chrono::seconds(60), "is Dovecot installed (scripts/deps)?");
}

std::map<std::string, std::string> ReadServerEnv(const std::string& path) {
  std::ifstream in(path);
  std::map<std::string, std::string> env;
  std::string line;
  while (std::getline(in, line)) {
    auto eq = line.find('=');
    if (eq != std::string::npos) env[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return env;
}

util::Status DovecotServer::LoadEnv() {
  std::map<std::string, std::string> env = ReadServerEnv(dir_.Sub("env"));
  if (env["DOVECOT_IMAPS_PORT"].empty() || env["DOVECOT_PID"].empty()) {
    return Error("dovecot.env", RetryClass::kNeedsOperator, "scripts/dovecot wrote no usable " + dir_.Sub("env"));
  }
  imaps_port_ = std::stoi(env["DOVECOT_IMAPS_PORT"]);
  imap_port_ = std::stoi(env["DOVECOT_IMAP_PORT"]);
  master_pid_ = std::stoi(env["DOVECOT_PID"]);
  ca_file_ = env["DOVECOT_CA_FILE"];
  auth_socket_ = env["DOVECOT_AUTH_SOCKET"] == "none" ? "" : env["DOVECOT_AUTH_SOCKET"];
  lmtp_socket_ = env["DOVECOT_LMTP_SOCKET"] == "none" ? "" : env["DOVECOT_LMTP_SOCKET"];
  return util::Ok();
}

util::Status DovecotServer::Start(ServerCert cert) {
  DovecotOptions options;
  options.cert = cert;
  return Start(options);
}

util::Status DovecotServer::Start(const DovecotOptions& options) {
  const ServerCert cert = options.cert;
  cert_ = cert;
  util::Status last = util::Ok();
  // The ports are free when chosen but released before Dovecot binds them;
  // another process may take one in between, so retry with new ones.
  for (int attempt = 0; attempt < 3; ++attempt) {
    auto ports = FreeLoopbackPorts(2);
    if (ports.size() != 2) return Error("dovecot.ports", RetryClass::kNeedsOperator, "cannot bind 127.0.0.1:0");
    // scripts/dovecot records --notify and the limit in DIR/env: restarts keep them.
    std::vector<std::string> args = {
        "start",
        dir_.path(),
        "--imaps-port",
        std::to_string(ports[0]),
        "--imap-port",
        std::to_string(ports[1]),
        "--cert",
        CertName(cert),
        "--notify",
        options.notify ? "yes" : "no",
        "--max-userip-connections",
        std::to_string(options.max_userip_connections),
        "--oauth2-introspection",
        options.oauth2_introspection_url.empty() ? "none" : options.oauth2_introspection_url,
        "--auth-socket",
        options.auth_socket.empty() ? "none" : options.auth_socket,
        "--lmtp-socket",
        options.lmtp_socket.empty() ? "none" : options.lmtp_socket};
    args.insert(args.end(), {"--extra-users", std::to_string(options.extra_users)});
    last = RunScript(args);
    if (last.ok()) {
      users_.resize(2);  // alice and bob
      for (int i = 1; i <= options.extra_users; ++i) {
        const std::string n = (i < 10 ? "0" : "") + std::to_string(i);
        users_.push_back({"user" + n, "pass" + n});
      }
      return LoadEnv();
    }
  }
  return last;
}

util::Status DovecotServer::Stop() {
  auto s = RunScript({"stop", dir_.path()});
  if (s.ok()) master_pid_ = -1;
  return s;
}

util::Status DovecotServer::Restart() { return RestartWithCert(cert_); }

util::Status DovecotServer::RestartWithCert(ServerCert cert) {
  if (running()) {
    auto s = Stop();
    if (!s.ok()) return s;
  }
  cert_ = cert;
  // Same DIR: scripts/dovecot reuses the ports recorded in DIR/env.
  auto s = RunScript({"start", dir_.path(), "--cert", CertName(cert)});
  if (!s.ok()) return s;
  return LoadEnv();
}

bool DovecotServer::running() const { return master_pid_ > 0 && Alive(master_pid_); }

std::vector<pid_t> DovecotServer::SessionPids() const {
  if (master_pid_ <= 0) return {};
  return ChildrenNamed(master_pid_, "imap");
}

bool DovecotServer::WaitForSessions(size_t n, std::chrono::milliseconds timeout) const {
  return PollUntil([&] { return SessionPids().size() >= n; }, timeout);
}

std::vector<std::string> DovecotServer::SessionTitles() const {
  std::vector<std::string> titles;
  for (pid_t pid : SessionPids()) {
    std::string title = ReadFile("/proc/" + std::to_string(pid) + "/cmdline");
    for (char& c : title) c = c == '\0' ? ' ' : c;
    titles.push_back(title);
  }
  return titles;
}

bool DovecotServer::WaitForSessionTitle(const std::string& text, std::chrono::milliseconds timeout) const {
  return PollUntil(
      [&] {
        for (const auto& title : SessionTitles()) {
          if (title.find(text) != std::string::npos) return true;
        }
        return false;
      },
      timeout);
}

bool DovecotServer::WaitForSessionsAtMost(size_t n, std::chrono::milliseconds timeout) const {
  return PollUntil([&] { return SessionPids().size() <= n; }, timeout);
}

util::Result<int> DovecotServer::KillSessionProcesses() {
  if (!running()) return Error("dovecot.not_running", RetryClass::kNeedsOperator, "Dovecot is not running");
  auto pids = SessionPids();
  for (pid_t pid : pids) kill(pid, SIGKILL);
  bool gone = PollUntil(
      [&] {
        for (pid_t pid : pids) {
          if (Alive(pid)) return false;
        }
        return true;
      },
      std::chrono::seconds(10));
  if (!gone) return Error("dovecot.kill", RetryClass::kNeedsOperator, "imap processes survived SIGKILL for 10 s");
  RemoveDotlocksOf(pids);
  return static_cast<int>(pids.size());
}

// A session killed inside a command can leave Maildir's dovecot-uidlist.lock
// (a dotlock holding "PID:HOST") behind, and Dovecot honours it until its
// 2-minute stale timeout: every session of that user then waits on it (a
// full-run failure of KilledSession: an APPEND 61 s "in locks", ended 2 min
// after the kill). Locks of the killed pids are removed, as Dovecot would at
// that timeout; a lock of a live session is never touched.
void DovecotServer::RemoveDotlocksOf(const std::vector<pid_t>& pids) const {
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(dir_.path(), ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (it->path().filename() != "dovecot-uidlist.lock") continue;
    const std::string owner = ReadFile(it->path().string());
    const pid_t pid = static_cast<pid_t>(std::atol(owner.c_str()));
    if (std::find(pids.begin(), pids.end(), pid) == pids.end()) continue;
    std::cerr << "DovecotServer: removed " << it->path().string() << ", left by killed session " << pid << "\n";
    std::filesystem::remove(it->path(), ec);
  }
}

namespace {
const char* CertFileBase(ServerCert cert) {
  switch (cert) {
    case ServerCert::kGood: return "server";
    case ServerCert::kWrongName: return "wrong";
    case ServerCert::kUntrusted: return "untrusted";
  }
  return "server";
}
}  // namespace

std::string DovecotServer::cert_file(ServerCert cert) const {
  return dir_.Sub(std::string("tls/") + CertFileBase(cert) + ".pem");
}

std::string DovecotServer::key_file(ServerCert cert) const {
  return dir_.Sub(std::string("tls/") + CertFileBase(cert) + ".key");
}

std::string DovecotServer::ReadLog() const { return ReadFile(log_path()); }

std::string DovecotServer::password(const std::string& user) const {
  for (const auto& u : users_) {
    if (u.name == user) return u.password;
  }
  return "";
}

}  // namespace mailhook::testsupport
