#include "imap/nesting_scanner.h"

#include <algorithm>

namespace mailhook::imap {

bool NestingScanner::Scan(const char* p, size_t n) {
  // Literal contents are skipped whole: a message body may hold any bytes.
  for (size_t i = 0; i < n; ++i) {
    if (state_ == State::kLiteral) {
      size_t skip = static_cast<size_t>(std::min<uint64_t>(literal_left_, n - i));
      literal_left_ -= skip;
      i += skip - 1;
      if (literal_left_ == 0) state_ = State::kNormal;
      continue;
    }
    if (!Step(p[i])) return false;
  }
  return true;
}

// One byte outside a literal's contents (Scan skips those whole).
bool NestingScanner::Step(char c) {
  ++syntax_bytes_;
  switch (state_) {
    case State::kQuoted:
      if (c == '\\') state_ = State::kEscape;
      if (c == '"' || c == '\n') state_ = State::kNormal;
      if (c == '\n') depth_ = 0;
      return true;
    case State::kEscape: state_ = State::kQuoted; return true;
    case State::kSize:
      if (c >= '0' && c <= '9') {
        literal_left_ = std::min<uint64_t>(literal_left_ * 10 + static_cast<uint64_t>(c - '0'), UINT64_MAX / 100);
        return true;
      }
      if (c == '}') {
        state_ = State::kSizeCr;
        return true;
      }
      state_ = State::kNormal;
      return Step(c);
    case State::kSizeCr:
      state_ = c == '\r' ? State::kSizeLf : State::kNormal;
      return state_ == State::kSizeLf || Step(c);
    case State::kSizeLf:
      state_ = c != '\n' ? State::kNormal : literal_left_ > 0 ? State::kLiteral : State::kNormal;
      return c == '\n' || Step(c);
    default: break;
  }
  if (c == '(' && ++depth_ > kMaxResponseNesting) return false;
  if (c == ')' && depth_ > 0) --depth_;
  if (c == '"') state_ = State::kQuoted;
  if (c == '{') {
    state_ = State::kSize;
    literal_left_ = 0;
  }
  if (c == '\n') depth_ = 0;
  return true;
}

}  // namespace mailhook::imap
