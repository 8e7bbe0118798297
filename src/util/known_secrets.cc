#include "util/known_secrets.h"

#include <algorithm>
#include <deque>
#include <mutex>

#include "util/base64.h"

namespace mailhook::util {
namespace {

std::mutex g_known_secrets_mu;
// Per lifetime, newest last; each entry holds a value or its base64 form.
std::deque<std::string>& Forms(SecretLifetime lifetime) {
  // Never destroyed: a trace may run while static destructors do.
  static auto* lasting = new std::deque<std::string>();
  static auto* renewed = new std::deque<std::string>();
  return lifetime == SecretLifetime::kLasting ? *lasting : *renewed;
}

}  // namespace

void RememberSecret(const std::string& value, SecretLifetime lifetime) {
  if (value.size() < kMinKnownSecretLength) return;
  std::lock_guard lock(g_known_secrets_mu);
  std::deque<std::string>& forms = Forms(lifetime);
  for (const std::string& form : {value, Base64Encode(value)}) {
    if (std::find(forms.begin(), forms.end(), form) != forms.end()) continue;
    forms.push_back(form);
    if (forms.size() > 2 * kMaxKnownSecrets) forms.pop_front();
  }
}

std::string RedactKnownSecrets(std::string text) {
  std::lock_guard lock(g_known_secrets_mu);
  for (SecretLifetime lifetime : {SecretLifetime::kLasting, SecretLifetime::kRenewed}) {
    for (const std::string& form : Forms(lifetime)) {
      for (size_t at = text.find(form); at != std::string::npos; at = text.find(form, at + 10)) {
        text.replace(at, form.size(), "<redacted>");
      }
    }
  }
  return text;
}

}  // namespace mailhook::util
