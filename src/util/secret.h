#pragma once
/// Secret: a string that never prints. Passwords, tokens and signing keys are
/// held in this type so that logging one by mistake shows "<redacted>".

#include <ostream>
#include <string>
#include <utility>

#include <fmt/format.h>

namespace mailhook::util {

/// A secret value; reveal() is the one explicit way to read it.
class Secret {
 public:
  Secret() = default;
  explicit Secret(std::string value) : value_(std::move(value)) {}

  const std::string& reveal() const { return value_; }
  bool empty() const { return value_.empty(); }
  bool operator==(const Secret& other) const = default;

 private:
  std::string value_;
};

inline std::ostream& operator<<(std::ostream& os, const Secret&) { return os << "<redacted>"; }

}  // namespace mailhook::util

template <>
struct fmt::formatter<mailhook::util::Secret> : fmt::formatter<std::string_view> {
  template <typename Ctx>
  auto format(const mailhook::util::Secret&, Ctx& ctx) const {
    return fmt::formatter<std::string_view>::format("<redacted>", ctx);
  }
};
