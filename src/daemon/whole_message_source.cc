#include "daemon/whole_message_source.h"

#include <utility>

namespace mailhook::daemon {
namespace {

// An octet Dovecot may have put in place of a NUL in BODY[].
bool MayHoldReplacedNul(std::string_view bytes) { return bytes.find('\x80') != std::string_view::npos; }

}  // namespace

util::Result<std::string> WholeMessageSource::RawBody(const std::string& section) {
  util::Result<std::string> local = Body(section);
  if (!local.ok() || !MayHoldReplacedNul(*local)) return local;
  return server_.RawBody(section);
}

util::Result<mime::SectionSource::Prefix> WholeMessageSource::BodyPrefix(const std::string& section, uint64_t max_bytes,
                                                                         bool raw) {
  util::Result<Prefix> local = mime::FileSectionSource::BodyPrefix(section, max_bytes, raw);
  // A cut prefix is BODY[]'s bytes on the server path too; only a whole raw
  // body is read there with BINARY[].
  if (!raw || !local.ok() || local->cut || !MayHoldReplacedNul(local->bytes)) return local;
  util::Result<std::string> exact = server_.RawBody(section);
  if (!exact.ok()) return exact.error();
  Prefix out;
  out.bytes = std::move(*exact);
  return out;
}

}  // namespace mailhook::daemon
