#pragma once
/// SecretRef: where one secret comes from (inline in the config, a file, or a
/// command), parsed by the loader and resolved where it is used, not while the
/// config is read: `mailhook check` (without --connect) and `mailhook
/// deadletters` never run a `*_command`. Resolved at each IMAP login (a
/// token helper gives a fresh OAuth2 token each time), when the dispatcher
/// builds a webhook (signing secrets, header values) and when it builds a hook
/// (env values).
///
/// Each reference carries the rule its value must meet (a header value is one
/// line, an environment value has no NUL, a signing secret is whsec_<base64>),
/// so the loader (inline values, files) and every use site (all kinds) apply
/// the same check. Errors name the key and file or command, never the value.
/// Value type; Resolve() blocks while a command runs (config/secret_source.h).

#include <filesystem>
#include <string>
#include <vector>

#include "util/result.h"
#include "util/secret.h"

namespace mailhook::config {

/// What a resolved value must look like.
enum class SecretRule {
  kAny,          ///< a password or token
  kHeaderValue,  ///< an HTTP header value: no CR or LF (request splitting)
  kEnvValue,     ///< an environment variable: no NUL byte
  kSigningKey,   ///< whsec_<base64> or bare base64 with at least one key byte
};

/// One secret's source.
class SecretRef {
 public:
  enum class Kind { kInline, kFile, kCommand };

  SecretRef() = default;
  /// An inline value (implicit: a literal in a test or a config reads as one).
  SecretRef(util::Secret value) : value_(std::move(value)) {}  // NOLINT(google-explicit-constructor)
  static SecretRef File(std::filesystem::path path);
  static SecretRef Command(std::vector<std::string> argv);

  /// Sets what the value must look like (the loader does, per key).
  SecretRef& WithRule(SecretRule rule);
  /// Text put before the resolved value (headers: `prefix: "Bearer "`).
  SecretRef& WithPrefix(std::string prefix);
  /// How errors name the secret: `"password_command" in account "support"`.
  SecretRef& WithName(std::string name);

  Kind kind() const { return kind_; }
  const std::filesystem::path& file() const { return file_; }
  const std::vector<std::string>& command() const { return command_; }
  bool empty() const { return kind_ == Kind::kInline && value_.empty(); }

  /// The value now: reads the file or runs the command (every call, so a
  /// rotated file or a fresh token is seen), adds the prefix, checks the rule.
  util::Result<util::Secret> Resolve() const;

  /// What the loader may check without running anything: an inline value
  /// against the rule; a file read and checked (reading has no side effect).
  /// A command is not run (util::Ok()).
  util::Status CheckWithoutRunning() const;

  bool operator==(const SecretRef& other) const = default;

 private:
  util::Status CheckValue(const util::Secret& value) const;

  Kind kind_ = Kind::kInline;
  util::Secret value_;
  std::filesystem::path file_;
  std::vector<std::string> command_;
  std::string prefix_;
  std::string name_ = "a secret";
  SecretRule rule_ = SecretRule::kAny;
};

/// Checks a value against `rule`; the message says what is wrong and the fix
/// and names `name`, never the value.
util::Status CheckSecretValue(const util::Secret& value, SecretRule rule, const std::string& name);

}  // namespace mailhook::config
