#pragma once
/// Base64 (RFC 4648 section 4, the standard alphabet) for every area: one
/// encoder, and the strict decoder for text a person configured (signing
/// secrets). Message bodies are decoded by mime::DecodeBase64 instead, which
/// follows RFC 2045 6.8 and skips what is not in the alphabet: mail is
/// decoded leniently, configuration strictly, on purpose.

#include <optional>
#include <string>
#include <string_view>

namespace mailhook::util {

/// The 6-bit value of a character of the alphabet, or -1 for any other.
int Base64Value(char c);

/// Base64 with '=' padding and without line breaks.
std::string Base64Encode(std::string_view bytes);

/// Encodes a stream given in pieces of any size; Finish() pads the last
/// quantum. The concatenated output equals Base64Encode of the whole input.
class Base64Encoder {
 public:
  /// Appends the encoding of every complete 3-byte group of `in` (with the
  /// bytes carried from earlier calls) to `out`.
  void Add(std::string_view in, std::string& out);
  /// Appends the padded last quantum, if any, and resets the encoder.
  void Finish(std::string& out);

 private:
  unsigned char carry_[2] = {0, 0};
  int carried_ = 0;
};

/// Strict decoding: only the alphabet, '=' padding optional but, when given,
/// complete and only at the end; no white space. nullopt for anything else,
/// so a mistyped secret is an error and never a different key.
std::optional<std::string> Base64DecodeStrict(std::string_view text);

}  // namespace mailhook::util
