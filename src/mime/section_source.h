#pragma once
/// SectionSource: where the Extractor reads a part's bytes from. The daemon
/// implements it with IMAP `BODY.PEEK[section]`; `mailhook parse` with offsets
/// into the local file. Implementations are used by one thread at a time.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/result.h"

namespace mailhook::mime {

/// Reads raw bytes of sections of one message.
class SectionSource {
 public:
  virtual ~SectionSource() = default;

  /// The body of the part at `section`, still transfer-encoded (exactly the
  /// bytes of IMAP BODY[section]). Failure means the message could not be read
  /// (the daemon retries the whole message later).
  virtual util::Result<std::string> Body(const std::string& section) = 0;

  /// The body of a part that has no transfer encoding to undo (7bit, 8bit,
  /// binary), with every byte intact: IMAP BODY[] cannot carry NUL (RFC 3501
  /// §4.3; Dovecot sends 0x80 instead), BINARY[] can (RFC 3516), and a UTF-16
  /// text body is full of NULs. The default is Body().
  virtual util::Result<std::string> RawBody(const std::string& section) { return Body(section); }

  /// At most `max_bytes` bytes from the start of Body(section) (raw=false) or RawBody(section) (raw=true), and whether
  /// the body was longer.
  struct Prefix {
    std::string bytes;
    bool cut = false;
  };
  /// The default fetches the whole body and cuts it; the daemon asks the
  /// server for the prefix only (IMAP partial FETCH, RFC 3501 6.4.5).
  virtual util::Result<Prefix> BodyPrefix(const std::string& section, uint64_t max_bytes, bool raw);

  /// Hands the same bytes as Body(section) to `sink` in pieces, so a large
  /// body is never held whole (the daemon fetches it in partial FETCHes). A
  /// failing sink stops the stream and its error is returned. The default
  /// hands over Body() in one piece.
  virtual util::Status StreamBody(const std::string& section,
                                  const std::function<util::Status(std::string_view)>& sink) {
    util::Result<std::string> body = Body(section);
    if (!body.ok()) return body.error();
    return sink(*body);
  }

  /// The MIME header block of the part at `section` (IMAP BODY[section.MIME]),
  /// the ground truth when a structure from the server is doubtful.
  virtual util::Result<std::string> MimeHeaders(const std::string& section) = 0;

  /// The exact decoded size of the part's body, when the source can tell it
  /// without handing over the body (IMAP BINARY.SIZE, RFC 3516 §4.2);
  /// nullopt when it cannot (the Extractor then decodes or estimates).
  virtual util::Result<std::optional<uint64_t>> DecodedSize(const std::string& section) {
    (void)section;
    return std::optional<uint64_t>();
  }

  /// The sections DecodedSize is about to be asked for, in order: a source
  /// that can answer several in one round trip (IMAP: one FETCH with several
  /// BINARY.SIZE items) asks now and answers them later from memory. A
  /// failure means the message could not be read, as for DecodedSize. The
  /// default does nothing.
  virtual util::Status PlanDecodedSizes(const std::vector<std::string>& sections) {
    (void)sections;
    return util::Ok();
  }

  /// True when every call is served from memory (a local file): the
  /// Extractor then asks for every size instead of rationing round trips.
  virtual bool Local() const { return false; }
};

/// Streams the body of the part at `section` (source.StreamBody) through a
/// TransferDecoder for `encoding`, handing each decoded piece to `sink`: the
/// encoded and the decoded body are never held whole. Fails when the source does.
util::Status StreamDecodedBody(SectionSource& source, const std::string& section, std::string_view encoding,
                               const std::function<void(std::string_view)>& sink);

}  // namespace mailhook::mime
