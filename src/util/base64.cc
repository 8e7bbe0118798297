#include "util/base64.h"

#include <cstdint>

namespace mailhook::util {
namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

uint32_t Byte(char c) { return static_cast<uint32_t>(static_cast<unsigned char>(c)); }

void EncodeTriple(uint32_t v, std::string& out) {
  out.push_back(kAlphabet[(v >> 18) & 63]);
  out.push_back(kAlphabet[(v >> 12) & 63]);
  out.push_back(kAlphabet[(v >> 6) & 63]);
  out.push_back(kAlphabet[v & 63]);
}

}  // namespace

int Base64Value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

void Base64Encoder::Add(std::string_view in, std::string& out) {
  size_t i = 0;
  if (carried_ == 1 && i < in.size()) {
    carry_[1] = static_cast<unsigned char>(in[i++]);
    carried_ = 2;
  }
  if (carried_ == 2 && i < in.size()) {
    EncodeTriple((uint32_t{carry_[0]} << 16) | (uint32_t{carry_[1]} << 8) | Byte(in[i++]), out);
    carried_ = 0;
  }
  if (carried_ != 0) return;  // `in` ended before the carried triple was complete
  for (; i + 3 <= in.size(); i += 3) EncodeTriple((Byte(in[i]) << 16) | (Byte(in[i + 1]) << 8) | Byte(in[i + 2]), out);
  // At most two bytes are left: carried to the next call or to Finish.
  const size_t rest = in.size() - i;
  if (rest >= 1) carry_[0] = static_cast<unsigned char>(in[i]);
  if (rest == 2) carry_[1] = static_cast<unsigned char>(in[i + 1]);
  carried_ = static_cast<int>(rest);
}

void Base64Encoder::Finish(std::string& out) {
  if (carried_ == 0) return;
  uint32_t v = uint32_t{carry_[0]} << 16;
  if (carried_ == 2) v |= uint32_t{carry_[1]} << 8;
  out.push_back(kAlphabet[(v >> 18) & 63]);
  out.push_back(kAlphabet[(v >> 12) & 63]);
  out.push_back(carried_ == 2 ? kAlphabet[(v >> 6) & 63] : '=');
  out.push_back('=');
  carried_ = 0;
}

std::string Base64Encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  Base64Encoder encoder;
  encoder.Add(bytes, out);
  encoder.Finish(out);
  return out;
}

std::optional<std::string> Base64DecodeStrict(std::string_view text) {
  size_t pad = 0;
  while (pad < text.size() && pad < 2 && text[text.size() - 1 - pad] == '=') ++pad;
  std::string_view data = text.substr(0, text.size() - pad);
  // A lone character in the last quantum carries no whole byte; padding, when
  // present, must fill the last quantum exactly.
  if (data.size() % 4 == 1) return std::nullopt;
  if (pad > 0 && (data.size() + pad) % 4 != 0) return std::nullopt;
  std::string out;
  out.reserve(data.size() * 3 / 4);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : data) {
    int v = Base64Value(c);
    if (v < 0) return std::nullopt;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  return out;
}

}  // namespace mailhook::util
