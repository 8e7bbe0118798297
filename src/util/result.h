#pragma once
/// Result<T>: the value-or-error type for expected failures (network, protocol,
/// HTTP status, bad input). Exceptions are kept for start-up errors and bugs.

#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace mailhook::util {

/// What a retry means for a failure (after isync's temporary / wait / final).
enum class RetryClass {
  kRetryNow,       ///< transient; an immediate retry may succeed
  kBackoff,        ///< transient; retry after a growing delay
  kNeedsOperator,  ///< will not heal by itself (bad password, bad config, 4xx)
};

/// What a failure is, for the callers that decide on it (leveldb's Status
/// codes): closed, so a caller asks `IsVanished()`, never compares code
/// strings. Add a kind only when some caller takes a different path for it.
enum class ErrorKind {
  kOther,             ///< nothing beyond the retry class is decided on it
  kVanished,          ///< the message was expunged while being read: skip it
  kStore,             ///< the state store failed: says nothing about the message
  kResponseTooLarge,  ///< the server's answer was over the response budget
  kSystem,            ///< the daemon ran short of a resource (fds, memory, processes)
  kBind,              ///< a listening address could not be bound
};

/// An expected failure: what it is (kind), a stable code for logs and the
/// state file ("store.busy"), what a retry means, and a message that names the
/// cause and, where known, the fix. Never contains secrets.
class Error {
 public:
  Error(std::string code, RetryClass retry, std::string message)
      : Error(ErrorKind::kOther, std::move(code), retry, std::move(message)) {}
  Error(ErrorKind kind, std::string code, RetryClass retry, std::string message)
      : kind_(kind), code_(std::move(code)), retry_(retry), message_(std::move(message)) {}

  ErrorKind kind() const { return kind_; }
  const std::string& code() const { return code_; }
  RetryClass retry() const { return retry_; }
  const std::string& message() const { return message_; }

  bool NeedsOperator() const { return retry_ == RetryClass::kNeedsOperator; }
  bool IsVanished() const { return kind_ == ErrorKind::kVanished; }
  bool IsStore() const { return kind_ == ErrorKind::kStore; }
  bool IsResponseTooLarge() const { return kind_ == ErrorKind::kResponseTooLarge; }
  bool IsSystem() const { return kind_ == ErrorKind::kSystem; }
  bool IsBind() const { return kind_ == ErrorKind::kBind; }

  /// The same failure (kind, code, retry class) with another message, for a
  /// caller that adds where it happened or what to do.
  Error WithMessage(std::string message) const { return Error(kind_, code_, retry_, std::move(message)); }

  /// "code: message", for logs.
  std::string ToString() const { return code_ + ": " + message_; }

 private:
  ErrorKind kind_;
  std::string code_;
  RetryClass retry_;
  std::string message_;
};

/// Either a T or an Error. Must be checked: [[nodiscard]].
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}      // NOLINT: implicit by design
  Result(Error error) : v_(std::move(error)) {}  // NOLINT: implicit by design

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & {
    assert(ok());
    return std::get<0>(v_);
  }
  const T& value() const& {
    assert(ok());
    return std::get<0>(v_);
  }
  T&& value() && {
    assert(ok());
    return std::get<0>(std::move(v_));
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  const Error& error() const {
    assert(!ok());
    return std::get<1>(v_);
  }

 private:
  std::variant<T, Error> v_;
};

/// Result<void>: success or an Error.
template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), ok_(false) {}  // NOLINT

  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const {
    assert(!ok_);
    return error_;
  }

 private:
  Error error_{"", RetryClass::kRetryNow, ""};
  bool ok_ = true;
};

using Status = Result<void>;

inline Status Ok() { return Status(); }

}  // namespace mailhook::util
