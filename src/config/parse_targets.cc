// What webhooks, hooks and smtp targets share: a unique name, match, and
// DeliveryOptions.
#include "config/loader.h"

#include <algorithm>

namespace mailhook::config::internal {
/// A target (webhook, hook or smtp) name, unique across the lists: the outbox
/// stores deliveries by target name.
void Loader::ClaimTargetName(const YAML::Node& node, const std::string& kind, const std::string& name) {
  if (name.empty()) return;
  auto [it, inserted] = target_lines_.emplace(name, std::pair{kind, node["name"].Mark().line + 1});
  if (!inserted) {
    Fail(node["name"], kind + " name " + Q(name) + " is already used by the " + it->second.first + " at line " +
                           std::to_string(it->second.second) + "; webhook, hook and smtp target names must be unique");
  }
}

void Loader::ParseMatch(const YAML::Node& node, const std::string& target_where, const Config& cfg, Match& match) {
  std::string where = "match of " + target_where;
  if (!CheckKeys(node, keys::kMatch, where)) return;
  if (auto accounts = ListNodes(node, "accounts", where, "[support]")) {
    for (const auto& [name, anode] : *accounts) {
      if (!account_lines_.contains(name)) {
        Fail(anode, "account " + Q(name) + " in " + where +
                        " is not defined under accounts; "
                        "check the spelling");
      }
      match.accounts.push_back(name);
    }
  }
  if (auto folders = ListNodes(node, "folders", where, "[INBOX]")) {
    for (const auto& [folder, fnode] : *folders) {
      if (folder.empty()) {
        Fail(fnode, "a folder in " + where + " is empty; write e.g. INBOX or \"Support/*\"");
        continue;
      }
      FolderSelector selector(folder);
      // The router's own rule decides, so a pattern that passes here selects
      // at least one folder at run time.
      bool watched = false;
      for (const auto& a : cfg.accounts) {
        bool account_matches = match.accounts.empty() ||
                               std::find(match.accounts.begin(), match.accounts.end(), a.name) != match.accounts.end();
        for (const auto& f : a.folders) watched = watched || (account_matches && selector.Matches(f));
      }
      // Only judged against accounts that loaded cleanly, to avoid a cascade.
      if (!watched && accounts_ok_) {
        Fail(fnode, std::string(selector.is_glob() ? "folder pattern " : "folder ") + Q(folder) + " in " + where +
                        " matches no folder watched by a matching account, so nothing would match; "
                        "add the folder to the account's folders or fix the spelling "
                        "(patterns: * any characters, ? one character)");
      }
      match.folders.push_back(std::move(selector));
    }
  }
  if (auto from = List(node, "from", where, "[\"*@example.com\"]")) match.from = *from;
  if (auto subject = List(node, "subject", where, "[\"*invoice*\"]")) match.subject = *subject;
}

/// The keys webhooks and hooks share (DeliveryOptions).
void Loader::ParseDelivery(const YAML::Node& node, const std::string& where, const Config& cfg, DeliveryOptions& d) {
  if (auto t = Dur(node, "timeout", where)) {
    if (*t > kMaxTargetTimeout) {
      Fail(node["timeout"], "\"timeout\" in " + where +
                                " is longer than 10m, the most one "
                                "delivery attempt may take (a claimed event is leased for 15m, "
                                "then another worker would send it again); use at most 10m");
    } else {
      d.timeout = *t;
    }
  }
  if (Present(node["match"])) ParseMatch(node["match"], where, cfg, d.match);
  if (auto mode = Enum<AttachmentMode>(node, "attachments", where,
                                       {{"none", AttachmentMode::kNone},
                                        {"metadata", AttachmentMode::kMetadata},
                                        {"content", AttachmentMode::kContent}})) {
    d.attachments = *mode;
  }
  if (auto max = UInt(node, "max_attachment_bytes", where)) d.max_attachment_bytes = *max;
  d.retry_schedule = DefaultRetrySchedule();
  if (auto schedule = DurList(node, "retry_schedule", where)) d.retry_schedule = *schedule;
  if (auto n = Concurrency(node, where)) d.concurrency = *n;
}

/// concurrency: 1..kMaxConcurrency (deliveries in flight to one target).
std::optional<int> Loader::Concurrency(const YAML::Node& node, const std::string& where) {
  auto s = Str(node, "concurrency", where);
  if (!s) return std::nullopt;
  auto v = ParseUInt(*s);
  if (!v || *v < 1 || *v > static_cast<uint64_t>(kMaxConcurrency)) {
    Fail(node["concurrency"], "\"concurrency\" in " + where + " must be a number from 1 to " +
                                  std::to_string(kMaxConcurrency) + ", not " + Q(*s));
    return std::nullopt;
  }
  return static_cast<int>(*v);
}

}  // namespace mailhook::config::internal
