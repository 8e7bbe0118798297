#pragma once
/// Standard Webhooks signatures (https://www.standardwebhooks.com/, "Signature
/// scheme"): HMAC-SHA256 over "<id>.<timestamp>.<body>" with the base64-decoded
/// part of a `whsec_<base64>` secret, sent as "v1,<base64 mac>"; several secrets
/// (during rotation) give several space-separated signatures.
///
/// Pure functions, thread-safe. A malformed secret is an Error that names the fix;
/// the secret's value never appears in a message.

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "util/result.h"
#include "util/secret.h"

namespace mailhook::delivery {

/// Decodes a `whsec_<base64>` (or bare base64) secret to its key bytes.
util::Result<std::string> DecodeSecret(const util::Secret& secret);

/// The key bytes of one signing secret, decoded once (at start-up, by the
/// webhook target) and used for every signature after; never printed.
struct SigningKey {
  util::Secret bytes;
};

/// DecodeSecret as a SigningKey.
util::Result<SigningKey> DecodeSigningKey(const util::Secret& secret);

/// The webhook-signature header value for already decoded keys, space-separated.
util::Result<std::string> SignatureHeader(const std::vector<SigningKey>& keys, std::string_view id, int64_t timestamp,
                                          std::string_view body);

/// "v1,<base64 HMAC-SHA256(key, id.timestamp.body)>".
util::Result<std::string> Sign(const util::Secret& secret, std::string_view id, int64_t timestamp,
                               std::string_view body);

/// The webhook-signature header value for every secret, space-separated.
util::Result<std::string> SignatureHeader(const std::vector<util::Secret>& secrets, std::string_view id,
                                          int64_t timestamp, std::string_view body);

/// True when the timestamp is within `tolerance` of `now` and one of the
/// signatures in `signature_header` matches one of the secrets (constant-time
/// comparison). Malformed input is simply "not verified".
bool Verify(const std::vector<util::Secret>& secrets, std::string_view id, std::string_view timestamp,
            std::string_view body, std::string_view signature_header, std::chrono::system_clock::time_point now,
            std::chrono::seconds tolerance = std::chrono::minutes(5));

}  // namespace mailhook::delivery
