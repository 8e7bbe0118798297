#include "child_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>

extern char** environ;

namespace mailhook::testsupport {
namespace {

using util::Error;
using util::RetryClass;

std::string Errno(const std::string& what) { return what + ": " + std::strerror(errno); }

// The inherited environment with `extra` NAME=value entries replacing or added.
std::vector<std::string> BuildEnv(const std::vector<std::string>& extra) {
  std::map<std::string, std::string> env;
  for (char** e = environ; e && *e; ++e) {
    std::string kv(*e);
    env[kv.substr(0, kv.find('='))] = kv;
  }
  for (const auto& kv : extra) env[kv.substr(0, kv.find('='))] = kv;
  std::vector<std::string> out;
  for (auto& [k, v] : env) out.push_back(v);
  return out;
}

void WriteAll(int fd, const char* data, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, data, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;
    data += w;
    n -= static_cast<size_t>(w);
  }
}

int OpenAppend(const std::string& path) {
  if (path.empty()) return -1;
  return open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
}

}  // namespace

util::Result<std::unique_ptr<ChildProcess>> ChildProcess::Start(const std::vector<std::string>& argv,
                                                                const ChildOptions& options) {
  if (argv.empty()) return Error("child.argv", RetryClass::kNeedsOperator, "empty argv");
  // O_CLOEXEC: another child spawned concurrently must not inherit our write
  // ends, or our reader would never see EOF.
  int out_pipe[2], err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0) return Error("child.pipe", RetryClass::kNeedsOperator, Errno("pipe2"));
  if (pipe2(err_pipe, O_CLOEXEC) != 0) {
    close(out_pipe[0]);
    close(out_pipe[1]);
    return Error("child.pipe", RetryClass::kNeedsOperator, Errno("pipe2"));
  }

  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, options.stdin_path.empty() ? "/dev/null" : options.stdin_path.c_str(),
                                   O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, out_pipe[1], 1);
  posix_spawn_file_actions_adddup2(&fa, err_pipe[1], 2);
  if (!options.working_dir.empty()) posix_spawn_file_actions_addchdir_np(&fa, options.working_dir.c_str());

  // Own process group (so a group kill reaches its children too), default
  // signal dispositions and an empty mask whatever the test process uses.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t all, none;
  sigfillset(&all);
  sigemptyset(&none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);

  std::vector<char*> cargv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  std::vector<std::string> env = BuildEnv(options.env);
  std::vector<char*> cenv;
  for (auto& e : env) cenv.push_back(e.data());
  cenv.push_back(nullptr);

  pid_t pid = -1;
  int rc = posix_spawnp(&pid, cargv[0], &fa, &attr, cargv.data(), cenv.data());
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  close(out_pipe[1]);
  close(err_pipe[1]);
  if (rc != 0) {
    close(out_pipe[0]);
    close(err_pipe[0]);
    return Error("child.spawn", RetryClass::kNeedsOperator, "cannot start " + argv[0] + ": " + std::strerror(rc));
  }

  std::unique_ptr<ChildProcess> child(new ChildProcess());
  child->pid_ = pid;
  // A pidfd turns "wait for exit with a timeout" into a poll(); without one
  // (old kernels) Wait() falls back to short WNOHANG checks.
  child->pidfd_ = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  int out_file = OpenAppend(options.stdout_path);
  int err_file = OpenAppend(options.stderr_path);
  ChildProcess* self = child.get();
  child->reader_ = std::thread(
      [self, o = out_pipe[0], e = err_pipe[0], out_file, err_file] { self->ReadLoop(o, e, out_file, err_file); });
  return child;
}

void ChildProcess::ReadLoop(int out_fd, int err_fd, int out_file, int err_file) {
  pollfd fds[2] = {{out_fd, POLLIN, 0}, {err_fd, POLLIN, 0}};
  int open_count = 2;
  char buf[8192];
  while (open_count > 0) {
    int n = poll(fds, 2, -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      ssize_t r = read(fds[i].fd, buf, sizeof buf);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) {
        close(fds[i].fd);
        fds[i].fd = -1;
        --open_count;
        continue;
      }
      int file = i == 0 ? out_file : err_file;
      if (file >= 0) WriteAll(file, buf, static_cast<size_t>(r));
      {
        std::lock_guard<std::mutex> lock(mu_);
        (i == 0 ? stdout_ : stderr_).append(buf, static_cast<size_t>(r));
      }
      cv_.notify_all();
    }
  }
  for (auto& f : fds) {
    if (f.fd >= 0) close(f.fd);
  }
  if (out_file >= 0) close(out_file);
  if (err_file >= 0) close(err_file);
  {
    std::lock_guard<std::mutex> lock(mu_);
    eof_ = true;
  }
  cv_.notify_all();
}

ChildProcess::~ChildProcess() {
  if (!status_.has_value()) {
    Signal(SIGKILL, /*group=*/true);
    if (!Wait(std::chrono::seconds(10))) Reap(0);
  }
  // Grandchildren that kept the pipes open would block the reader: kill the
  // group (its id stays reserved while any member lives).
  if (!WaitForEof(std::chrono::milliseconds(200))) kill(-pid_, SIGKILL);
  if (reader_.joinable()) reader_.join();
  if (pidfd_ >= 0) close(pidfd_);
}

bool ChildProcess::Reap(int options) {
  if (status_.has_value()) return true;
  int st = 0;
  pid_t r;
  do {
    r = waitpid(pid_, &st, options);
  } while (r < 0 && errno == EINTR);
  if (r != pid_) return false;
  status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  return true;
}

bool ChildProcess::Signal(int sig, bool group) {
  if (status_.has_value()) return false;
  return kill(group ? -pid_ : pid_, sig) == 0;
}

std::optional<int> ChildProcess::Wait(std::chrono::milliseconds timeout) {
  if (Reap(WNOHANG)) return status_;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return Reap(WNOHANG) ? status_ : std::nullopt;
    if (pidfd_ >= 0) {
      pollfd p{pidfd_, POLLIN, 0};
      int n = poll(&p, 1, static_cast<int>(left.count()));
      if (n < 0 && errno != EINTR) return std::nullopt;
    } else {
      pollfd none{-1, 0, 0};
      poll(&none, 0, std::min<int>(10, static_cast<int>(left.count())));
    }
    if (Reap(WNOHANG)) return status_;
  }
}

bool ChildProcess::Running() { return !Reap(WNOHANG); }

std::string ChildProcess::Stdout() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stdout_;
}

std::string ChildProcess::Stderr() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stderr_;
}

bool ChildProcess::WaitFor(const std::string ChildProcess::*stream, std::string_view needle,
                           std::chrono::milliseconds timeout, size_t from) const {
  std::unique_lock<std::mutex> lock(mu_);
  auto found = [&] {
    const std::string& s = this->*stream;
    return from <= s.size() && s.find(needle, from) != std::string::npos;
  };
  cv_.wait_for(lock, timeout, [&] { return found() || eof_; });
  return found();
}

bool ChildProcess::WaitForStderr(std::string_view needle, std::chrono::milliseconds timeout, size_t from) const {
  return WaitFor(&ChildProcess::stderr_, needle, timeout, from);
}

bool ChildProcess::WaitForStdout(std::string_view needle, std::chrono::milliseconds timeout, size_t from) const {
  return WaitFor(&ChildProcess::stdout_, needle, timeout, from);
}

bool ChildProcess::WaitForEof(std::chrono::milliseconds timeout) const {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return eof_; });
}

util::Result<CommandResult> RunCommand(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
                                       const ChildOptions& options) {
  auto child = ChildProcess::Start(argv, options);
  if (!child.ok()) return child.error();
  CommandResult result;
  auto status = (*child)->Wait(timeout);
  if (!status) {
    (*child)->Signal(SIGKILL, /*group=*/true);
    (*child)->Wait(std::chrono::seconds(10));
  }
  (*child)->WaitForEof(std::chrono::seconds(5));
  result.exit_code = status.value_or(-1);
  result.out = (*child)->Stdout();
  result.err = (*child)->Stderr();
  return result;
}

}  // namespace mailhook::testsupport
