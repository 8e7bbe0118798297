#pragma once
/// Message fingerprints: what a message is recognised by across a
/// UIDVALIDITY change (store::Fingerprint). Pure functions of what a FETCH
/// returned.
///
/// The key is the Message-ID as sent (RFC 5322 §3.6.4) when the header has
/// one; with the RFC822.SIZE it tells apart two messages that share a
/// Message-ID (a resent or edited copy). Without a Message-ID it is the
/// SHA-256 of the header block (BODY[HEADER]): the header and not the whole
/// message, because it is small and bounded to fetch (the whole message may
/// be megabytes) while its Received/Date lines already make it unique per
/// delivery; the size still tells apart bodies behind equal headers. Both
/// are byte-identical in a copy that an APPEND, MOVE or a server-side
/// rebuild makes, which is what a recreated folder holds.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "store/rows.h"

namespace mailhook::daemon {

/// Keys longer than this (a hostile Message-ID) are stored as their hash.
inline constexpr size_t kMaxMessageIdKey = 256;

/// The Message-ID key of a header block (the whole header, or only its
/// Message-ID field): the first Message-ID field's value, unfolded and
/// trimmed; nullopt when there is none or it is blank.
std::optional<std::string> MessageIdKey(std::string_view header);
/// "sha256:<hex>" of the header block as fetched.
std::string HeaderHashKey(std::string_view header);
/// The fingerprint of a message from its whole header block (BODY[HEADER]).
store::Fingerprint FingerprintOf(uint32_t uidvalidity, uint32_t uid, uint64_t size, std::string_view header);

}  // namespace mailhook::daemon
