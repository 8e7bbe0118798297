#include "config/expand.h"

#include <cstdlib>

namespace mailhook::config {
namespace {

bool IsNameStart(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_'; }
bool IsNameChar(char c) { return IsNameStart(c) || (c >= '0' && c <= '9'); }

}  // namespace

Expansion ExpandEnv(std::string_view text, const EnvLookup& lookup) {
  Expansion out;
  size_t i = 0;
  while (i < text.size()) {
    char c = text[i];
    if (c != '$') {
      out.text += c;
      ++i;
      continue;
    }
    // "$${" escapes a literal "${" (compose files use the same spelling).
    if (text.substr(i, 3) == "$${") {
      out.text += "${";
      i += 3;
      continue;
    }
    if (text.substr(i, 2) != "${") {
      out.text += c;
      ++i;
      continue;
    }
    size_t close = text.find('}', i + 2);
    if (close == std::string_view::npos) {
      out.malformed.push_back("\"${\" without a closing \"}\" (write $${ for a literal ${)");
      return out;
    }
    std::string_view body = text.substr(i + 2, close - i - 2);
    size_t op = body.find(":-");
    std::string_view name = body.substr(0, op);
    bool valid = !name.empty() && IsNameStart(name[0]);
    for (char n : name) valid = valid && IsNameChar(n);
    if (!valid) {
      out.malformed.push_back("\"${" + std::string(body) +
                              "}\" is not a variable reference: names are letters, digits "
                              "and '_' (write $${ for a literal ${)");
      i = close + 1;
      continue;
    }
    const char* value = lookup(std::string(name));
    if (op != std::string_view::npos) {
      if (value != nullptr && *value != '\0') {
        out.text += value;
      } else {
        out.text += body.substr(op + 2);
      }
    } else if (value != nullptr) {
      out.text += value;
    } else {
      out.missing.emplace_back(name);
    }
    i = close + 1;
  }
  return out;
}

Expansion ExpandEnv(std::string_view text) {
  return ExpandEnv(text, [](const std::string& name) { return std::getenv(name.c_str()); });
}

}  // namespace mailhook::config
