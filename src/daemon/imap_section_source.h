#pragma once
/// ImapSectionSource: mime::SectionSource over a watcher's IMAP mailbox: the
/// sections of one message, read on demand, large bodies in pieces.

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

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
  /// One FETCH with a BINARY.SIZE item per section; DecodedSize then answers
  /// from it (a section it did not size is asked alone, as before).
  util::Status PlanDecodedSizes(const std::vector<std::string>& sections) override;

 private:
  imap::Mailbox& session_;
  uint32_t uid_;
  std::map<std::string, uint64_t> planned_sizes_;  // by section, from PlanDecodedSizes
};

}  // namespace mailhook::daemon
