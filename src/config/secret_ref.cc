#include "config/secret_ref.h"

#include <algorithm>
#include <cctype>

#include "config/secret_source.h"
#include "util/base64.h"
#include "util/known_secrets.h"

namespace mailhook::config {
namespace {

util::Error RuleError(const std::string& name, const std::string& what) {
  return util::Error("config.secret", util::RetryClass::kNeedsOperator, name + " " + what);
}

// The rule delivery/signing.cc's DecodeSecret applies: strict base64 (util),
// at least one key byte.
bool DecodableBase64(std::string_view text) {
  std::optional<std::string> key = util::Base64DecodeStrict(text);
  return key && !key->empty();
}

}  // namespace

util::Status CheckSecretValue(const util::Secret& value, SecretRule rule, const std::string& name) {
  const std::string& v = value.reveal();
  switch (rule) {
    case SecretRule::kAny: return util::Ok();
    case SecretRule::kHeaderValue:
      if (v.find_first_of("\r\n") == std::string::npos) return util::Ok();
      return RuleError(name,
                       "contains a line break; a header value must be one line "
                       "(a *_file secret may end in one newline only)");
    case SecretRule::kEnvValue:
      if (v.find('\0') == std::string::npos) return util::Ok();
      return RuleError(name, "contains a NUL byte, which an environment variable cannot hold");
    case SecretRule::kSigningKey: {
      std::string_view key = v;
      if (key.starts_with("whsec_")) key.remove_prefix(6);
      if (DecodableBase64(key)) return util::Ok();
      return RuleError(name,
                       "is not whsec_<base64> (Standard Webhooks); generate one with: "
                       "echo whsec_$(openssl rand -base64 32)");
    }
  }
  return util::Ok();
}

SecretRef SecretRef::File(std::filesystem::path path) {
  SecretRef ref;
  ref.kind_ = Kind::kFile;
  ref.file_ = std::move(path);
  return ref;
}

SecretRef SecretRef::Command(std::vector<std::string> argv) {
  SecretRef ref;
  ref.kind_ = Kind::kCommand;
  ref.command_ = std::move(argv);
  return ref;
}

SecretRef& SecretRef::WithRule(SecretRule rule) {
  rule_ = rule;
  return *this;
}

SecretRef& SecretRef::WithPrefix(std::string prefix) {
  prefix_ = std::move(prefix);
  return *this;
}

SecretRef& SecretRef::WithName(std::string name) {
  name_ = std::move(name);
  return *this;
}

util::Status SecretRef::CheckValue(const util::Secret& value) const { return CheckSecretValue(value, rule_, name_); }

util::Result<util::Secret> SecretRef::Resolve() const {
  util::Secret raw;
  if (kind_ == Kind::kInline) {
    raw = value_;
  } else {
    auto got = kind_ == Kind::kFile ? ReadSecretFile(file_) : RunSecretCommand(command_);
    if (!got.ok()) return got.error().WithMessage(name_ + ": " + got.error().message());
    raw = std::move(got).value();
  }
  util::Secret value = prefix_.empty() ? std::move(raw) : util::Secret(prefix_ + raw.reveal());
  if (auto st = CheckValue(value); !st.ok()) return st.error();
  // For the protocol trace's last line of defence (util/known_secrets.h).
  const auto lifetime = kind_ == Kind::kCommand ? util::SecretLifetime::kRenewed : util::SecretLifetime::kLasting;
  util::RememberSecret(raw.reveal(), lifetime);
  util::RememberSecret(value.reveal(), lifetime);
  return value;
}

util::Status SecretRef::CheckWithoutRunning() const {
  if (kind_ == Kind::kCommand) return util::Ok();
  auto value = Resolve();
  if (!value.ok()) return value.error();
  return util::Ok();
}

}  // namespace mailhook::config
