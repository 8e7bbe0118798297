#include "mailhook_process.h"

#include <signal.h>

#include <fstream>
#include <iostream>

#include <gtest/gtest.h>

#ifndef MAILHOOK_BINARY
#error "MAILHOOK_BINARY must be defined (path of the built mailhook)"
#endif

namespace mailhook::testsupport {

using util::Error;
using util::RetryClass;

std::string MailhookBinary() { return MAILHOOK_BINARY; }

util::Result<CommandResult> RunMailhook(const std::vector<std::string>& args, std::chrono::milliseconds timeout,
                                        const ChildOptions& options) {
  std::vector<std::string> argv{MailhookBinary()};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv, timeout, options);
}

MailhookProcess::MailhookProcess(std::string binary) : binary_(std::move(binary)), dir_("mailhook-daemon-") {
  args_ = {"run", "-c", config_path()};
}

MailhookProcess::~MailhookProcess() {
  if (child_) Kill9();
  // A failed test gets the daemon's log in its output.
  if (child_ && ::testing::Test::HasFailure()) {
    std::string log = child_->Stderr();
    if (log.size() > 8000) log = "…" + log.substr(log.size() - 8000);
    std::cerr << "---- mailhook stderr (" << log_path() << ")\n" << log << "----\n";
  }
}

util::Status MailhookProcess::WriteConfig(const std::string& yaml) {
  if (!WriteFile(config_path(), yaml)) {
    return Error("mailhook.config", RetryClass::kNeedsOperator, "cannot write " + config_path());
  }
  return util::Ok();
}

void MailhookProcess::SetEnv(const std::string& name, const std::string& value) {
  // A second SetEnv of the same name replaces the first (getenv would see
  // only the first of two entries).
  std::erase_if(env_, [&](const std::string& e) { return e.starts_with(name + "="); });
  env_.push_back(name + "=" + value);
}

util::Status MailhookProcess::Start() {
  if (child_ && child_->Running()) {
    return Error("mailhook.running", RetryClass::kNeedsOperator, "mailhook is already running");
  }
  std::vector<std::string> argv{binary_};
  argv.insert(argv.end(), args_.begin(), args_.end());
  ChildOptions options;
  options.env = env_;
  options.stderr_path = log_path();
  options.working_dir = dir();
  auto child = ChildProcess::Start(argv, options);
  if (!child.ok()) return child.error();
  child_ = std::move(child).value();
  return util::Ok();
}

util::Result<int> MailhookProcess::Terminate(std::chrono::milliseconds timeout) {
  if (!child_) return Error("mailhook.not_started", RetryClass::kNeedsOperator, "mailhook was never started");
  child_->Signal(SIGTERM);
  auto status = child_->Wait(timeout);
  if (!status) {
    Kill9();
    return Error(
        "mailhook.shutdown_timeout", RetryClass::kNeedsOperator,
        "mailhook did not exit within " + std::to_string(timeout.count()) + " ms of SIGTERM; it was SIGKILLed");
  }
  child_->WaitForEof(std::chrono::seconds(5));
  return *status;
}

void MailhookProcess::Kill9() {
  if (!child_) return;
  child_->Signal(SIGKILL);
  child_->Wait(std::chrono::seconds(10));
  child_->WaitForEof(std::chrono::seconds(2));
}

util::Status MailhookProcess::Restart() {
  if (child_ && child_->Running()) {
    auto status = Terminate();
    if (!status.ok()) return status.error();
  }
  return Start();
}

bool MailhookProcess::Running() { return child_ && child_->Running(); }

pid_t MailhookProcess::pid() const { return child_ ? child_->pid() : -1; }

long MailhookProcess::StatusKiB(const std::string& field) const {
  if (!child_) return -1;
  std::ifstream in("/proc/" + std::to_string(child_->pid()) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::stol(line.substr(field.size() + 1));
  }
  return -1;
}

std::optional<int> MailhookProcess::WaitForExit(std::chrono::milliseconds timeout) {
  if (!child_) return std::nullopt;
  return child_->Wait(timeout);
}

int MailhookProcess::HttpPort(std::chrono::milliseconds timeout) const {
  if (!WaitForLog("daemon.port_file", timeout)) return 0;
  const std::string text = ReadFile(state_dir() + "/http.port");
  return text.empty() ? 0 : std::atoi(text.c_str());
}

bool MailhookProcess::WaitForLog(const std::string& needle, std::chrono::milliseconds timeout, size_t from) const {
  return child_ && child_->WaitForStderr(needle, timeout, from);
}

std::string MailhookProcess::Log() const { return child_ ? child_->Stderr() : ""; }

std::string MailhookProcess::Stdout() const { return child_ ? child_->Stdout() : ""; }

size_t MailhookProcess::LogMark() const { return child_ ? child_->Stderr().size() : 0; }

}  // namespace mailhook::testsupport
