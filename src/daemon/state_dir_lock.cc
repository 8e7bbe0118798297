#include "daemon/state_dir_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace mailhook::daemon {
namespace {

/// "pid 123 on host abc", from what the holder wrote; "unknown pid" if the
/// holder has not written yet (it writes right after locking).
std::string Holder(int fd) {
  char buf[256] = {};
  ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
  std::string text = n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  size_t space = text.find(' ');
  if (text.empty()) return "an unknown pid";
  if (space == std::string::npos) return "pid " + text;
  // A pid is only meaningful on its own host (or container).
  return "pid " + text.substr(0, space) + " on host " + text.substr(space + 1);
}

}  // namespace

util::Result<std::unique_ptr<StateDirLock>> StateDirLock::Acquire(const std::string& state_dir) {
  const std::string path = (std::filesystem::path(state_dir) / kFileName).string();
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    return util::Error("daemon.lock_file", util::RetryClass::kNeedsOperator,
                       "cannot open " + path + ": " + std::strerror(errno) + "; make state_dir writable by this user");
  }
  int rc;
  do {
    rc = ::flock(fd, LOCK_EX | LOCK_NB);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    int err = errno;
    std::string holder = err == EWOULDBLOCK ? Holder(fd) : "";
    ::close(fd);
    if (err == EWOULDBLOCK) {
      return util::Error("daemon.state_dir_locked", util::RetryClass::kNeedsOperator,
                         "state_dir " + state_dir + " is in use by another `mailhook run` (" + holder +
                             "); two daemons on one state_dir would both deliver every event. Stop "
                             "the other daemon first, or give this one its own state_dir");
    }
    return util::Error("daemon.lock_file", util::RetryClass::kNeedsOperator,
                       "cannot lock " + path + ": " + std::strerror(err) +
                           " (a file system without flock?); put state_dir on a local volume");
  }
  // Who holds it, for a second daemon's message. Best effort: the lock itself
  // is what protects, not the text.
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
  std::string text = std::to_string(::getpid()) + (host[0] ? std::string(" ") + host : "") + "\n";
  if (::ftruncate(fd, 0) == 0) {
    ssize_t ignored = ::pwrite(fd, text.data(), text.size(), 0);
    (void)ignored;
  }
  return std::unique_ptr<StateDirLock>(new StateDirLock(fd));
}

StateDirLock::~StateDirLock() { ::close(fd_); }

}  // namespace mailhook::daemon
