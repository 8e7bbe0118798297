#pragma once
/// RunProcess: run a command WITHOUT a shell (argv as given), feed it stdin,
/// capture stdout/stderr, and enforce a timeout by killing its whole process
/// group. Used for `*_command` secrets (config) and hook commands (delivery).
///
/// What the child gets: mailhook's environment holds the secrets the config
/// reads with ${NAME}, and its descriptors include IMAP sockets, libetpan's
/// cancel pipes and the HTTP server's sockets, while a hook runs on bytes an
/// attacker chose. So the child never inherits either: its environment is the
/// base set (IsBaseEnvironmentName) taken from mailhook's own, plus the names in
/// ProcessSpec::pass_env, plus ProcessSpec::env; its descriptors are stdin,
/// stdout and stderr only (every descriptor above 2 is closed at exec).
///
/// Thread-safety: RunProcess may be called from several threads at once. It
/// blocks the calling thread until the child is reaped. While it runs, SIGPIPE
/// is blocked in the calling thread only (so a child that does not read its
/// stdin cannot kill the daemon); the process-wide disposition is untouched.
///
/// Failure: an Error is returned only when the child could not be started
/// (empty argv, executable not found or not executable, pipe/fork failure).
/// A child that runs and fails is a ProcessResult with exit_code != 0,
/// timed_out == true or cancelled == true.

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "util/result.h"

namespace mailhook::util {

/// What to run and how.
struct ProcessSpec {
  std::vector<std::string> argv;  ///< argv[0] is looked up in PATH unless it has a '/'
  /// Written to the child's stdin, then stdin is closed. Borrowed (an event
  /// may be large): the bytes must outlive RunProcess.
  std::string_view stdin_data;
  /// Set for the child on top of the base environment; a later entry with the
  /// same name wins. Values may be secrets: they are never logged.
  std::vector<std::pair<std::string, std::string>> env;
  /// Further names copied from mailhook's own environment (when set there).
  std::vector<std::string> pass_env;
  std::chrono::milliseconds timeout{30000};  ///< then SIGKILL to the whole group
  size_t max_output = 1024 * 1024;           ///< per stream; more is read and discarded
  /// Optional (borrowed, not closed): when this fd becomes readable or hangs up
  /// (an eventfd or a pipe written by another thread), the whole group is
  /// SIGKILLed at once and ProcessResult::cancelled is set. -1: none.
  int cancel_fd = -1;
};

/// Whether every child gets `name` from mailhook's own environment (the base
/// set): PATH, HOME, LANG, LC_* (all locale variables), TZ, TMPDIR, MAILHOOK_*.
bool IsBaseEnvironmentName(std::string_view name);

/// The child's environment as "NAME=value" strings: the base set and
/// `pass_env` from `parent` (environ-style, NULL-terminated; null: none), then
/// `env` (a later entry with the same name replacing an earlier one).
std::vector<std::string> ChildEnvironment(char* const* parent, const std::vector<std::string>& pass_env,
                                          const std::vector<std::pair<std::string, std::string>>& env);

/// What happened to the child.
struct ProcessResult {
  int exit_code = 0;        ///< exit status, or -N when killed by signal N
  bool timed_out = false;   ///< killed because it ran past ProcessSpec::timeout
  bool cancelled = false;   ///< killed because ProcessSpec::cancel_fd became readable
  std::string stdout_data;  ///< at most max_output bytes
  std::string stderr_data;  ///< at most max_output bytes
  bool stdout_truncated = false;
  bool stderr_truncated = false;
};

/// Runs spec.argv, blocking until the child exits (or is killed on timeout).
/// Error codes: "subprocess.argv" (empty argv), "subprocess.exec" (not found /
/// not executable; message names argv[0]), "subprocess.system" (pipe/fork;
/// ErrorKind::kSystem).
Result<ProcessResult> RunProcess(const ProcessSpec& spec);

/// Whether RunProcess could start `program` as argv[0] now: a path with a '/'
/// must be an executable regular file; a bare name is looked up in `path_env`
/// (a PATH value; null: the default "/bin:/usr/bin", as execvp does).
/// Returns the file that would run, or an Error ("subprocess.exec") whose
/// message names the program, the cause and the fix. Checked when the config
/// is loaded, so `mailhook check` and start-up refuse a hook that cannot run
/// instead of every event failing later.
Result<std::string> FindProgram(const std::string& program, const char* path_env);

}  // namespace mailhook::util
