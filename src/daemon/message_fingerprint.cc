#include "daemon/message_fingerprint.h"

#include "mime/extractor.h"
#include "mime/header.h"

namespace mailhook::daemon {

std::optional<std::string> MessageIdKey(std::string_view header) {
  std::optional<std::string> value = mime::FirstHeader(mime::ParseHeaderBlock(header), "Message-ID");
  if (!value) return std::nullopt;
  const size_t first = value->find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return std::nullopt;
  const size_t last = value->find_last_not_of(" \t\r\n");
  std::string key = value->substr(first, last - first + 1);
  // Bounded in the store whatever a sender puts there.
  if (key.size() > kMaxMessageIdKey) return "mid-sha256:" + mime::Sha256Hex(key);
  return key;
}

std::string HeaderHashKey(std::string_view header) { return "sha256:" + mime::Sha256Hex(header); }

store::Fingerprint FingerprintOf(uint32_t uidvalidity, uint32_t uid, uint64_t size, std::string_view header) {
  std::optional<std::string> id = MessageIdKey(header);
  return store::Fingerprint{uidvalidity, uid, id ? std::move(*id) : HeaderHashKey(header), size};
}

}  // namespace mailhook::daemon
