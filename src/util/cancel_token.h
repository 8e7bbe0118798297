#pragma once
/// CancelToken: "stop what you are doing" for calls that block (a webhook
/// POST, a hook command), one per owner that may stop them (the Dispatcher
/// has one and passes it to every Deliver). Two ways to observe it, so every
/// kind of wait reaches the same token:
///  - fd() becomes readable when it fires: poll()-based waits (a child's
///    pipes, a socket) add it to their set;
///  - a Registration runs a callback when it fires, for waits that are not
///    poll()s (a library's blocking call that can only be ended from outside).
/// A Registration is an RAII guard: once destroyed its callback is not
/// running and never runs, so nothing stays registered after an exception.
///
/// Thread-safe. A token that fired stays fired until Reset().

#include <cstdint>
#include <functional>
#include <map>

#include "util/mutex.h"
#include "util/thread_annotations.h"

namespace mailhook::util {

/// A one-shot cancellation signal with a pollable fd.
class CancelToken {
 public:
  /// Throws std::system_error when no eventfd can be made (start-up only).
  CancelToken();
  ~CancelToken();
  CancelToken(const CancelToken&) = delete;
  CancelToken& operator=(const CancelToken&) = delete;

  /// A token that never fires, for callers that never cancel (tests, tools).
  static const CancelToken& Never();

  /// Fires: fd() becomes readable and every registered callback runs, on this
  /// thread, before Cancel returns. Idempotent.
  void Cancel() EXCLUDES(mu_);
  bool cancelled() const EXCLUDES(mu_);
  /// Readable once fired (level-triggered: never read by waiters).
  int fd() const { return fd_; }
  /// Un-fires it, for an owner that starts again (Dispatcher::Start). Only
  /// while no call observes the token.
  void Reset() EXCLUDES(mu_);

  /// Runs `on_cancel` once when the token fires, or at once (on the
  /// constructing thread) when it already has. `on_cancel` must be short and
  /// must not use the token.
  class Registration {
   public:
    Registration(const CancelToken& token, std::function<void()> on_cancel);
    /// Waits for a callback running on another thread to finish.
    ~Registration();
    Registration(const Registration&) = delete;
    Registration& operator=(const Registration&) = delete;

   private:
    const CancelToken& token_;
    uint64_t id_ = 0;
  };

 private:
  int fd_ = -1;
  mutable Mutex mu_;
  bool cancelled_ GUARDED_BY(mu_) = false;
  /// Callbacks run under mu_, so unregistering waits for a running one.
  mutable std::map<uint64_t, std::function<void()>> callbacks_ GUARDED_BY(mu_);
  mutable uint64_t next_id_ GUARDED_BY(mu_) = 1;
};

}  // namespace mailhook::util
