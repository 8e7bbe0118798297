#pragma once
/// KnownSecrets: every secret value this process resolved from the config
/// (inline, `*_file`, `*_command`: passwords, tokens, webhook secrets and
/// header values, hook environment values), kept so that the protocol trace
/// can cut them out wherever they turn up, in their raw and base64 forms.
/// A last line of defence: each trace also redacts what it knows it sent.
///
/// Thread-safe. Bounded: at most kMaxKnownSecrets values are kept (the
/// newest: a token command gives a new token per login), and values shorter
/// than kMinKnownSecretLength are not kept (they would cut ordinary words).

#include <cstddef>
#include <string>

namespace mailhook::util {

inline constexpr size_t kMaxKnownSecrets = 256;
inline constexpr size_t kMinKnownSecretLength = 6;

/// Remembers `value` (and its base64 form) as a secret of this process.
void RememberSecret(const std::string& value);

/// `text` with every remembered secret form replaced by "<redacted>".
std::string RedactKnownSecrets(std::string text);

}  // namespace mailhook::util
