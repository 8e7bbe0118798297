#include "mime/section_source.h"

#include "mime/decode.h"

namespace mailhook::mime {

util::Result<SectionSource::Prefix> SectionSource::BodyPrefix(const std::string& section, uint64_t max_bytes,
                                                              bool raw) {
  util::Result<std::string> body = raw ? RawBody(section) : Body(section);
  if (!body.ok()) return body.error();
  Prefix p;
  p.cut = body->size() > max_bytes;
  if (p.cut) body->resize(static_cast<size_t>(max_bytes));
  p.bytes = std::move(*body);
  return p;
}

util::Status StreamDecodedBody(SectionSource& source, const std::string& section, std::string_view encoding,
                               const std::function<void(std::string_view)>& sink) {
  TransferDecoder decoder(encoding);
  std::string decoded;  // reused: one piece's worth of memory
  util::Status s = source.StreamBody(section, [&](std::string_view chunk) {
    decoded.clear();
    decoder.Feed(chunk, decoded);
    sink(decoded);
    return util::Ok();
  });
  if (!s.ok()) return s;
  decoded.clear();
  decoder.Finish(decoded);
  sink(decoded);
  return util::Ok();
}

}  // namespace mailhook::mime
