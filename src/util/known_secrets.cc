#include "util/known_secrets.h"

#include <algorithm>
#include <deque>
#include <mutex>

#include "util/base64.h"

namespace mailhook::util {
namespace {

std::mutex g_mu;
// Newest last; each entry holds a value and its base64 form.
std::deque<std::string>& Forms() {
  // Never destroyed: a trace may run while static destructors do.
  static auto* forms = new std::deque<std::string>();
  return *forms;
}

}  // namespace

void RememberSecret(const std::string& value) {
  if (value.size() < kMinKnownSecretLength) return;
  std::lock_guard lock(g_mu);
  std::deque<std::string>& forms = Forms();
  for (const std::string& form : {value, Base64Encode(value)}) {
    if (std::find(forms.begin(), forms.end(), form) != forms.end()) continue;
    forms.push_back(form);
    if (forms.size() > 2 * kMaxKnownSecrets) forms.pop_front();
  }
}

std::string RedactKnownSecrets(std::string text) {
  std::lock_guard lock(g_mu);
  for (const std::string& form : Forms()) {
    for (size_t at = text.find(form); at != std::string::npos; at = text.find(form, at + 10)) {
      text.replace(at, form.size(), "<redacted>");
    }
  }
  return text;
}

}  // namespace mailhook::util
