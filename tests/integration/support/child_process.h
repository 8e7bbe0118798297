#pragma once
/// ChildProcess: a subprocess started with posix_spawn for tests, whose stdout
/// and stderr are captured by a reader thread (and optionally appended to
/// files), so tests can wait on "this text appeared" and "it exited" with a
/// condition variable and a timeout instead of sleeping.

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "util/result.h"

namespace mailhook::testsupport {

/// How to start a child.
struct ChildOptions {
  std::vector<std::string> env;  ///< extra "NAME=value" entries; override inherited ones
  std::string stdin_path;        ///< empty: /dev/null
  std::string stdout_path;       ///< if set, stdout is also appended here
  std::string stderr_path;       ///< if set, stderr is also appended here
  std::string working_dir;       ///< empty: inherit
};

/// A running (or finished) child. The owner drives it from one thread; the
/// capture accessors and waits are thread-safe. The destructor SIGKILLs the
/// child's process group if it is still running and reaps it.
class ChildProcess {
 public:
  /// Starts argv (argv[0] is searched in PATH) in its own process group.
  /// Fails if the pipes or posix_spawn fail (e.g. the binary does not exist).
  static util::Result<std::unique_ptr<ChildProcess>> Start(const std::vector<std::string>& argv,
                                                           const ChildOptions& options = {});
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }

  /// Sends `sig` to the child (or, with group=true, to its process group).
  /// False if it has already been reaped.
  bool Signal(int sig, bool group = false);

  /// Waits for exit up to `timeout`. Returns the exit status: the exit code,
  /// or 128+N when killed by signal N; nullopt on timeout.
  std::optional<int> Wait(std::chrono::milliseconds timeout);
  /// True until the child has exited (reaps it if it has).
  bool Running();

  /// Captured output so far (all of it, since start).
  std::string Stdout() const;
  std::string Stderr() const;
  /// Waits until `needle` occurs in stderr at or after byte `from`; false on
  /// timeout or when stderr closed without it.
  bool WaitForStderr(std::string_view needle, std::chrono::milliseconds timeout, size_t from = 0) const;
  /// The same for stdout.
  bool WaitForStdout(std::string_view needle, std::chrono::milliseconds timeout, size_t from = 0) const;
  /// Waits until both streams reached EOF (all output captured).
  bool WaitForEof(std::chrono::milliseconds timeout) const;

 private:
  ChildProcess() = default;
  void ReadLoop(int out_fd, int err_fd, int out_file, int err_file);
  bool WaitFor(const std::string ChildProcess::*stream, std::string_view needle, std::chrono::milliseconds timeout,
               size_t from) const;
  bool Reap(int options);

  pid_t pid_ = -1;
  int pidfd_ = -1;
  std::optional<int> status_;
  std::thread reader_;

  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  std::string stdout_;  // guarded by mu_
  std::string stderr_;  // guarded by mu_
  bool eof_ = false;    // guarded by mu_
};

/// Result of a one-shot command.
struct CommandResult {
  int exit_code = -1;  ///< exit code, 128+N for signal N, -1 if it timed out (then killed)
  std::string out;
  std::string err;
};

/// Runs argv to completion (killed after `timeout`) and returns its output.
/// Fails only if it could not be started.
util::Result<CommandResult> RunCommand(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
                                       const ChildOptions& options = {});

}  // namespace mailhook::testsupport
