#include "daemon/router.h"

#include <fnmatch.h>

#include <algorithm>

namespace mailhook::daemon {
namespace {

bool InList(const std::vector<std::string>& list, const std::string& value) {
  return list.empty() || std::find(list.begin(), list.end(), value) != list.end();
}

bool AnyGlob(const std::vector<std::string>& globs, const std::vector<std::string>& values) {
  if (globs.empty()) return true;
  for (const auto& g : globs)
    for (const auto& v : values)
      if (fnmatch(g.c_str(), v.c_str(), FNM_CASEFOLD) == 0) return true;
  return false;
}

bool AnyFolder(const std::vector<config::FolderSelector>& folders, const std::string& folder) {
  return folders.empty() ||
         std::any_of(folders.begin(), folders.end(), [&](const auto& f) { return f.Matches(folder); });
}

}  // namespace

bool Matches(const config::Match& match, const std::string& account, const std::string& folder,
             const mime::MessageContent* content) {
  if (!InList(match.accounts, account) || !AnyFolder(match.folders, folder)) return false;
  if (!content) return true;
  std::vector<std::string> senders;
  for (const auto& a : content->from) senders.push_back(a.address);
  if (!AnyGlob(match.from, senders)) return false;
  return AnyGlob(match.subject, {content->subject.value_or("")});
}

std::vector<Route> RoutesFor(const config::Config& config, const std::string& account, const std::string& folder,
                             const mime::MessageContent* content) {
  std::vector<Route> routes;
  for (const auto& w : config.webhooks) {
    if (Matches(w.match, account, folder, content))
      routes.push_back({util::TargetId::Webhook(w.name), w.attachments, w.max_attachment_bytes});
  }
  for (const auto& h : config.hooks) {
    if (Matches(h.match, account, folder, content))
      routes.push_back({util::TargetId::Hook(h.name), h.attachments, h.max_attachment_bytes});
  }
  for (const auto& s : config.smtp) {
    // The loop rules need the original's Auto-Submitted, Precedence, List-*
    // and Return-Path, which the contract's event does not carry.
    // A forward that attaches the original needs its bytes, which only
    // these routes' events carry (a webhook's event stays the contract's).
    const bool original = s.mode == config::SmtpMode::kForward && s.attach_original;
    if (Matches(s.match, account, folder, content))
      routes.push_back({util::TargetId::Smtp(s.name), s.attachments, s.max_attachment_bytes, true, original});
  }
  return routes;
}

void RouteTable::Replace(std::shared_ptr<const config::Config> config) {
  util::MutexLock lock(mu_);
  config_ = std::move(config);
}

std::vector<Route> RouteTable::RoutesFor(const std::string& account, const std::string& folder,
                                         const mime::MessageContent* content) const {
  std::shared_ptr<const config::Config> config;
  {
    util::MutexLock lock(mu_);
    config = config_;
  }
  return daemon::RoutesFor(*config, account, folder, content);
}

}  // namespace mailhook::daemon
