#pragma once
/// Router: which targets (webhooks, hooks and smtp) receive an event, and how
/// much of the attachments (and, for smtp targets, of the original) each one
/// gets. Pure function of the config.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "mime/message.h"
#include "util/mutex.h"
#include "util/target_id.h"
#include "util/thread_annotations.h"

namespace mailhook::daemon {

/// One target an event goes to.
struct Route {
  util::TargetId target;
  config::AttachmentMode attachments = config::AttachmentMode::kMetadata;
  uint64_t max_attachment_bytes = 0;
  bool auto_reply_headers = false;  ///< smtp targets: the event carries them (mime::EventPieces)
  /// smtp forwards with attach_original: the event carries the original's
  /// bytes ("original_rfc822", mime::EventPieces), fetched only for them.
  bool original_message = false;
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

/// RouteTable: the targets of the running config, replaced by a config
/// reload while every watcher routes through it (a watcher that did not
/// restart must send its events to a webhook added meanwhile).
/// Thread-safe: each RoutesFor sees one config, the old or the new.
class RouteTable {
 public:
  explicit RouteTable(std::shared_ptr<const config::Config> config) : config_(std::move(config)) {}
  void Replace(std::shared_ptr<const config::Config> config) EXCLUDES(mu_);
  /// daemon::RoutesFor on the current config.
  std::vector<Route> RoutesFor(const std::string& account, const std::string& folder,
                               const mime::MessageContent* content) const EXCLUDES(mu_);

 private:
  mutable util::Mutex mu_;
  std::shared_ptr<const config::Config> config_ GUARDED_BY(mu_);
};

}  // namespace mailhook::daemon
