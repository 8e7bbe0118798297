// fuzz_bodystructure: the daemon's BODYSTRUCTURE → PartTree → Extract path on
// hostile server bytes, in process (no socket). The input is
//   BODYSTRUCTURE-text [ '\0' mode header-block '\0' body ]
// The text is wrapped as "* 1 FETCH (UID 1 BODYSTRUCTURE " text ")\r\n" and
// parsed by libetpan's own response parser from an in-memory mailstream; the
// tree is converted with imap::PartTreeFromBodyStructure and extracted over a
// SectionSource that serves the rest of the input (mode bits: fail one
// section, report BINARY.SIZE, fetch content). The event JSON must be valid.

#include <libetpan/libetpan.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "check.h"
#include "imap/bodystructure.h"
#include "mime/event.h"
#include "mime/extractor.h"

using namespace mailhook;

namespace {

// A read-only mailstream over a byte range: libetpan's parser pulls the
// response (and any literal in it) through this exactly as from a socket.
struct MemoryData {
  const char* data;
  size_t left;
};

ssize_t MemoryRead(mailstream_low* s, void* buf, size_t count) {
  auto* m = static_cast<MemoryData*>(s->data);
  // End of input is a closed connection: -1, as imap/tls_stream.cc answers.
  // (libetpan's literal reader loops forever on 0.)
  if (m->left == 0) return -1;
  size_t n = std::min(count, m->left);
  std::memcpy(buf, m->data, n);
  m->data += n;
  m->left -= n;
  return static_cast<ssize_t>(n);
}
ssize_t MemoryWrite(mailstream_low*, const void*, size_t count) { return static_cast<ssize_t>(count); }
int MemoryClose(mailstream_low*) { return 0; }
int MemoryGetFd(mailstream_low*) { return -1; }
// mailstream_low_free hands the struct itself to the driver (as libetpan's
// socket driver does, which frees it).
void MemoryFree(mailstream_low* s) { std::free(s); }
void MemoryCancel(mailstream_low*) {}

mailstream_low_driver kMemoryDriver = {
    MemoryRead, MemoryWrite, MemoryClose, MemoryGetFd, MemoryFree, MemoryCancel,
    nullptr,    nullptr,     nullptr,     nullptr,     nullptr,
};

// Serves fuzz bytes for every section; with mode bit 0 the deepest section
// fails (as a dropped connection would), bit 1 answers BINARY.SIZE.
class FuzzSource : public mime::SectionSource {
 public:
  FuzzSource(std::string_view body, uint8_t mode) : body_(body), mode_(mode) {}

  util::Result<std::string> Body(const std::string& section) override {
    if (Fails(section)) return Failure();
    // Different sections get different slices, so siblings differ.
    size_t skip = body_.empty() ? 0 : (section.size() * 7) % body_.size();
    return std::string(body_.substr(skip));
  }
  util::Result<std::string> MimeHeaders(const std::string& section) override {
    if (Fails(section)) return Failure();
    return std::string(body_);
  }
  util::Result<std::optional<uint64_t>> DecodedSize(const std::string& section) override {
    if (Fails(section)) return Failure();
    if (mode_ & 2) return std::optional<uint64_t>(body_.size() * 3 / 4);
    return std::optional<uint64_t>();
  }
  bool failed() const { return failed_; }

 private:
  bool Fails(const std::string& section) {
    if (!(mode_ & 1) || std::count(section.begin(), section.end(), '.') < 1) return false;
    failed_ = true;
    return true;
  }
  static util::Error Failure() {
    return util::Error("imap.fetch_failed", util::RetryClass::kBackoff, "fuzz: section read fails");
  }

  std::string_view body_;
  uint8_t mode_;
  bool failed_ = false;
};

// The BODYSTRUCTURE of the first FETCH the session stored, or nullptr.
// mailimap_parse_response moves FETCH data out of the response into
// imap_response_info->rsp_fetch_list (where mailimap_uid_fetch takes it).
mailimap_body* FindBodyStructure(mailimap* imap) {
  if (!imap->imap_response_info || !imap->imap_response_info->rsp_fetch_list) return nullptr;
  for (clistiter* it = clist_begin(imap->imap_response_info->rsp_fetch_list); it; it = clist_next(it)) {
    auto* att = static_cast<mailimap_msg_att*>(clist_content(it));
    if (!att || !att->att_list) continue;
    for (clistiter* a = clist_begin(att->att_list); a; a = clist_next(a)) {
      auto* item = static_cast<mailimap_msg_att_item*>(clist_content(a));
      if (item->att_type != MAILIMAP_MSG_ATT_ITEM_STATIC || !item->att_data.att_static) continue;
      if (item->att_data.att_static->att_type == MAILIMAP_MSG_ATT_BODYSTRUCTURE) {
        return item->att_data.att_static->att_data.att_bodystructure;
      }
    }
  }
  return nullptr;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  size_t nul = in.find('\0');
  std::string_view structure = in.substr(0, nul);
  std::string_view rest = nul == std::string_view::npos ? std::string_view() : in.substr(nul + 1);
  uint8_t mode = rest.empty() ? 0 : static_cast<uint8_t>(rest[0]);
  if (!rest.empty()) rest.remove_prefix(1);
  size_t nul2 = rest.find('\0');
  std::string_view header_block = rest.substr(0, nul2);
  std::string_view body = nul2 == std::string_view::npos ? std::string_view() : rest.substr(nul2 + 1);

  // The untagged FETCH, then the tagged OK that ends a response. A fresh
  // session expects tag "0" (it has sent no command; its counter is 0).
  std::string wire = "* 1 FETCH (UID 1 BODYSTRUCTURE ";
  wire.append(structure);
  wire += ")\r\n0 OK done\r\n";
  MemoryData memory{wire.data(), wire.size()};

  mailimap* imap = mailimap_new(0, nullptr);
  mailstream_low* low = mailstream_low_new(&memory, &kMemoryDriver);
  imap->imap_stream = mailstream_new(low, 8192);
  mailimap_response* response = nullptr;
  if (mailimap_read_line(imap) != nullptr && mailimap_parse_response(imap, &response) == MAILIMAP_NO_ERROR) {
    if (mailimap_body* bs = FindBodyStructure(imap)) {
      mime::Part root = imap::PartTreeFromBodyStructure(bs);
      FuzzSource source(body, mode);
      mime::ExtractOptions opts;
      opts.fetch_content = (mode & 4) != 0;
      opts.max_content_bytes = 1024;
      util::Result<mime::MessageContent> content = mime::Extract(header_block, root, source, opts);
      fuzz::Check(content.ok() || source.failed(), "Extract failed though the source never did");
      if (content.ok()) {
        mime::EventMeta meta;
        meta.account = "fuzz";
        meta.mailbox = "INBOX";
        meta.uid = 1;
        std::string text =
            mime::EventJson(meta, *content, config::AttachmentMode::kContent, opts.max_content_bytes).dump();
        fuzz::CheckUtf8(text, "event JSON is not valid UTF-8");
        fuzz::Check(nlohmann::json::accept(text), "event JSON does not parse back");
      }
    }
  }
  if (response) mailimap_response_free(response);
  mailimap_free(imap);
  return 0;
}
