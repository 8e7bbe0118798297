#include "delivery/signing.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <charconv>
#include <memory>
#include <optional>

#include "util/base64.h"

namespace mailhook::delivery {

using util::Error;
using util::Result;
using util::RetryClass;

Result<std::string> DecodeSecret(const util::Secret& secret) {
  std::string_view text = secret.reveal();
  constexpr std::string_view kPrefix = "whsec_";
  if (text.substr(0, kPrefix.size()) == kPrefix) text.remove_prefix(kPrefix.size());
  std::optional<std::string> key = util::Base64DecodeStrict(text);
  if (!key || key->empty()) {
    return Error("signing.secret", RetryClass::kNeedsOperator,
                 "webhook secret is not whsec_<base64>; generate one with "
                 "`echo whsec_$(openssl rand -base64 32)`");
  }
  return *std::move(key);
}

namespace {

// HMAC-SHA256 over "<id>.<timestamp>.<body>", fed in pieces: the body (an
// event, possibly with large attachment contents) is never copied.
std::string Mac(const std::string& key, std::string_view id, std::string_view timestamp, std::string_view body) {
  // Fetched once: EVP_MAC_fetch looks the algorithm up in the provider
  // store under a lock at every call (1 % of a burst's CPU, issue 8). The
  // EVP_MAC is immutable and thread-safe to share; it lives until exit.
  static EVP_MAC* const mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  std::unique_ptr<EVP_MAC_CTX, decltype(&EVP_MAC_CTX_free)> ctx(mac != nullptr ? EVP_MAC_CTX_new(mac) : nullptr,
                                                                EVP_MAC_CTX_free);
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                         OSSL_PARAM_construct_end()};
  auto feed = [&](std::string_view piece) {
    return EVP_MAC_update(ctx.get(), reinterpret_cast<const unsigned char*>(piece.data()), piece.size()) == 1;
  };
  unsigned char out[EVP_MAX_MD_SIZE];
  size_t len = 0;
  if (!ctx || EVP_MAC_init(ctx.get(), reinterpret_cast<const unsigned char*>(key.data()), key.size(), params) != 1 ||
      !feed(id) || !feed(".") || !feed(timestamp) || !feed(".") || !feed(body) ||
      EVP_MAC_final(ctx.get(), out, &len, sizeof out) != 1) {
    return std::string();  // only a broken OpenSSL installation gets here
  }
  return util::Base64Encode(std::string_view(reinterpret_cast<const char*>(out), len));
}

}  // namespace

Result<std::string> Sign(const util::Secret& secret, std::string_view id, int64_t timestamp, std::string_view body) {
  auto key = DecodeSecret(secret);
  if (!key.ok()) return key.error();
  std::string mac = Mac(*key, id, std::to_string(timestamp), body);
  if (mac.empty()) {
    return Error("signing.openssl", RetryClass::kBackoff,
                 "OpenSSL could not compute HMAC-SHA256; check the OpenSSL installation (libssl3)");
  }
  return "v1," + mac;
}

Result<std::string> SignatureHeader(const std::vector<util::Secret>& secrets, std::string_view id, int64_t timestamp,
                                    std::string_view body) {
  std::string header;
  for (const auto& secret : secrets) {
    auto sig = Sign(secret, id, timestamp, body);
    if (!sig.ok()) return sig.error();
    if (!header.empty()) header += ' ';
    header += *sig;
  }
  return header;
}

Result<SigningKey> DecodeSigningKey(const util::Secret& secret) {
  auto key = DecodeSecret(secret);
  if (!key.ok()) return key.error();
  return SigningKey{util::Secret(std::move(key).value())};
}

Result<std::string> SignatureHeader(const std::vector<SigningKey>& keys, std::string_view id, int64_t timestamp,
                                    std::string_view body) {
  std::string header;
  const std::string ts = std::to_string(timestamp);
  for (const auto& key : keys) {
    std::string mac = Mac(key.bytes.reveal(), id, ts, body);
    if (mac.empty()) {
      return Error("signing.openssl", RetryClass::kBackoff,
                   "OpenSSL could not compute HMAC-SHA256; check the OpenSSL installation (libssl3)");
    }
    if (!header.empty()) header += ' ';
    header += "v1," + mac;
  }
  return header;
}

bool Verify(const std::vector<util::Secret>& secrets, std::string_view id, std::string_view timestamp,
            std::string_view body, std::string_view signature_header, std::chrono::system_clock::time_point now,
            std::chrono::seconds tolerance) {
  int64_t ts = 0;
  auto [end, ec] = std::from_chars(timestamp.data(), timestamp.data() + timestamp.size(), ts);
  if (ec != std::errc() || end != timestamp.data() + timestamp.size()) return false;
  // The timestamp bounds replays (spec: "Verifying webhooks", 5 minutes).
  int64_t now_s = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
  if (ts > now_s + tolerance.count() || ts < now_s - tolerance.count()) return false;
  for (const auto& secret : secrets) {
    auto key = DecodeSecret(secret);
    if (!key.ok()) continue;
    std::string expected = Mac(*key, id, timestamp, body);
    std::string_view rest = signature_header;
    while (!rest.empty()) {
      size_t sp = rest.find(' ');
      std::string_view one = rest.substr(0, sp);
      rest = sp == std::string_view::npos ? std::string_view() : rest.substr(sp + 1);
      if (one.substr(0, 3) != "v1,") continue;  // other versions: not ours to check
      std::string_view sig = one.substr(3);
      if (sig.size() == expected.size() && CRYPTO_memcmp(sig.data(), expected.data(), sig.size()) == 0) {
        return true;
      }
    }
  }
  return false;
}

}  // namespace mailhook::delivery
