#include "mime/extractor.h"

#include <openssl/evp.h>

#include <algorithm>
#include <cctype>

#include "mime/decode.h"
#include "mime/header.h"
#include "mime/mime_parser.h"
#include "mime/params.h"
#include "util/log.h"

namespace mailhook::mime {
namespace {

std::string Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return std::string(s);
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Incremental SHA-256.
class Sha256 {
 public:
  Sha256() : ctx_(EVP_MD_CTX_new()) { EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr); }
  ~Sha256() { EVP_MD_CTX_free(ctx_); }
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void Update(std::string_view data) { EVP_DigestUpdate(ctx_, data.data(), data.size()); }
  /// Lowercase hex of the digest; the object is then spent.
  std::string Hex() {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_DigestFinal_ex(ctx_, md, &len);
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    for (unsigned int i = 0; i < len; ++i) {
      out.push_back(kHex[md[i] >> 4]);
      out.push_back(kHex[md[i] & 15]);
    }
    return out;
  }

 private:
  EVP_MD_CTX* ctx_;
};

class Walker {
 public:
  Walker(SectionSource& source, const ExtractOptions& opts, MessageContent& out)
      : source_(source), opts_(opts), out_(out) {}

  util::Status Walk(const Part& part) {
    // Servers differ in case (Cyrus uppercases types); compare lowercased.
    if (Lower(part.type) == "multipart") {
      for (const Part& child : part.children) {
        if (util::Status s = Walk(child); !s.ok()) return s;
      }
      return util::Ok();  // a childless multipart is neither body nor attachment
    }
    return Leaf(part);
  }

 private:
  util::Status Leaf(const Part& part) {
    std::string charset = RawParam(part.params, "charset").value_or("us-ascii");
    std::optional<std::string> filename = DecodeParam(part.disposition_params, "filename", charset);
    if (!filename || Trim(*filename).empty()) filename = DecodeParam(part.params, "name", charset);
    if (filename) {
      filename = Trim(*filename);
      if (filename->empty()) filename.reset();
    }
    std::optional<std::string> disposition;
    if (part.disposition && !part.disposition->empty()) disposition = Lower(*part.disposition);
    const bool attachment_disp = disposition == "attachment";

    // An empty type (Dovecot's ("" "") for a Content-Type it cannot parse)
    // is text/plain (RFC 2045 5.2); normally such a tree was re-parsed first.
    const bool untyped = part.type.empty() || part.subtype.empty();
    const std::string type = untyped ? "text" : Lower(part.type);
    const std::string subtype = untyped ? "plain" : Lower(part.subtype);
    if (type == "text" && !attachment_disp && !filename) {
      std::optional<std::string>* slot = nullptr;
      if (subtype == "plain" && !out_.text) slot = &out_.text;
      if (subtype == "html" && !out_.html) slot = &out_.html;
      if (slot) {
        util::Result<std::string> body =
            HasTransferEncoding(part.encoding) ? source_.Body(part.section) : source_.RawBody(part.section);
        if (!body.ok()) return body.error();
        *slot = ToUtf8(DecodeTransfer(*body, part.encoding), charset);
        return util::Ok();
      }
    }

    Attachment a;
    a.part = part.section;
    a.filename = filename;
    a.content_type = ForceUtf8(type + "/" + subtype);
    a.disposition = disposition ? std::optional(ForceUtf8(*disposition)) : std::nullopt;
    if (part.id) a.content_id = ForceUtf8(Trim(*part.id));
    a.size = EstimateDecodedSize(part);
    bool fetch = opts_.fetch_content && a.size / 2 <= opts_.max_content_bytes;
    if (!fetch) {
      // The contract promises the decoded size: ask the source (IMAP
      // BINARY.SIZE), else decode parts small enough to fetch cheaply.
      util::Result<std::optional<uint64_t>> exact = source_.DecodedSize(part.section);
      if (!exact.ok()) return exact.error();
      if (exact->has_value()) {
        a.size = **exact;
      } else if (part.size <= kMeasureLimit) {
        util::Result<std::string> body = source_.Body(part.section);
        if (!body.ok()) return body.error();
        a.size = DecodeTransfer(*body, part.encoding).size();
      }
    }
    if (fetch) {
      if (util::Status s = FetchContent(part, a); !s.ok()) return s;
    }
    out_.attachments.push_back(std::move(a));
    return util::Ok();
  }

  // Streams the part's body through the transfer decoder into the size, the
  // SHA-256 and (while within max_content_bytes) the base64 the event
  // carries: neither the encoded nor the decoded body is ever held whole.
  util::Status FetchContent(const Part& part, Attachment& a) {
    Sha256 sha;
    Base64Encoder encoder;
    std::string b64;
    bool keep = opts_.max_content_bytes > 0;
    if (keep) b64.reserve(std::min<uint64_t>(a.size, opts_.max_content_bytes) / 3 * 4 + 4);
    uint64_t size = 0;
    auto take = [&](std::string_view bytes) {
      size += bytes.size();
      sha.Update(bytes);
      if (!keep) return;
      if (size > opts_.max_content_bytes) {
        keep = false;  // over the limit: metadata only, and the memory back now
        std::string().swap(b64);
        return;
      }
      encoder.Add(bytes, b64);
    };
    if (util::Status s = StreamDecodedBody(source_, part.section, part.encoding, take); !s.ok()) return s;
    a.size = size;
    a.sha256 = sha.Hex();
    if (keep) {
      encoder.Finish(b64);
      a.content_base64 = std::make_shared<const std::string>(std::move(b64));
    }
    return util::Ok();
  }

  // Bodies up to this size are fetched just to measure their decoded size
  // when the source cannot tell it; larger ones are estimated.
  static constexpr uint64_t kMeasureLimit = 4 * 1024 * 1024;

  SectionSource& source_;
  const ExtractOptions& opts_;
  MessageContent& out_;
};

// True when `part` (below multiparts with the boundaries `outer`) is a tree
// a server may have got wrong for broken MIME, so the bytes must be parsed
// again here (DESIGN.md: when the structure is doubtful, the message's own
// headers are the ground truth). Measured on Dovecot 2.3 with the corpus:
//  - ("" "") for a Content-Type it cannot parse (a forgotten ';' before
//    boundary=), where the part is really a multipart;
//  - an empty text/plain child it makes up where a multipart has no part
//    (no delimiter found, "--b" after the close delimiter, an unquoted
//    boundary with '=' cut short) — RFC 3501 7.4.2 wants at least one —
//    always typed exactly ("text" "plain" ("charset" "us-ascii") NIL NIL
//    "7bit" 0 0);
//  - a boundary that is a prefix of an enclosing one or starts with it
//    (RFC 2046 5.1.1 forbids it): Dovecot matches delimiters by prefix and
//    nests where the boundary stops the outer part.
// A real empty part declared "text/plain; charset=us-ascii" also looks
// made up; re-parsing then costs one fetch and gives the same tree.
// Ordinary messages never trigger it: no extra round trip for them.
bool Doubtful(const Part& part, std::vector<std::string>& outer) {
  if (part.type.empty() || part.subtype.empty()) return true;
  if (Lower(part.type) != "multipart") return false;
  const std::string boundary = RawParam(part.params, "boundary").value_or("");
  for (const std::string& b : outer) {
    if (boundary.starts_with(b) || b.starts_with(boundary)) return true;
  }
  for (const Part& child : part.children) {
    if (Lower(child.type) == "text" && Lower(child.subtype) == "plain" && child.size == 0 &&
        Lower(child.encoding) == "7bit" && child.params.size() == 1 && Lower(child.params[0].name) == "charset" &&
        Lower(child.params[0].value) == "us-ascii" && !child.id && !child.description && !child.disposition)
      return true;
  }
  outer.push_back(boundary);
  for (const Part& child : part.children) {
    if (Doubtful(child, outer)) return true;
  }
  outer.pop_back();
  return false;
}

}  // namespace

std::string Sha256Hex(std::string_view data) {
  Sha256 sha;
  sha.Update(data);
  return sha.Hex();
}

uint64_t EstimateDecodedSize(const Part& part) {
  const std::string enc = Lower(part.encoding);
  if (enc == "base64") return part.size * 76 / 78 * 3 / 4;
  if (enc == "x-uuencode" || enc == "uuencode" || enc == "x-uue" || enc == "uue") return part.size * 45 / 62;
  return part.size;
}

util::Result<MessageContent> Extract(std::string_view header_block, const Part& root, SectionSource& source,
                                     const ExtractOptions& opts) {
  MessageContent out;
  std::vector<HeaderField> fields = ParseHeaderBlock(header_block);
  if (auto v = FirstHeader(fields, "Message-ID")) out.message_id = ParseMessageId(*v);
  for (const std::string& v : AllHeaders(fields, "In-Reply-To")) {
    for (std::string& id : ParseMessageIds(v)) out.in_reply_to.push_back(std::move(id));
  }
  for (const std::string& v : AllHeaders(fields, "References")) {
    for (std::string& id : ParseMessageIds(v)) out.references.push_back(std::move(id));
  }
  if (auto v = FirstHeader(fields, "Date")) out.date = ParseDate(*v);
  if (auto v = FirstHeader(fields, "Subject")) out.subject = DecodeHeaderText(*v);
  if (auto v = FirstHeader(fields, "From")) out.from = ParseAddressList(*v);
  for (const std::string& v : AllHeaders(fields, "To")) {
    for (Address& a : ParseAddressList(v)) out.to.push_back(std::move(a));
  }
  for (const std::string& v : AllHeaders(fields, "Cc")) {
    for (Address& a : ParseAddressList(v)) out.cc.push_back(std::move(a));
  }
  if (auto v = FirstHeader(fields, "Reply-To")) out.reply_to = ParseAddressList(*v);

  std::vector<std::string> outer;
  if (Doubtful(root, outer)) {
    // Parse the message's own bytes (IMAP BODY[], the whole message) and
    // read every section from them: the tree and the bytes are then exactly
    // what `mailhook parse` sees for the same message. Costs one fetch and
    // one copy of the message, and only for broken MIME.
    util::Logger("mime")->debug("mime.reparse section={} type={}/{}", root.section, root.type, root.subtype);
    util::Result<std::string> whole = source.Body("");
    if (!whole.ok()) return whole.error();
    ParsedMessage local = ParseMessage(std::move(*whole));
    FileSectionSource local_source(local);
    Walker walker(local_source, opts, out);
    if (util::Status s = walker.Walk(local.root); !s.ok()) return s.error();
  } else {
    Walker walker(source, opts, out);
    if (util::Status s = walker.Walk(root); !s.ok()) return s.error();
  }
  util::Logger("mime")->debug("mime.extracted attachments={} text={} html={}", out.attachments.size(),
                              out.text.has_value(), out.html.has_value());
  return out;
}

}  // namespace mailhook::mime
