#include "util/subprocess.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <iterator>
#include <optional>
#include <thread>

#include "util/fd.h"

extern char** environ;

namespace mailhook::util {
namespace {

/// Both ends of a pipe, close-on-exec so that no other child inherits them.
struct Pipe {
  Fd read;
  Fd write;
  bool Open() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return false;
    read.Reset(fds[0]);
    write.Reset(fds[1]);
    return true;
  }
};

Error SystemError(const char* what) {
  return Error(
      ErrorKind::kSystem, "subprocess.system", RetryClass::kBackoff,
      std::string(what) + " failed: " + strerror(errno) + " (the process may be out of file descriptors or memory)");
}

void SetNonBlocking(int fd) { ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK); }

/// Appends a chunk to an output buffer, keeping at most `cap` bytes.
void Append(std::string& out, bool& truncated, const char* data, size_t n, size_t cap) {
  size_t room = out.size() < cap ? cap - out.size() : 0;
  if (n > room) truncated = true;
  out.append(data, std::min(n, room));
}

/// Makes every descriptor above 2 close at exec, so a child inherits none of
/// the daemon's sockets and pipes (also those opened without O_CLOEXEC by a
/// library, such as libetpan's cancel pipes). Close-on-exec rather than close,
/// so `exec_error` still reports a failed exec. Async-signal-safe.
void CloseDescriptorsAtExec(int exec_error, int max_fd) {
  // close_range(2) with CLOSE_RANGE_CLOEXEC (Linux 5.11); glibc 2.36 has no
  // wrapper for the flag's header, so the syscall and the flag's value.
  constexpr unsigned kCloseRangeCloexec = 1U << 2;
  if (::syscall(SYS_close_range, 3U, ~0U, kCloseRangeCloexec) == 0) return;
  // Older kernels: close them one by one (the limit was read before fork).
  for (int fd = 3; fd < max_fd; ++fd) {
    if (fd != exec_error) ::close(fd);
  }
}

/// Runs in the forked child: only async-signal-safe calls until exec.
[[noreturn]] void ExecChild(char* const* argv, char* const* envp, int in, int out, int err, int exec_error,
                            int max_fd) {
  // Own process group, so a timeout can kill everything the command started
  // (a shell script's background jobs included), and a ctrl-c on the daemon's
  // terminal does not reach it.
  ::setpgid(0, 0);
  ::dup2(in, STDIN_FILENO);
  ::dup2(out, STDOUT_FILENO);
  ::dup2(err, STDERR_FILENO);
  CloseDescriptorsAtExec(exec_error, max_fd);
  // Ignored signals stay ignored across exec, and the mask is inherited: give
  // the command the defaults a program expects (a `cat` must die on SIGPIPE).
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int sig : {SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGCHLD}) ::sigaction(sig, &dfl, nullptr);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  ::execvpe(argv[0], argv, envp);
  int e = errno;
  ssize_t ignored = ::write(exec_error, &e, sizeof e);
  (void)ignored;
  ::_exit(127);
}

/// Blocks SIGPIPE in this thread for its lifetime and swallows one that our own
/// writes raised, so a child that closes its stdin early is an EPIPE, not death.
class ScopedSigpipeBlock {
 public:
  ScopedSigpipeBlock() {
    sigset_t pipe_set;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    sigset_t pending;
    sigpending(&pending);
    was_pending_ = sigismember(&pending, SIGPIPE) == 1;
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old_);
  }
  ~ScopedSigpipeBlock() {
    sigset_t pending;
    sigpending(&pending);
    if (!was_pending_ && sigismember(&pending, SIGPIPE) == 1) {
      sigset_t pipe_set;
      sigemptyset(&pipe_set);
      sigaddset(&pipe_set, SIGPIPE);
      timespec zero{0, 0};
      while (sigtimedwait(&pipe_set, nullptr, &zero) == -1 && errno == EINTR) {
      }
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  ScopedSigpipeBlock(const ScopedSigpipeBlock&) = delete;
  ScopedSigpipeBlock& operator=(const ScopedSigpipeBlock&) = delete;

 private:
  sigset_t old_;
  bool was_pending_ = false;
};

int DecodeStatus(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return -WTERMSIG(status);
  return -1;
}

int WaitBlocking(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) == -1 && errno == EINTR) {
  }
  return DecodeStatus(status);
}

/// The highest descriptor number that may be open, for the fallback loop.
int MaxDescriptor() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) return 65536;
  return static_cast<int>(std::min<rlim_t>(limit.rlim_cur, 1 << 20));
}

/// Everything the child needs, built before fork(): after it, only
/// async-signal-safe calls are allowed (another thread may hold malloc's lock).
/// Neither copied nor moved, since argv and envp point into it (and into the spec).
class ExecPlan {
 public:
  explicit ExecPlan(const ProcessSpec& spec) {
    for (const auto& a : spec.argv) argv_.push_back(const_cast<char*>(a.c_str()));
    argv_.push_back(nullptr);
    env_strings_ = ChildEnvironment(environ, spec.pass_env, spec.env);
    max_fd_ = MaxDescriptor();
    for (auto& e : env_strings_) envp_.push_back(e.data());
    envp_.push_back(nullptr);
  }
  ExecPlan(const ExecPlan&) = delete;
  ExecPlan& operator=(const ExecPlan&) = delete;

  char* const* argv() const { return argv_.data(); }
  char* const* envp() const { return envp_.data(); }
  int max_fd() const { return max_fd_; }

 private:
  std::vector<char*> argv_;
  std::vector<std::string> env_strings_;
  std::vector<char*> envp_;
  int max_fd_ = 0;
};

/// The child's stdin, stdout and stderr, and the pipe on which it reports a
/// failed exec.
struct ChildPipes {
  Pipe in, out, err, exec_error;

  /// False (errno set) when a pipe cannot be made.
  bool Open() { return in.Open() && out.Open() && err.Open() && exec_error.Open(); }

  /// In the parent after fork: closes the ends that belong to the child.
  void CloseChildEnds() {
    in.read.Close();
    out.write.Close();
    err.write.Close();
    exec_error.write.Close();
  }
};

/// Reads the child's report on exec. exec_error is close-on-exec: EOF means
/// exec succeeded (nullopt), an int is its errno.
std::optional<int> ReadExecErrno(int exec_error) {
  int exec_errno = 0;
  ssize_t got = 0;
  do {
    got = ::read(exec_error, &exec_errno, sizeof exec_errno);
  } while (got == -1 && errno == EINTR);
  if (got == static_cast<ssize_t>(sizeof exec_errno)) return exec_errno;
  return std::nullopt;
}

/// Which slot of a poll() set each descriptor took; -1: not polled.
struct PollSet {
  pollfd fds[5];
  int n = 0;
  int cancel = -1, in = -1, out = -1, err = -1, child = -1;

  int Add(int fd, short events) {
    fds[n] = {fd, events, 0};
    return n++;
  }
  bool Ready(int idx) const { return idx >= 0 && fds[idx].revents != 0; }
};

/// How much of stdin is written, and how much of a stream read, per call.
constexpr size_t kChunk = 65536;

/// The parent's side of a started child: feeds its stdin and collects its
/// stdout and stderr until it exits, runs past the timeout or is cancelled,
/// then reaps it. Borrows the spec and the pipes.
class ChildPump {
 public:
  ChildPump(const ProcessSpec& spec, ChildPipes& pipes, pid_t pid)
      : spec_(spec),
        pipes_(pipes),
        pid_(pid),
        // pidfd lets poll() notice the child's exit without reaping it: an
        // unreaped child keeps its process group id reserved, so the group kill
        // in Reap can never hit an unrelated group that reused the id.
        // glibc 2.36 declares pidfd_open without extern "C"; use the syscall.
        child_(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0))) {}

  /// Returns once the child has exited and its output is drained, or on
  /// timeout or cancel (flagged in the result).
  void Run() {
    if (spec_.stdin_data.empty()) pipes_.in.write.Close();
    for (Fd* fd : {&pipes_.in.write, &pipes_.out.read, &pipes_.err.read}) {
      if (fd->open()) SetNonBlocking(fd->get());
    }
    const auto deadline = std::chrono::steady_clock::now() + spec_.timeout;
    while (pipes_.in.write.open() || pipes_.out.read.open() || pipes_.err.read.open() || !exited_) {
      auto remaining = std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (remaining.count() <= 0) {
        result_.timed_out = true;
        break;
      }
      PollSet set = BuildPollSet();
      int timeout_ms = static_cast<int>(std::min<int64_t>(remaining.count(), 1000));
      bool only_cancel_to_poll = !exited_ && !child_.open() && set.n == (set.cancel >= 0 ? 1 : 0);
      bool go_on = only_cancel_to_poll ? AwaitExitWithoutPidfd(timeout_ms) : PollOnce(set, timeout_ms);
      if (!go_on) break;
    }
  }

  /// Waits for the child unless already reaped, first killing its whole group
  /// on timeout or cancel.
  ProcessResult Reap() {
    if (pid_ > 0) {
      // Kill the whole group on timeout: the leader is not reaped yet, so the
      // group id is still ours.
      if (result_.timed_out || result_.cancelled) ::kill(-pid_, SIGKILL);
      int code = WaitBlocking(pid_);
      result_.exit_code = code;
    }
    return std::move(result_);
  }

 private:
  PollSet BuildPollSet() const {
    PollSet set;
    if (spec_.cancel_fd >= 0) set.cancel = set.Add(spec_.cancel_fd, POLLIN);
    if (pipes_.in.write.open()) set.in = set.Add(pipes_.in.write.get(), POLLOUT);
    if (pipes_.out.read.open()) set.out = set.Add(pipes_.out.read.get(), POLLIN);
    if (pipes_.err.read.open()) set.err = set.Add(pipes_.err.read.get(), POLLIN);
    if (!exited_ && child_.open()) set.child = set.Add(child_.get(), POLLIN);
    return set;
  }

  /// No pidfd (old kernel) and the pipes are closed: polls for the exit,
  /// watching cancel_fd meanwhile. False: stop (cancelled).
  bool AwaitExitWithoutPidfd(int timeout_ms) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      result_.exit_code = DecodeStatus(status);
      exited_ = true;
      pid_ = -1;
      return true;
    }
    if (spec_.cancel_fd >= 0) {
      pollfd cancel{spec_.cancel_fd, POLLIN, 0};
      if (::poll(&cancel, 1, std::min(timeout_ms, 10)) > 0) {
        result_.cancelled = true;
        return false;
      }
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(std::min(timeout_ms, 10)));
    return true;
  }

  /// One poll() and the I/O it allows. False: stop (cancelled, or poll failed).
  bool PollOnce(PollSet& set, int timeout_ms) {
    int ready = ::poll(set.fds, set.n, timeout_ms);
    if (ready < 0) {
      if (errno == EINTR) return true;
      result_.timed_out = true;  // cannot wait any more; treat like a timeout
      return false;
    }
    if (set.Ready(set.cancel)) {
      // Shutdown: the caller wants its thread back now, not at the timeout.
      result_.cancelled = true;
      return false;
    }
    if (set.Ready(set.in)) WriteStdin();
    if (set.Ready(set.out)) ReadOutput(pipes_.out.read, result_.stdout_data, result_.stdout_truncated);
    if (set.Ready(set.err)) ReadOutput(pipes_.err.read, result_.stderr_data, result_.stderr_truncated);
    if (set.Ready(set.child)) exited_ = true;
    return true;
  }

  void WriteStdin() {
    size_t chunk = std::min<size_t>(spec_.stdin_data.size() - written_, kChunk);
    ssize_t w = ::write(pipes_.in.write.get(), spec_.stdin_data.data() + written_, chunk);
    if (w > 0) {
      written_ += static_cast<size_t>(w);
      if (written_ == spec_.stdin_data.size()) pipes_.in.write.Close();
    } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
      // EPIPE: the child does not read its stdin (or exited); not an error.
      pipes_.in.write.Close();
    }
  }

  void ReadOutput(Fd& fd, std::string& data, bool& truncated) {
    char buf[kChunk];
    ssize_t r = ::read(fd.get(), buf, sizeof buf);
    if (r > 0) {
      Append(data, truncated, buf, static_cast<size_t>(r), spec_.max_output);
    } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
      fd.Close();
    }
  }

  const ProcessSpec& spec_;
  ChildPipes& pipes_;
  pid_t pid_;  ///< -1 once reaped
  Fd child_;   ///< pidfd; not open on a kernel without pidfd_open
  bool exited_ = false;
  size_t written_ = 0;  ///< bytes of stdin_data written so far
  ProcessResult result_;
};

}  // namespace

bool IsBaseEnvironmentName(std::string_view name) {
  static constexpr std::string_view kNames[] = {"PATH", "HOME", "LANG", "TZ", "TMPDIR"};
  return std::find(std::begin(kNames), std::end(kNames), name) != std::end(kNames) || name.starts_with("LC_") ||
         name.starts_with("MAILHOOK_");
}

std::vector<std::string> ChildEnvironment(char* const* parent, const std::vector<std::string>& pass_env,
                                          const std::vector<std::pair<std::string, std::string>>& env) {
  auto set_by_spec = [&](std::string_view name) {
    return std::any_of(env.begin(), env.end(), [&](const auto& kv) { return kv.first == name; });
  };
  std::vector<std::string> out;
  for (char* const* e = parent; e != nullptr && *e != nullptr; ++e) {
    std::string_view entry(*e);
    size_t eq = entry.find('=');
    if (eq == std::string_view::npos) continue;
    std::string_view name = entry.substr(0, eq);
    bool wanted = IsBaseEnvironmentName(name) || std::find(pass_env.begin(), pass_env.end(), name) != pass_env.end();
    if (wanted && !set_by_spec(name)) out.emplace_back(entry);
  }
  for (size_t i = 0; i < env.size(); ++i) {
    // Only the last entry for a name counts.
    bool replaced_later = std::any_of(env.begin() + static_cast<std::ptrdiff_t>(i) + 1, env.end(),
                                      [&](const auto& kv) { return kv.first == env[i].first; });
    if (!replaced_later) out.push_back(env[i].first + "=" + env[i].second);
  }
  return out;
}

Result<ProcessResult> RunProcess(const ProcessSpec& spec) {
  if (spec.argv.empty() || spec.argv[0].empty()) {
    return Error("subprocess.argv", RetryClass::kNeedsOperator, "empty command: give at least the program to run");
  }
  const ExecPlan plan(spec);
  ChildPipes pipes;
  if (!pipes.Open()) return SystemError("pipe");

  ScopedSigpipeBlock sigpipe_block;
  pid_t pid = ::fork();
  if (pid < 0) return SystemError("fork");
  if (pid == 0) {
    ExecChild(plan.argv(), plan.envp(), pipes.in.read.get(), pipes.out.write.get(), pipes.err.write.get(),
              pipes.exec_error.write.get(), plan.max_fd());
  }
  // Also from the parent, so the group exists before we might kill it.
  ::setpgid(pid, pid);
  pipes.CloseChildEnds();

  if (std::optional<int> exec_errno = ReadExecErrno(pipes.exec_error.read.get())) {
    WaitBlocking(pid);
    return Error("subprocess.exec", RetryClass::kNeedsOperator,
                 "cannot run \"" + spec.argv[0] + "\": " + strerror(*exec_errno) +
                     " (check the path and that the file is executable)");
  }
  ChildPump pump(spec, pipes, pid);
  pump.Run();
  return pump.Reap();
}

namespace {

Error ExecError(const std::string& message) { return Error("subprocess.exec", RetryClass::kNeedsOperator, message); }

/// Why `file` cannot be executed by this process, or "" when it can.
std::string NotRunnable(const std::string& file) {
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0) return strerror(errno);
  if (S_ISDIR(st.st_mode)) return "it is a directory";
  if (!S_ISREG(st.st_mode)) return "it is not a regular file";
  if (::access(file.c_str(), X_OK) != 0) return std::string(strerror(errno)) + " (not executable for this user)";
  return "";
}

}  // namespace

Result<std::string> FindProgram(const std::string& program, const char* path_env) {
  if (program.empty()) return ExecError("the program to run is empty");
  if (program.find('/') != std::string::npos) {
    std::string why = NotRunnable(program);
    if (why.empty()) return program;
    return ExecError("cannot run \"" + program + "\": " + why + "; it must be an existing file that user id " +
                     std::to_string(::geteuid()) +
                     " may execute (chmod +x; in the container image the ready-made hooks are in "
                     "/usr/local/lib/mailhook/hooks)");
  }
  std::string_view path = path_env != nullptr ? path_env : "/bin:/usr/bin";
  while (true) {
    size_t colon = path.find(':');
    std::string dir(path.substr(0, colon));
    // An empty PATH entry means the current directory, as for execvp.
    std::string file = (dir.empty() ? std::string(".") : dir) + "/" + program;
    if (NotRunnable(file).empty()) return file;
    if (colon == std::string_view::npos) break;
    path.remove_prefix(colon + 1);
  }
  return ExecError("cannot run \"" + program + "\": no executable file of that name in PATH (" +
                   std::string(path_env != nullptr ? path_env : "/bin:/usr/bin") +
                   "); give its absolute path, or install it");
}

}  // namespace mailhook::util
