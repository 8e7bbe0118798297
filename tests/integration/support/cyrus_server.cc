#include "cyrus_server.h"

#include <dirent.h>

#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "child_process.h"

#ifndef MAILHOOK_SOURCE_DIR
#error "MAILHOOK_SOURCE_DIR must be defined (the repository root, for scripts/cyrus)"
#endif

namespace mailhook::testsupport {
namespace {

using util::Error;
using util::RetryClass;

// Splits a Cyrus proc line ("service\thost\tuser\tmailbox\tcommand").
std::vector<std::string> SplitTabs(const std::string& line) {
  std::vector<std::string> out;
  std::istringstream in(line);
  std::string field;
  while (std::getline(in, field, '\t')) out.push_back(field);
  return out;
}

}  // namespace

CyrusServer::CyrusServer() : dir_("mailhook-cyrus-"), script_(std::string(MAILHOOK_SOURCE_DIR) + "/scripts/cyrus") {
  users_ = {{"alice", "secret1"}, {"bob", "secret2"}};
}

CyrusServer::~CyrusServer() {
  if (::testing::Test::HasFailure()) {
    std::cerr << "---- cyrus master.log (" << log_path() << ")\n" << ReadLog() << "----\n";
  }
  if (master_pid_ > 0) (void)RunScript({"stop", dir_.path(), "--kill"});
}

util::Status CyrusServer::RunScript(const std::vector<std::string>& args) {
  // The first start on a machine downloads the packages: allow for it.
  return RunServerScript(script_, args, std::chrono::seconds(120),
                         "the first start needs `apt-get download` to work (apt sources, network).");
}

util::Status CyrusServer::LoadEnv() {
  std::map<std::string, std::string> env = ReadServerEnv(dir_.Sub("env"));
  if (env["CYRUS_IMAPS_PORT"].empty() || env["CYRUS_PID"].empty()) {
    return Error("cyrus.env", RetryClass::kNeedsOperator, "scripts/cyrus wrote no usable " + dir_.Sub("env"));
  }
  imaps_port_ = std::stoi(env["CYRUS_IMAPS_PORT"]);
  imap_port_ = std::stoi(env["CYRUS_IMAP_PORT"]);
  master_pid_ = std::stoi(env["CYRUS_PID"]);
  ca_file_ = env["CYRUS_CA_FILE"];
  return util::Ok();
}

util::Status CyrusServer::Start() {
  util::Status last = util::Ok();
  // The ports are released before Cyrus binds them; another process may take
  // one in between, so retry with new ones.
  for (int attempt = 0; attempt < 3; ++attempt) {
    auto ports = FreeLoopbackPorts(2);
    if (ports.size() != 2) return Error("cyrus.ports", RetryClass::kNeedsOperator, "cannot bind 127.0.0.1:0");
    last = RunScript(
        {"start", dir_.path(), "--imaps-port", std::to_string(ports[0]), "--imap-port", std::to_string(ports[1])});
    if (last.ok()) return LoadEnv();
    (void)RunScript({"stop", dir_.path(), "--kill"});
  }
  return last;
}

util::Status CyrusServer::Stop() {
  auto s = RunScript({"stop", dir_.path()});
  if (s.ok()) master_pid_ = -1;
  return s;
}

bool CyrusServer::running() const {
  if (master_pid_ <= 0) return false;
  std::ifstream in("/proc/" + std::to_string(master_pid_) + "/stat");
  std::string line;
  if (!std::getline(in, line)) return false;
  auto close = line.rfind(')');
  return close != std::string::npos && close + 2 < line.size() && line[close + 2] != 'Z';
}

bool CyrusServer::WaitForIdleSessions(const std::string& user, size_t n, std::chrono::milliseconds timeout) const {
  // Cyrus rewrites proc/<pid> on every command; there is nothing to wait on
  // but the files themselves, so poll them with a deadline.
  const std::string proc = dir_.Sub("conf/proc");
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    size_t idle = 0;
    if (DIR* d = opendir(proc.c_str())) {
      while (dirent* e = readdir(d)) {
        if (e->d_name[0] == '.') continue;
        std::string line = ReadFile(proc + "/" + e->d_name);
        while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
        auto f = SplitTabs(line);
        if (f.size() >= 5 && f[2] == user && f[4] == "Idle") ++idle;
      }
      closedir(d);
    }
    if (idle >= n) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

std::string CyrusServer::ReadLog() const { return ReadFile(log_path()); }

std::string CyrusServer::password(const std::string& user) const {
  for (const auto& u : users_) {
    if (u.name == user) return u.password;
  }
  return "";
}

std::vector<std::pair<std::string, std::string>> CyrusServer::user_pairs() const {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& u : users_) out.emplace_back(u.name, u.password);
  return out;
}

std::string AccountYaml(const CyrusServer& server, const AccountSpec& spec) {
  int port = spec.tls == "implicit" ? server.imaps_port() : server.imap_port();
  std::string folders;
  for (const auto& f : spec.folders) folders += (folders.empty() ? "" : ", ") + Quote(f);
  std::string out = "{name: " + Quote(spec.name) + ", host: " + Quote(spec.host) + ", port: " + std::to_string(port) +
                    ", tls: " + spec.tls + ", ca_file: " + Quote(server.ca_file()) + ", username: " + Quote(spec.user) +
                    ", password: " + Quote(server.password(spec.user)) + ", folders: [" + folders +
                    "], start_from: " + spec.start_from;
  if (spec.tls == "none") out += ", allow_insecure: true";
  if (!spec.extra.empty()) out += ", " + spec.extra;
  return out + "}";
}

}  // namespace mailhook::testsupport
