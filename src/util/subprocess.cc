#include "util/subprocess.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <iterator>
#include <tuple>
#include <thread>

extern char** environ;

namespace mailhook::util {
namespace {

/// An owned file descriptor, closed on destruction.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { Close(); }

  int get() const { return fd_; }
  bool open() const { return fd_ >= 0; }
  void Reset(int fd) {
    Close();
    fd_ = fd;
  }
  void Close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

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
  return Error("subprocess.system", RetryClass::kBackoff,
               std::string(what) + " failed: " + strerror(errno) +
                   " (the process may be out of file descriptors or memory)");
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
[[noreturn]] void ExecChild(char* const* argv, char* const* envp, int in, int out, int err,
                            int exec_error, int max_fd) {
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

}  // namespace

bool IsBaseEnvironmentName(std::string_view name) {
  static constexpr std::string_view kNames[] = {"PATH", "HOME", "LANG", "TZ", "TMPDIR"};
  return std::find(std::begin(kNames), std::end(kNames), name) != std::end(kNames) ||
         name.starts_with("LC_") || name.starts_with("MAILHOOK_");
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
    bool wanted = IsBaseEnvironmentName(name) ||
                  std::find(pass_env.begin(), pass_env.end(), name) != pass_env.end();
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
    return Error("subprocess.argv", RetryClass::kNeedsOperator,
                 "empty command: give at least the program to run");
  }
  // Everything the child needs is built before fork(): after it, only
  // async-signal-safe calls are allowed (another thread may hold malloc's lock).
  std::vector<char*> argv;
  for (const auto& a : spec.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<std::string> env_strings = ChildEnvironment(environ, spec.pass_env, spec.env);
  const int max_fd = MaxDescriptor();
  std::vector<char*> envp;
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);

  Pipe in, out, err, exec_error;
  if (!in.Open() || !out.Open() || !err.Open() || !exec_error.Open()) return SystemError("pipe");

  ScopedSigpipeBlock sigpipe_block;
  pid_t pid = ::fork();
  if (pid < 0) return SystemError("fork");
  if (pid == 0) {
    ExecChild(argv.data(), envp.data(), in.read.get(), out.write.get(), err.write.get(),
              exec_error.write.get(), max_fd);
  }
  // Also from the parent, so the group exists before we might kill it.
  ::setpgid(pid, pid);
  in.read.Close();
  out.write.Close();
  err.write.Close();
  exec_error.write.Close();

  // exec_error is close-on-exec: EOF means exec succeeded, an int is its errno.
  int exec_errno = 0;
  ssize_t got = 0;
  do {
    got = ::read(exec_error.read.get(), &exec_errno, sizeof exec_errno);
  } while (got == -1 && errno == EINTR);
  if (got == static_cast<ssize_t>(sizeof exec_errno)) {
    WaitBlocking(pid);
    return Error("subprocess.exec", RetryClass::kNeedsOperator,
                 "cannot run \"" + spec.argv[0] + "\": " + strerror(exec_errno) +
                     " (check the path and that the file is executable)");
  }

  // pidfd lets poll() notice the child's exit without reaping it: an unreaped
  // child keeps its process group id reserved, so the group kill below can
  // never hit an unrelated group that reused the id.
  // glibc 2.36 declares pidfd_open without extern "C"; use the syscall.
  Fd child(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  bool exited = false;

  ProcessResult result;
  size_t written = 0;
  if (spec.stdin_data.empty()) in.write.Close();
  for (Fd* fd : {&in.write, &out.read, &err.read}) {
    if (fd->open()) SetNonBlocking(fd->get());
  }
  const auto deadline = std::chrono::steady_clock::now() + spec.timeout;
  char buf[65536];

  while (in.write.open() || out.read.open() || err.read.open() || !exited) {
    auto remaining = std::chrono::ceil<std::chrono::milliseconds>(deadline -
                                                                  std::chrono::steady_clock::now());
    if (remaining.count() <= 0) {
      result.timed_out = true;
      break;
    }
    pollfd fds[5];
    int n = 0;
    int in_idx = -1, out_idx = -1, err_idx = -1, child_idx = -1, cancel_idx = -1;
    if (spec.cancel_fd >= 0) { cancel_idx = n; fds[n++] = {spec.cancel_fd, POLLIN, 0}; }
    if (in.write.open()) { in_idx = n; fds[n++] = {in.write.get(), POLLOUT, 0}; }
    if (out.read.open()) { out_idx = n; fds[n++] = {out.read.get(), POLLIN, 0}; }
    if (err.read.open()) { err_idx = n; fds[n++] = {err.read.get(), POLLIN, 0}; }
    if (!exited && child.open()) { child_idx = n; fds[n++] = {child.get(), POLLIN, 0}; }
    int timeout_ms = static_cast<int>(std::min<int64_t>(remaining.count(), 1000));
    if (!exited && !child.open() && n == (cancel_idx >= 0 ? 1 : 0)) {
      // No pidfd (old kernel): the pipes are closed, poll for the exit.
      int status = 0;
      if (::waitpid(pid, &status, WNOHANG) == pid) {
        result.exit_code = DecodeStatus(status);
        exited = true;
        pid = -1;
        continue;
      }
      if (cancel_idx >= 0) {
        pollfd cancel{spec.cancel_fd, POLLIN, 0};
        if (::poll(&cancel, 1, std::min(timeout_ms, 10)) > 0) {
          result.cancelled = true;
          break;
        }
        continue;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(std::min(timeout_ms, 10)));
      continue;
    }
    int ready = ::poll(fds, n, timeout_ms);
    if (ready < 0) {
      if (errno == EINTR) continue;
      result.timed_out = true;  // cannot wait any more; treat like a timeout
      break;
    }
    if (cancel_idx >= 0 && fds[cancel_idx].revents != 0) {
      // Shutdown: the caller wants its thread back now, not at the timeout.
      result.cancelled = true;
      break;
    }
    if (in_idx >= 0 && fds[in_idx].revents != 0) {
      size_t chunk = std::min<size_t>(spec.stdin_data.size() - written, sizeof buf);
      ssize_t w = ::write(in.write.get(), spec.stdin_data.data() + written, chunk);
      if (w > 0) {
        written += static_cast<size_t>(w);
        if (written == spec.stdin_data.size()) in.write.Close();
      } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
        // EPIPE: the child does not read its stdin (or exited); not an error.
        in.write.Close();
      }
    }
    for (auto [idx, fd, data, truncated] :
         {std::tuple{out_idx, &out.read, &result.stdout_data, &result.stdout_truncated},
          std::tuple{err_idx, &err.read, &result.stderr_data, &result.stderr_truncated}}) {
      if (idx < 0 || fds[idx].revents == 0) continue;
      ssize_t r = ::read(fd->get(), buf, sizeof buf);
      if (r > 0) {
        Append(*data, *truncated, buf, static_cast<size_t>(r), spec.max_output);
      } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
        fd->Close();
      }
    }
    if (child_idx >= 0 && fds[child_idx].revents != 0) exited = true;
  }

  if (pid > 0) {
    // Kill the whole group on timeout: the leader is not reaped yet, so the
    // group id is still ours.
    if (result.timed_out || result.cancelled) ::kill(-pid, SIGKILL);
    int code = WaitBlocking(pid);
    result.exit_code = code;
  }
  return result;
}

}  // namespace mailhook::util
