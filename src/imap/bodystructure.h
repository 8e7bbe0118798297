#pragma once
/// Converts libetpan's parsed BODYSTRUCTURE (RFC 3501 §7.4.2) into our own
/// mime::Part tree, numbering sections as IMAP does (RFC 3501 §6.4.5).

#include <libetpan/libetpan.h>

#include "mime/part_tree.h"

namespace mailhook::imap {

/// Builds the PartTree for a message's BODYSTRUCTURE. Never fails: parts
/// libetpan could not parse become application/octet-stream leaves; a part
/// the server typed ("" "") keeps an empty type and subtype (the Extractor
/// re-parses such a message from its bytes).
mime::Part PartTreeFromBodyStructure(const mailimap_body* body);

}  // namespace mailhook::imap
