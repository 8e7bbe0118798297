#include "courier_server.h"

#include <unistd.h>

#include <iostream>
#include <map>

#include <gtest/gtest.h>

#include "child_process.h"

#ifndef MAILHOOK_SOURCE_DIR
#error "MAILHOOK_SOURCE_DIR must be defined (the repository root, for scripts/courier)"
#endif

namespace mailhook::testsupport {

using util::Error;
using util::RetryClass;

CourierServer::CourierServer()
    : dir_("mailhook-courier-"), script_(std::string(MAILHOOK_SOURCE_DIR) + "/scripts/courier") {
  users_ = {{"alice", "secret1"}, {"bob", "secret2"}};
}

CourierServer::~CourierServer() {
  if (::testing::Test::HasFailure()) {
    std::cerr << "---- courier.log (" << log_path() << ")\n" << ReadLog() << "----\n";
  }
  if (leader_pid_ > 0) (void)RunScript({"stop", dir_.path(), "--kill"});
}

std::string CourierServer::WhyCannotRun() {
  if (geteuid() != 0) {
    return "Courier-IMAP needs root: its paths (/etc/courier, /run/courier) are compiled in, so the test "
           "instance runs in a private mount namespace (unshare --mount + overlays), which only root may "
           "make. Run the integration tests as root (scripts/test in the container) to cover Courier.";
  }
  // Root in a container without CAP_SYS_ADMIN cannot make one either.
  auto probe = RunCommand({"unshare", "--mount", "--propagation", "private", "true"}, std::chrono::seconds(10));
  if (!probe.ok() || probe->exit_code != 0) {
    return "Courier-IMAP needs a private mount namespace, and `unshare --mount` failed here (" +
           (probe.ok() ? probe->err : probe.error().ToString()) +
           "): a container needs CAP_SYS_ADMIN (docker run --cap-add SYS_ADMIN) to cover Courier.";
  }
  return "";
}

util::Status CourierServer::RunScript(const std::vector<std::string>& args) {
  // The first start on a machine downloads the packages: allow for it.
  return RunServerScript(script_, args, std::chrono::seconds(120),
                         "the first start needs `apt-get download` to work (apt sources, network) and root.");
}

util::Status CourierServer::LoadEnv() {
  std::map<std::string, std::string> env = ReadServerEnv(dir_.Sub("env"));
  if (env["COURIER_IMAPS_PORT"].empty() || env["COURIER_PID"].empty()) {
    return Error("courier.env", RetryClass::kNeedsOperator, "scripts/courier wrote no usable " + dir_.Sub("env"));
  }
  imaps_port_ = std::stoi(env["COURIER_IMAPS_PORT"]);
  imap_port_ = std::stoi(env["COURIER_IMAP_PORT"]);
  leader_pid_ = std::stoi(env["COURIER_PID"]);
  ca_file_ = env["COURIER_CA_FILE"];
  return util::Ok();
}

util::Status CourierServer::Start() {
  if (std::string why = WhyCannotRun(); !why.empty()) return Error("courier.root", RetryClass::kNeedsOperator, why);
  util::Status last = util::Ok();
  // The ports are released before Courier binds them; another process may
  // take one in between, so retry with new ones.
  for (int attempt = 0; attempt < 3; ++attempt) {
    auto ports = FreeLoopbackPorts(2);
    if (ports.size() != 2) return Error("courier.ports", RetryClass::kNeedsOperator, "cannot bind 127.0.0.1:0");
    last = RunScript(
        {"start", dir_.path(), "--imaps-port", std::to_string(ports[0]), "--imap-port", std::to_string(ports[1])});
    if (last.ok()) return LoadEnv();
    (void)RunScript({"stop", dir_.path(), "--kill"});
  }
  return last;
}

util::Status CourierServer::Stop() {
  auto s = RunScript({"stop", dir_.path()});
  if (s.ok()) leader_pid_ = -1;
  return s;
}

std::string CourierServer::ReadLog() const { return ReadFile(log_path()); }

std::string CourierServer::password(const std::string& user) const {
  for (const auto& u : users_) {
    if (u.name == user) return u.password;
  }
  return "";
}

std::vector<std::pair<std::string, std::string>> CourierServer::user_pairs() const {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& u : users_) out.emplace_back(u.name, u.password);
  return out;
}

std::string AccountYaml(const CourierServer& server, const AccountSpec& spec) {
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
