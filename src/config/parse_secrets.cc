// Secrets: `<key>`, `<key>_file` or `<key>_command` into a SecretRef, checked
// as far as possible without running anything (config/secret_ref.h).
#include "config/loader.h"

namespace mailhook::config::internal {

// ---- secrets ----
std::filesystem::path Loader::Resolve(const std::string& path) const {
  std::filesystem::path p(path);
  return p.is_relative() && !base_dir_.empty() ? base_dir_ / p : p;
}

/// A file secret: the path resolved against the config's directory.
SecretRef Loader::FileRef(const std::string& path, std::string_view key, const std::string& where) const {
  return SecretRef::File(Resolve(path)).WithName(Q(key) + " in " + where);
}

/// A command secret; never run here (secret_ref.h says where it runs).
std::optional<SecretRef> Loader::CommandRef(const YAML::Node& node, const std::vector<std::string>& argv,
                                            std::string_view key, const std::string& where) {
  if (argv.empty() || argv[0].empty()) {
    Fail(node, Q(key) + " in " + where + " is empty; give the program and its arguments");
    return std::nullopt;
  }
  return SecretRef::Command(argv).WithName(Q(key) + " in " + where);
}

/// Checks what can be checked without running a command (an inline value,
/// a file's content) with the rule every use applies; reports at `at`.
std::optional<SecretRef> Loader::Checked(const YAML::Node& at, SecretRef ref, SecretRule rule) {
  ref.WithRule(rule);
  if (auto st = ref.CheckWithoutRunning(); !st.ok()) {
    Fail(at, st.error().message());
    return std::nullopt;
  }
  return ref;
}

/// One secret given as `<base>`, `<base>_file` or `<base>_command`.
/// `given` tells whether any of the three keys was present.
std::optional<SecretRef> Loader::SecretValue(const YAML::Node& map, const std::string& base, const std::string& where,
                                             bool* given, SecretRule rule, const std::string& prefix) {
  const std::string file_key = base + "_file", command_key = base + "_command";
  int count = Present(map[base]) + Present(map[file_key]) + Present(map[command_key]);
  if (given) *given = count > 0;
  if (count == 0) return std::nullopt;
  if (count > 1) {
    Fail(map, where + " sets more than one of " + base + ", " + file_key + ", " + command_key + "; keep one");
    return std::nullopt;
  }
  if (Present(map[base])) {
    auto v = Str(map, base, where);
    if (v && v->empty()) {
      Fail(map[base], Q(base) + " in " + where + " is empty; set the secret (or use " + file_key + ")");
      return std::nullopt;
    }
    if (!v) return std::nullopt;
    SecretRef ref = SecretRef(util::Secret(std::move(*v))).WithName(Q(base) + " in " + where);
    return Checked(map[base], std::move(ref.WithPrefix(prefix)), rule);
  }
  if (Present(map[file_key])) {
    auto path = Str(map, file_key, where);
    if (!path) return std::nullopt;
    return Checked(map[file_key], std::move(FileRef(*path, file_key, where).WithPrefix(prefix)), rule);
  }
  auto argv = List(map, command_key, where, "[\"pass\", \"show\", \"imap/support\"]");
  if (!argv) return std::nullopt;
  auto ref = CommandRef(map[command_key], *argv, command_key, where);
  if (!ref) return std::nullopt;
  return Checked(map[command_key], std::move(ref->WithPrefix(prefix)), rule);
}

}  // namespace mailhook::config::internal
