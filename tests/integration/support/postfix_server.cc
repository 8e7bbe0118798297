#include "postfix_server.h"

#include <unistd.h>

#include <iostream>
#include <thread>

#include <gtest/gtest.h>

#ifndef MAILHOOK_SOURCE_DIR
#error "MAILHOOK_SOURCE_DIR must be defined (the repository root, for scripts/postfix)"
#endif

namespace mailhook::testsupport {
namespace {

using util::Error;
using util::RetryClass;

}  // namespace

PostfixServer::PostfixServer()
    : dir_("mailhook-postfix-"), script_(std::string(MAILHOOK_SOURCE_DIR) + "/scripts/postfix") {}

PostfixServer::~PostfixServer() {
  // A failed test gets the server's side of the story in its output.
  if (::testing::Test::HasFailure()) {
    std::string log = ReadLog();
    if (log.size() > 4000) log = "…" + log.substr(log.size() - 4000);
    std::cerr << "---- postfix.log (" << log_path() << ")\n" << log << "----\n";
  }
  if (master_pid_ > 0) (void)RunScript({"stop", dir_.path(), "--kill"});
}

std::string PostfixServer::WhyCannotRun() {
  if (geteuid() != 0) {
    return "Postfix needs root: its master runs as root and its daemons as the postfix user (setuid), "
           "so a private instance cannot run unprivileged. Run the integration tests as root "
           "(scripts/test in the container) to cover the SMTP target against Postfix.";
  }
  return "";
}

DovecotOptions PostfixServer::DovecotOptionsFor(const DovecotServer& dovecot, DovecotOptions base) {
  // Not under Dovecot's base_dir (DIR/run): doveconf warns about absolute
  // listener paths there.
  base.auth_socket = dovecot.dir() + "/mta/auth";
  base.lmtp_socket = dovecot.dir() + "/mta/lmtp";
  return base;
}

util::Status PostfixServer::RunScript(const std::vector<std::string>& args) {
  return RunServerScript(script_, args, std::chrono::seconds(60),
                         "is Postfix installed (scripts/deps) and the Dovecot started with "
                         "PostfixServer::DovecotOptionsFor?");
}

util::Status PostfixServer::Start(const DovecotServer& dovecot, const PostfixOptions& options) {
  if (std::string why = WhyCannotRun(); !why.empty()) return Error("postfix.root", RetryClass::kNeedsOperator, why);
  if (dovecot.auth_socket().empty() || dovecot.lmtp_socket().empty()) {
    return Error("postfix.dovecot", RetryClass::kNeedsOperator,
                 "the Dovecot has no auth or LMTP socket: start it with PostfixServer::DovecotOptionsFor(dovecot)");
  }
  if (policy_.port() == 0) {
    auto s = policy_.Start();
    if (!s.ok()) return s;
  }
  util::Status last = util::Ok();
  // The port is released before Postfix binds it; another process may take
  // it in between, so retry with a new one.
  for (int attempt = 0; attempt < 3; ++attempt) {
    auto ports = FreeLoopbackPorts(1);
    if (ports.size() != 1) return Error("postfix.ports", RetryClass::kNeedsOperator, "cannot bind 127.0.0.1:0");
    std::vector<std::string> args{"start",
                                  dir_.path(),
                                  "--dovecot",
                                  dovecot.dir(),
                                  "--submission-port",
                                  std::to_string(ports[0]),
                                  "--policy-port",
                                  std::to_string(policy_.port())};
    for (const auto& address : options.rejected_recipients) {
      args.push_back("--reject");
      args.push_back(address);
    }
    last = RunScript(args);
    if (last.ok()) {
      std::map<std::string, std::string> env = ReadServerEnv(dir_.Sub("env"));
      if (env["POSTFIX_SUBMISSION_PORT"].empty() || env["POSTFIX_PID"].empty()) {
        return Error("postfix.env", RetryClass::kNeedsOperator, "scripts/postfix wrote no usable " + dir_.Sub("env"));
      }
      submission_port_ = std::stoi(env["POSTFIX_SUBMISSION_PORT"]);
      master_pid_ = std::stoi(env["POSTFIX_PID"]);
      ca_file_ = env["POSTFIX_CA_FILE"];
      return util::Ok();
    }
    (void)RunScript({"stop", dir_.path(), "--kill"});
  }
  return last;
}

util::Status PostfixServer::Stop() {
  auto s = RunScript({"stop", dir_.path()});
  if (s.ok()) master_pid_ = -1;
  return s;
}

std::string PostfixServer::ReadLog() const { return ReadFile(log_path()); }

bool PostfixServer::WaitForLog(const std::string& needle, std::chrono::milliseconds timeout) const {
  // Postfix writes its log through postlogd; nothing to block on but the file.
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (ReadLog().find(needle) == std::string::npos) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

}  // namespace mailhook::testsupport
