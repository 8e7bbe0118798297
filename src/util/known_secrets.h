#pragma once
/// KnownSecrets: every secret value this process resolved from the config
/// (inline, `*_file`, `*_command`: passwords, tokens, webhook secrets and
/// header values, hook environment values), kept so that the protocol trace
/// can cut them out wherever they turn up, in their raw and base64 forms.
/// A last line of defence: each trace also redacts what it knows it sent.
///
/// Thread-safe. Bounded: at most kMaxKnownSecrets values of each lifetime
/// are kept (the newest), so the values a command renews at every login
/// (tokens) never push out the lasting ones (webhook secrets, passwords from
/// files); values shorter than kMinKnownSecretLength are not kept (they
/// would cut ordinary words).

#include <cstddef>
#include <string>

namespace mailhook::util {

inline constexpr size_t kMaxKnownSecrets = 256;
inline constexpr size_t kMinKnownSecretLength = 6;

/// How long a secret value is expected to be in use.
enum class SecretLifetime {
  kLasting,  ///< inline or from a file: the same value for a long time
  kRenewed,  ///< from a command or a token endpoint: a new value often
};

/// Remembers `value` (and its base64 form) as a secret of this process.
void RememberSecret(const std::string& value, SecretLifetime lifetime = SecretLifetime::kLasting);

/// `text` with every remembered secret form replaced by "<redacted>".
std::string RedactKnownSecrets(std::string text);

}  // namespace mailhook::util
