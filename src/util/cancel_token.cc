#include "util/cancel_token.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>
#include <utility>

namespace mailhook::util {

CancelToken::CancelToken() : fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
  if (fd_ < 0) throw std::system_error(errno, std::generic_category(), "eventfd for a cancel token");
}

CancelToken::~CancelToken() { ::close(fd_); }

const CancelToken& CancelToken::Never() {
  static const CancelToken* never = new CancelToken();  // never destroyed: used from any thread until exit
  return *never;
}

void CancelToken::Cancel() {
  MutexLock lock(mu_);
  if (cancelled_) return;
  cancelled_ = true;
  uint64_t one = 1;
  // Cannot fail but for an overflow of the counter, which one write cannot reach.
  ssize_t ignored = ::write(fd_, &one, sizeof one);
  (void)ignored;
  // Under mu_: a Registration being destroyed on another thread waits until
  // its callback has returned, so the callback never runs on freed state.
  for (auto& [id, callback] : callbacks_) callback();
  callbacks_.clear();
}

bool CancelToken::cancelled() const {
  MutexLock lock(mu_);
  return cancelled_;
}

void CancelToken::Reset() {
  MutexLock lock(mu_);
  uint64_t count = 0;
  ssize_t ignored = ::read(fd_, &count, sizeof count);  // EAGAIN when not fired: fine
  (void)ignored;
  cancelled_ = false;
}

CancelToken::Registration::Registration(const CancelToken& token, std::function<void()> on_cancel) : token_(token) {
  {
    MutexLock lock(token_.mu_);
    if (!token_.cancelled_) {
      id_ = token_.next_id_++;
      token_.callbacks_.emplace(id_, std::move(on_cancel));
      return;
    }
  }
  on_cancel();  // already fired: the caller sees it before it starts waiting
}

CancelToken::Registration::~Registration() {
  if (id_ == 0) return;
  MutexLock lock(token_.mu_);
  token_.callbacks_.erase(id_);
}

}  // namespace mailhook::util
