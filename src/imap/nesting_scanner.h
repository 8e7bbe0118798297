#pragma once
/// NestingScanner: follows how deep parenthesised lists nest in the bytes an
/// IMAP server sends, by IMAP's lexical rules (RFC 3501 §4, §9): parentheses
/// count outside quoted strings and literals, and nothing nests across a line
/// end. libetpan's parser recurses once per level; measured, 50,000 nested
/// multiparts (500 KB) overflow an 8 MB stack, so the transport refuses a
/// response before it reaches the parser that deep.

#include <cstddef>
#include <cstdint>

namespace mailhook::imap {

/// How deep lists may nest. Real responses stay far below (Dovecot caps MIME
/// nesting at 100 levels, a few parentheses each); libetpan overflows an 8 MB
/// stack somewhere between 10,000 and 50,000.
inline constexpr uint32_t kMaxResponseNesting = 1000;

/// State carried across reads of one stream (a literal or a quoted string
/// may span reads). Not thread-safe; one per stream.
class NestingScanner {
 public:
  /// Scans `n` more bytes; false once the nesting passed kMaxResponseNesting.
  bool Scan(const char* p, size_t n);
  /// Bytes scanned outside literal contents since the last reset: what
  /// libetpan turns into objects (literals it only copies).
  uint64_t syntax_bytes() const { return syntax_bytes_; }
  void ResetSyntaxBytes() { syntax_bytes_ = 0; }

 private:
  enum class State { kNormal, kQuoted, kEscape, kSize, kSizeCr, kSizeLf, kLiteral };
  bool Step(char c);

  State state_ = State::kNormal;
  uint64_t literal_left_ = 0;
  uint32_t depth_ = 0;
  uint64_t syntax_bytes_ = 0;
};

}  // namespace mailhook::imap
