// Test-only tool: prints the event `mailhook parse FILE` would print, so the
// corpus test can score the whole extraction path without the main binary.
#include <cstdio>
#include <string>

#include "mime/event.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: mime_parse_tool FILE.eml [content]\n");
    return 2;
  }
  auto mode = mailhook::config::AttachmentMode::kMetadata;
  if (argc > 2 && std::string(argv[2]) == "content") mode = mailhook::config::AttachmentMode::kContent;
  auto json = mailhook::mime::ParseFileToEventJson(argv[1], "INBOX", mode);
  if (!json.ok()) {
    std::fprintf(stderr, "%s\n", json.error().ToString().c_str());
    return 1;
  }
  std::fwrite(json->data(), 1, json->size(), stdout);
  std::fputc('\n', stdout);
  return 0;
}
