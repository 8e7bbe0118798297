#include "daemon/imap_section_source.h"

#include <algorithm>
#include <cstdint>
#include <utility>

namespace mailhook::daemon {

util::Result<std::string> ImapSectionSource::Body(const std::string& section) {
  // In pieces: the whole message ("") may be larger than one response may be.
  std::string out;
  if (auto s = StreamBody(section,
                          [&](std::string_view piece) {
                            out.append(piece);
                            return util::Ok();
                          });
      !s.ok()) {
    return s.error();
  }
  return out;
}

util::Result<std::string> ImapSectionSource::RawBody(const std::string& section) {
  util::Result<std::optional<std::string>> binary = session_.FetchBinary(uid_, section);
  if (!binary.ok()) return binary.error();
  if (binary->has_value()) return std::move(**binary);
  return session_.FetchSection(uid_, section);
}

util::Status ImapSectionSource::StreamBody(const std::string& section,
                                           const std::function<util::Status(std::string_view)>& sink) {
  // Piece by piece (BODY.PEEK[section]<offset.length>): a 50 MiB attachment
  // costs one piece of memory here and in libetpan, not the whole body.
  constexpr uint32_t kPiece = 1 << 20;
  for (uint64_t offset = 0;; offset += kPiece) {
    if (offset > UINT32_MAX - kPiece) {
      return util::Error("imap.too_large", util::RetryClass::kNeedsOperator,
                         "part " + section + " of UID " + std::to_string(uid_) +
                             " is over 4 GiB; mailhook cannot read it (remove the message from the folder)");
    }
    util::Result<std::string> piece = session_.FetchSectionPart(uid_, section, static_cast<uint32_t>(offset), kPiece);
    if (!piece.ok()) return piece.error();
    if (!piece->empty()) {
      if (util::Status s = sink(*piece); !s.ok()) return s;
    }
    if (piece->size() < kPiece) return util::Ok();
  }
}

util::Result<mime::SectionSource::Prefix> ImapSectionSource::BodyPrefix(const std::string& section, uint64_t max_bytes,
                                                                        bool raw) {
  // One byte more than asked tells whether the body is longer
  // (BODY.PEEK[section]<0.N+1>, RFC 3501 §6.4.5).
  const uint32_t ask = static_cast<uint32_t>(std::min<uint64_t>(max_bytes + 1, UINT32_MAX));
  util::Result<std::string> head = session_.FetchSectionPart(uid_, section, 0, ask);
  if (!head.ok()) return head.error();
  Prefix out;
  out.cut = head->size() > max_bytes;
  if (out.cut) {
    head->resize(max_bytes);
    out.bytes = std::move(*head);
    return out;
  }
  if (!raw) {
    out.bytes = std::move(*head);
    return out;
  }
  // Within the limit: read it again with every byte intact (BINARY).
  util::Result<std::string> whole = RawBody(section);
  if (!whole.ok()) return whole.error();
  out.bytes = std::move(*whole);
  return out;
}

util::Result<std::string> ImapSectionSource::MimeHeaders(const std::string& section) {
  return session_.FetchMimeHeaders(uid_, section);
}

util::Result<std::optional<uint64_t>> ImapSectionSource::DecodedSize(const std::string& section) {
  if (auto it = planned_sizes_.find(section); it != planned_sizes_.end()) return std::optional<uint64_t>(it->second);
  return session_.FetchBinarySize(uid_, section);
}

util::Status ImapSectionSource::PlanDecodedSizes(const std::vector<std::string>& sections) {
  util::Result<std::map<std::string, uint64_t>> sizes = session_.FetchBinarySizes(uid_, sections);
  if (!sizes.ok()) return sizes.error();
  planned_sizes_ = std::move(*sizes);
  return util::Ok();
}

}  // namespace mailhook::daemon
