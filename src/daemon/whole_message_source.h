#pragma once
/// WholeMessageSource: mime::SectionSource over a message fetched whole
/// (BODY.PEEK[], the fetch pipeline's small messages) and parsed here, as
/// `mailhook parse` reads a file: every section is served from memory,
/// except a raw body (no transfer encoding to undo) that holds an 0x80
/// octet. BODY[] cannot carry NUL (RFC 3501 §4.3) and Dovecot sends 0x80
/// instead, so such a body is read again from the server with BINARY[] —
/// exactly as the server path (ImapSectionSource) reads it.

#include <cstdint>
#include <string>

#include "daemon/imap_section_source.h"
#include "imap/mailbox.h"
#include "mime/mime_parser.h"

namespace mailhook::daemon {

/// The sections of one locally parsed message; borrows `message`, which
/// must outlive it.
class WholeMessageSource : public mime::FileSectionSource {
 public:
  WholeMessageSource(const mime::ParsedMessage& message, imap::Mailbox& session, uint32_t uid)
      : mime::FileSectionSource(message), server_(session, uid) {}

  util::Result<std::string> RawBody(const std::string& section) override;
  util::Result<Prefix> BodyPrefix(const std::string& section, uint64_t max_bytes, bool raw) override;

 private:
  ImapSectionSource server_;
};

}  // namespace mailhook::daemon
