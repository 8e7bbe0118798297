#pragma once
/// Router: which targets (webhooks and hooks) receive an event, and how much
/// of the attachments each one gets. Pure function of the config.

#include <cstdint>
#include <string>
#include <vector>

#include "config/config.h"
#include "mime/message.h"
#include "util/target_id.h"

namespace mailhook::daemon {

/// One target an event goes to.
struct Route {
  util::TargetId target;
  config::AttachmentMode attachments = config::AttachmentMode::kMetadata;
  uint64_t max_attachment_bytes = 0;
};

/// True when `match` selects an event of this account/folder (empty lists
/// match everything). folders are config::FolderSelector patterns (`*`, `?`;
/// case-sensitive except INBOX); from/subject are shell globs, case-insensitive.
bool Matches(const config::Match& match, const std::string& account, const std::string& folder,
             const mime::MessageContent* content);

/// Targets for an event. With `content` null, from/subject filters are
/// ignored (used to decide what to fetch before the message is decoded).
std::vector<Route> RoutesFor(const config::Config& config, const std::string& account, const std::string& folder,
                             const mime::MessageContent* content);

}  // namespace mailhook::daemon
