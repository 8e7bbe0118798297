// One hook: command (argv), env values and pass_env names.
#include "config/loader.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <set>

#include "util/subprocess.h"

namespace mailhook::config::internal {
/// An environment variable name for a hook: a POSIX shell name.
bool Loader::CheckEnvName(const YAML::Node& at, const std::string& name, const std::string& where) {
  bool ok = !name.empty() && !std::isdigit(static_cast<unsigned char>(name[0])) &&
            std::all_of(name.begin(), name.end(),
                        [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; });
  if (!ok) {
    Fail(at, "variable name " + Q(name) + " in " + where +
                 " is not valid; use letters, digits and '_', not starting with a digit");
  }
  return ok;
}

/// env: { NAME: "value", NAME: { file: PATH }, NAME: { command: [argv] } }.
void Loader::ParseHookEnv(const YAML::Node& env, const std::string& hook_where, Hook& h) {
  const std::string where = "env of " + hook_where;
  if (!env.IsMap()) {
    Fail(env, where +
                  " must be a map, e.g. env: { TICKET_URL: \"https://...\", "
                  "TICKET_TOKEN: { file: /run/secrets/ticket_token } }");
    return;
  }
  std::set<std::string> seen;
  for (const auto& kv : env) {
    const std::string name = kv.first.Scalar();
    const YAML::Node& value = kv.second;
    if (!CheckEnvName(kv.first, name, where)) continue;
    if (name.starts_with("MAILHOOK_")) {
      Fail(kv.first, Q(name) + " in " + where +
                         ": MAILHOOK_* variables are set by mailhook; "
                         "choose another name");
      continue;
    }
    if (!seen.insert(name).second) {
      Fail(kv.first, Q(name) + " appears twice in " + where + "; keep one");
      continue;
    }
    const std::string value_where = "variable " + Q(name) + " of " + hook_where;
    if (auto secret = EnvValue(value, name, where, value_where)) h.env.emplace_back(name, std::move(*secret));
  }
}

/// One env value: "text", { file: PATH } or { command: [argv] }.
std::optional<SecretRef> Loader::EnvValue(const YAML::Node& value, const std::string& name, const std::string& where,
                                          const std::string& value_where) {
  if (value.IsScalar()) {
    auto text = Expand(value, name, where);
    if (!text) return std::nullopt;
    return Checked(value, SecretRef(util::Secret(std::move(*text))).WithName(value_where), SecretRule::kEnvValue);
  }
  if (!value.IsMap()) {
    Fail(value, value_where + " must be a string, { file: PATH } or { command: [argv] }");
    return std::nullopt;
  }
  if (!CheckKeys(value, keys::kEnvValue, value_where)) return std::nullopt;
  bool file = Present(value["file"]), command = Present(value["command"]);
  if (file == command) {
    // Neither, with other keys: CheckKeys has named the known ones.
    if (file || value.size() == 0) {
      Fail(value, value_where + " needs exactly one of file: PATH or command: [argv]");
    }
    return std::nullopt;
  }
  if (file) {
    auto path = Str(value, "file", value_where);
    if (!path) return std::nullopt;
    return Checked(value["file"], FileRef(*path, "file", value_where), SecretRule::kEnvValue);
  }
  auto argv = List(value, "command", value_where, "[\"/usr/local/bin/get-secret\", \"ticket\"]");
  if (!argv) return std::nullopt;
  auto ref = CommandRef(value["command"], *argv, "command", value_where);
  if (!ref) return std::nullopt;
  return Checked(value["command"], std::move(*ref), SecretRule::kEnvValue);
}

void Loader::ParseHookPassEnv(const YAML::Node& node, const std::string& where, Hook& h) {
  auto names = ListNodes(node, "pass_env", where, "[HTTPS_PROXY, NO_PROXY]");
  if (!names) return;
  for (const auto& [name, at] : *names) {
    if (CheckEnvName(at, name, "pass_env of " + where)) h.pass_env.push_back(name);
  }
}

void Loader::ParseHook(const YAML::Node& node, size_t index, Config& cfg) {
  Hook h;
  std::string where = EntryName(node, "hook", "hooks", index, h.name);
  if (!CheckKeys(node, keys::kHook, where)) return;
  ClaimTargetName(node, "hook", h.name);
  YAML::Node command = node["command"];
  if (!Present(command)) {
    Fail(node, where + " has no \"command\"; add command: [\"/path/to/script\", \"arg\"]");
  } else if (command.IsScalar()) {
    Fail(command, "\"command\" in " + where +
                      " must be a list (argv; no shell runs it), e.g. "
                      "command: [\"/usr/local/bin/save-event\", \"/var/lib/mailhook/events\"]");
  } else if (auto argv = List(node, "command", where, "[\"/path/to/script\", \"arg\"]")) {
    if (argv->empty() || (*argv)[0].empty()) {
      Fail(command, "\"command\" in " + where + " is empty; give the program to run first");
    } else if (auto program = util::FindProgram((*argv)[0], std::getenv("PATH")); !program.ok()) {
      // Refused here (check and start-up alike), not at the first event.
      Fail(command[0], "\"command\" in " + where + ": " + program.error().message());
    } else {
      h.command = *argv;
    }
  }
  ParseDelivery(node, where, cfg, h);
  if (Present(node["env"])) ParseHookEnv(node["env"], where, h);
  ParseHookPassEnv(node, where, h);
  cfg.hooks.push_back(std::move(h));
}

}  // namespace mailhook::config::internal
