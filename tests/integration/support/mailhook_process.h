#pragma once
/// MailhookProcess: the real `mailhook run -c FILE` as a child process, with
/// its config in a private temp dir and its stderr (the daemon's log)
/// captured, so tests can wait for log lines, stop it cleanly, crash it
/// (SIGKILL) and start it again on the same state.

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "child_process.h"
#include "temp_dir.h"
#include "util/result.h"

namespace mailhook::testsupport {

/// Path of the built mailhook binary (from the build system).
std::string MailhookBinary();

/// Runs `mailhook ARGS…` to completion (e.g. "check", "parse", "version").
util::Result<CommandResult> RunMailhook(const std::vector<std::string>& args,
                                        std::chrono::milliseconds timeout = std::chrono::seconds(30),
                                        const ChildOptions& options = {});

/// One daemon under test. Driven from one thread; Log()/WaitForLog() may be
/// called from others. The destructor SIGKILLs a daemon still running and
/// removes the temp dir (with its state) unless MAILHOOK_KEEP_TEST_DIRS is set.
class MailhookProcess {
 public:
  /// `binary` defaults to the built mailhook; tests of the harness pass another.
  explicit MailhookProcess(std::string binary = MailhookBinary());
  ~MailhookProcess();
  MailhookProcess(const MailhookProcess&) = delete;
  MailhookProcess& operator=(const MailhookProcess&) = delete;

  /// The private directory; state_dir() is inside it (not created: the daemon
  /// should create its own state dir).
  const std::string& dir() const { return dir_.path(); }
  std::string state_dir() const { return dir_.Sub("state"); }
  std::string config_path() const { return dir_.Sub("mailhook.yaml"); }
  /// All stderr of every run, appended (for post-mortems).
  std::string log_path() const { return dir_.Sub("mailhook.log"); }

  /// Writes the config file (YAML text as given).
  util::Status WriteConfig(const std::string& yaml);
  /// Sets NAME=value in the child's environment for the next Start(),
  /// replacing an earlier value (an empty value turns a test fault point off).
  void SetEnv(const std::string& name, const std::string& value);
  /// Replaces the default argv tail ("run", "-c", config_path()).
  void SetArgs(std::vector<std::string> args) { args_ = std::move(args); }

  /// Starts the daemon. Error if it is already running or cannot be spawned.
  util::Status Start();
  /// SIGTERM, then waits up to `timeout` for exit. Returns the exit status
  /// (128+N for signal N); Error if it had to be SIGKILLed after the timeout.
  util::Result<int> Terminate(std::chrono::milliseconds timeout = std::chrono::seconds(20));
  /// SIGKILL (a crash: no cleanup), and waits for it to be gone.
  void Kill9();
  /// Terminate() if running, then Start() on the same config and state.
  util::Status Restart();
  bool Running();
  /// The running daemon's pid; -1 when none runs.
  pid_t pid() const;
  /// A /proc/PID/status field of the running daemon in KiB ("VmHWM": peak
  /// RSS, "VmRSS"); -1 when no daemon runs or the field is missing.
  long StatusKiB(const std::string& field) const;
  /// The HTTP port of this run (http.listen with port 0 picks one): waits
  /// for the daemon's "daemon.port_file" event, then reads
  /// <state_dir>/http.port. 0 on timeout or when the daemon has no HTTP.
  int HttpPort(std::chrono::milliseconds timeout = std::chrono::seconds(10)) const;
  /// Waits for the daemon to exit by itself; the exit status or nullopt.
  std::optional<int> WaitForExit(std::chrono::milliseconds timeout);

  /// Waits until `needle` appears in this run's stderr at or after `from`
  /// (a LogMark()). False on timeout or if the daemon exited without it.
  bool WaitForLog(const std::string& needle, std::chrono::milliseconds timeout, size_t from = 0) const;
  /// This run's stderr so far.
  std::string Log() const;
  /// This run's stdout so far.
  std::string Stdout() const;
  /// Current length of this run's stderr: pass to WaitForLog to only match
  /// lines logged after this point.
  size_t LogMark() const;

 private:
  std::string binary_;
  TempDir dir_;
  std::vector<std::string> args_;
  std::vector<std::string> env_;
  std::unique_ptr<ChildProcess> child_;
};

}  // namespace mailhook::testsupport
