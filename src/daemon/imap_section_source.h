#pragma once
/// ImapSectionSource: mime::SectionSource over a watcher's IMAP mailbox: the
/// sections of one message, read on demand, large bodies in pieces.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "imap/mailbox.h"
#include "mime/extractor.h"

namespace mailhook::daemon {

/// Reads sections of one message over the watcher's session.
class ImapSectionSource : public mime::SectionSource {
 public:
  ImapSectionSource(imap::Mailbox& session, uint32_t uid) : session_(session), uid_(uid) {}
  util::Result<std::string> Body(const std::string& section) override;
  util::Result<std::string> RawBody(const std::string& section) override;
  util::Status StreamBody(const std::string& section,
                          const std::function<util::Status(std::string_view)>& sink) override;
  util::Result<Prefix> BodyPrefix(const std::string& section, uint64_t max_bytes, bool raw) override;
  util::Result<std::string> MimeHeaders(const std::string& section) override;
  util::Result<std::optional<uint64_t>> DecodedSize(const std::string& section) override;

 private:
  imap::Mailbox& session_;
  uint32_t uid_;
};

}  // namespace mailhook::daemon
