// fuzz_mime_parser: the `mailhook parse FILE` path on arbitrary bytes —
// ParseMessage, Extract over a FileSectionSource with content fetched, and
// the event JSON (and the message.unprocessable event of the same header),
// which must be valid UTF-8 JSON that parses back.

#include <cstddef>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "check.h"
#include "mime/event.h"
#include "mime/extractor.h"
#include "mime/mime_parser.h"

using namespace mailhook;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  mime::ParsedMessage parsed = mime::ParseMessage(std::string(reinterpret_cast<const char*>(data), size));
  mime::FileSectionSource source(parsed);
  mime::ExtractOptions opts;
  opts.fetch_content = true;
  util::Result<mime::MessageContent> content = mime::Extract(parsed.header_block, parsed.root, source, opts);
  // The source serves every section of the tree it came from.
  fuzz::Check(content.ok(), "Extract failed over a FileSectionSource");

  mime::EventMeta meta;
  meta.account = "local";
  meta.mailbox = "INBOX";
  meta.size = parsed.imap_size;
  meta.created_at = "2026-01-01T00:00:00Z";
  std::string text = mime::EventJson(meta, *content, config::AttachmentMode::kContent, opts.max_content_bytes).dump(2);
  fuzz::CheckUtf8(text, "event JSON is not valid UTF-8");
  fuzz::Check(nlohmann::json::accept(text), "event JSON does not parse back");
  // The parse never builds more parts than the cap.
  fuzz::Check(content->attachments.size() <= opts.max_parts, "more attachments than max_parts");

  // What the daemon sends when a message cannot be extracted: only the
  // header block is read.
  std::string unprocessable = mime::UnprocessableEventJson(meta, parsed.header_block, "fuzz", 3);
  fuzz::CheckUtf8(unprocessable, "unprocessable event JSON is not valid UTF-8");
  fuzz::Check(nlohmann::json::accept(unprocessable), "unprocessable event JSON does not parse back");
  return 0;
}
