#pragma once
/// Fd: an owned file descriptor, closed on destruction (sockets, pipes, pidfds).
/// Thread-safety: none; one owner at a time.

#include <unistd.h>

namespace mailhook::util {

/// An owned file descriptor, closed on destruction; -1 when none.
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

}  // namespace mailhook::util
