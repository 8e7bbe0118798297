#pragma once
/// Converts libetpan's parsed BODYSTRUCTURE (RFC 3501 §7.4.2) into our own
/// mime::Part tree, numbering sections as IMAP does (RFC 3501 §6.4.5).

#include <libetpan/libetpan.h>

#include "mime/part_tree.h"

namespace mailhook::imap {

/// How many multipart levels are converted: the children of a multipart at
/// this depth (the top level is 0) are left out, so a hostile BODYSTRUCTURE
/// cannot make the conversion recurse without bound.
inline constexpr int kMaxBodyStructureDepth = 64;

/// How many parts are converted in all (multiparts included); later parts
/// are left out. Above any sane `limits.max_parts`, it bounds our copy of a
/// part bomb's structure (~420 bytes a part) to a few MB.
inline constexpr size_t kMaxBodyStructureParts = 10000;

/// Builds the PartTree for a message's BODYSTRUCTURE. Never fails: parts
/// libetpan could not parse become application/octet-stream leaves; a part
/// the server typed ("" "") keeps an empty type and subtype (the Extractor
/// re-parses such a message from its bytes). Parts past the depth or count
/// caps are not listed; `cut` (optional) is then set to true.
mime::Part PartTreeFromBodyStructure(const mailimap_body* body, bool* cut = nullptr);

}  // namespace mailhook::imap
