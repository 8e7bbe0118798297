#include "config/config_fingerprint.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <utility>

#include "config/loader.h"
#include "util/target_id.h"

namespace mailhook::config {
namespace {

// Keys a running daemon keeps: the state (its lock, its store, where the
// store lives), the bound HTTP port and the logger are set up once per process.
const std::set<std::string> kRestartOnly = {"state_dir", "http", "log", "store"};
// Top-level keys only accounts read; any other top-level key (one added
// later) counts for accounts and targets alike.
const std::set<std::string> kAccountsOnly = {"limits"};
const std::set<std::string> kLists = {"accounts", "webhooks", "hooks", "smtp"};

// Length-prefixed, so no scalar can imitate the structure around it.
void Canonical(const YAML::Node& node, std::string& out) {
  switch (node.Type()) {
    case YAML::NodeType::Scalar: out += std::to_string(node.Scalar().size()) + ":" + node.Scalar(); return;
    case YAML::NodeType::Sequence:
      out += "[";
      for (const auto& item : node) {
        Canonical(item, out);
        out += ",";
      }
      out += "]";
      return;
    case YAML::NodeType::Map: {
      std::vector<std::pair<std::string, std::string>> entries;
      for (const auto& kv : node) {
        std::string key, value;
        Canonical(kv.first, key);
        Canonical(kv.second, value);
        entries.emplace_back(std::move(key), std::move(value));
      }
      std::sort(entries.begin(), entries.end());
      out += "{";
      for (const auto& [key, value] : entries) out += key + "=" + value + ";";
      out += "}";
      return;
    }
    default: out += "~";  // null or undefined
  }
}

std::string Canonical(const YAML::Node& node) {
  std::string out;
  Canonical(node, out);
  return out;
}

// Each named entry of a list, by the key `prefix + name`.
void AddEntries(const YAML::Node& list, const std::string& prefix, const std::string& shared,
                std::map<std::string, std::string>& out) {
  if (!list || !list.IsSequence()) return;
  for (const auto& entry : list) {
    if (!entry.IsMap() || !entry["name"] || !entry["name"].IsScalar()) continue;
    out[prefix + entry["name"].Scalar()] = Canonical(entry) + "|" + shared;
  }
}

std::vector<std::string> Sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}

// added / removed / changed between two maps of canonical forms.
void Compare(const std::map<std::string, std::string>& running, const std::map<std::string, std::string>& next,
             std::vector<std::string>& added, std::vector<std::string>& removed, std::vector<std::string>& changed) {
  for (const auto& [name, form] : next) {
    auto it = running.find(name);
    if (it == running.end()) {
      added.push_back(name);
    } else if (it->second != form) {
      changed.push_back(name);
    }
  }
  for (const auto& [name, form] : running) {
    if (!next.count(name)) removed.push_back(name);
  }
}

}  // namespace

util::Result<ConfigFingerprint> FingerprintConfig(const std::string& text) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return util::Error("config.fingerprint", util::RetryClass::kNeedsOperator, "YAML syntax error: " + e.msg);
  }
  ConfigFingerprint fp;
  for (const auto& key : kRestartOnly) fp.restart_only[key] = "";
  // Sorted by key, so that moving a top-level section is no change.
  std::map<std::string, std::string> shared;
  if (root.IsMap()) {
    for (const auto& kv : root) {
      if (!kv.first.IsScalar()) continue;
      const std::string key = kv.first.Scalar();
      if (kRestartOnly.count(key)) {
        fp.restart_only[key] = Canonical(kv.second);
      } else if (!kLists.count(key)) {
        shared[key] = Canonical(kv.second);
      }
    }
  }
  std::string for_accounts, for_targets;
  for (const auto& [key, form] : shared) {
    for_accounts += key + "=" + form + ";";
    if (!kAccountsOnly.count(key)) for_targets += key + "=" + form + ";";
  }
  AddEntries(root["accounts"], "", for_accounts, fp.accounts);
  AddEntries(root["webhooks"], util::TargetId::Webhook("").ToString(), for_targets, fp.targets);
  AddEntries(root["hooks"], util::TargetId::Hook("").ToString(), for_targets, fp.targets);
  AddEntries(root["smtp"], util::TargetId::Smtp("").ToString(), for_targets, fp.targets);
  return fp;
}

bool ConfigChanges::empty() const {
  return accounts_added.empty() && accounts_removed.empty() && accounts_changed.empty() && targets_added.empty() &&
         targets_removed.empty() && targets_changed.empty() && restart_needed.empty();
}

ConfigChanges CompareConfigs(const ConfigFingerprint& running, const ConfigFingerprint& next) {
  ConfigChanges c;
  Compare(running.accounts, next.accounts, c.accounts_added, c.accounts_removed, c.accounts_changed);
  Compare(running.targets, next.targets, c.targets_added, c.targets_removed, c.targets_changed);
  for (const auto& [key, form] : next.restart_only) {
    auto it = running.restart_only.find(key);
    if (it == running.restart_only.end() || it->second != form) c.restart_needed.push_back(key);
  }
  for (auto* v : {&c.accounts_added, &c.accounts_removed, &c.accounts_changed, &c.targets_added, &c.targets_removed,
                  &c.targets_changed, &c.restart_needed}) {
    *v = Sorted(std::move(*v));
  }
  return c;
}

LoadedConfig LoadConfigWithFingerprint(const std::string& path) {
  LoadedConfig out;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    out.result.file = path;
    out.result.errors.push_back(
        {path, 0, 0,
         std::string("cannot read the config file: ") + std::strerror(errno) + "; check the path given with -c"});
    return out;
  }
  std::ostringstream buf;
  buf << in.rdbuf();
  const std::string text = buf.str();
  // As LoadConfig: relative *_file paths are relative to the config file.
  out.result = internal::Loader(path, std::filesystem::path(path).parent_path()).Load(text);
  if (!out.result.config) return out;
  auto fp = FingerprintConfig(text);
  if (fp.ok()) out.fingerprint = std::move(fp).value();
  return out;
}

}  // namespace mailhook::config
