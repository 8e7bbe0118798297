#include "mime/extractor.h"

#include <openssl/evp.h>

#include <algorithm>
#include <cctype>
#include <limits>
#include <utility>

#include "mime/decode.h"
#include "mime/header.h"
#include "mime/mime_parser.h"
#include "mime/params.h"
#include "util/base64.h"
#include "util/log.h"
#include "util/strings.h"

namespace mailhook::mime {
namespace {

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

// What a leaf becomes.
enum class Role { kText, kHtml, kAttachment };

// A leaf to read, with what its headers say.
struct Leaf {
  const Part* part = nullptr;
  Role role = Role::kAttachment;
  std::string charset;
  std::string type, subtype;
  std::optional<std::string> filename, disposition;
};

// Reads a leaf's headers. A text/plain or text/html leaf that is not an
// attachment (no `attachment` disposition, no filename) may be a body.
Leaf Classify(const Part& part) {
  Leaf leaf;
  leaf.part = &part;
  leaf.charset = RawParam(part.params, "charset").value_or("us-ascii");
  leaf.filename = DecodeParam(part.disposition_params, "filename", leaf.charset);
  if (!leaf.filename || util::Trim(*leaf.filename).empty())
    leaf.filename = DecodeParam(part.params, "name", leaf.charset);
  if (leaf.filename) {
    leaf.filename = std::string(util::Trim(*leaf.filename));
    if (leaf.filename->empty()) leaf.filename.reset();
  }
  if (part.disposition && !part.disposition->empty()) leaf.disposition = util::Lower(*part.disposition);
  // An empty type (Dovecot's ("" "") for a Content-Type it cannot parse)
  // is text/plain (RFC 2045 5.2); normally such a tree was re-parsed first.
  const bool untyped = part.type.empty() || part.subtype.empty();
  leaf.type = untyped ? "text" : util::Lower(part.type);
  leaf.subtype = untyped ? "plain" : util::Lower(part.subtype);
  if (leaf.type == "text" && leaf.disposition != "attachment" && !leaf.filename) {
    if (leaf.subtype == "plain") leaf.role = Role::kText;
    if (leaf.subtype == "html") leaf.role = Role::kHtml;
  }
  return leaf;
}

// Cheap test before Classify: only a text/plain or text/html leaf can be a body.
bool MayBeBody(const Part& part) {
  if (part.type.empty() || part.subtype.empty()) return true;
  if (util::Lower(part.type) != "text") return false;
  const std::string sub = util::Lower(part.subtype);
  return sub == "plain" || sub == "html";
}

// Lists the leaves to read, in message order: the first max_parts, plus the
// first text and html body wherever they are. The rest are only counted, so
// a tree of millions of parts costs one walk and memory for max_parts leaves.
class Planner {
 public:
  explicit Planner(uint32_t max_parts) : max_parts_(max_parts) {}

  void Visit(const Part& part) {
    // Servers differ in case (Cyrus uppercases types); compare lowercased.
    if (util::Lower(part.type) == "multipart") {
      omitted_ += part.children_omitted;
      for (const Part& child : part.children) Visit(child);
      return;  // a childless multipart is neither body nor attachment
    }
    const bool room = counted_ < max_parts_;
    if (!room && ((have_text_ && have_html_) || !MayBeBody(part))) {
      ++omitted_;
      return;
    }
    Leaf leaf = Classify(part);
    if (leaf.role == Role::kText) leaf.role = std::exchange(have_text_, true) ? Role::kAttachment : Role::kText;
    if (leaf.role == Role::kHtml) leaf.role = std::exchange(have_html_, true) ? Role::kAttachment : Role::kHtml;
    if (room) {
      ++counted_;
    } else if (leaf.role == Role::kAttachment) {
      ++omitted_;
      return;
    }
    leaves_.push_back(std::move(leaf));
  }

  const std::vector<Leaf>& leaves() const { return leaves_; }
  uint64_t omitted() const { return omitted_; }

 private:
  const uint32_t max_parts_;
  std::vector<Leaf> leaves_;
  uint32_t counted_ = 0;
  uint64_t omitted_ = 0;
  bool have_text_ = false;
  bool have_html_ = false;
};

uint64_t SaturatingMul(uint64_t a, uint64_t b) {
  return b != 0 && a > std::numeric_limits<uint64_t>::max() / b ? std::numeric_limits<uint64_t>::max() : a * b;
}

uint64_t SaturatingAdd(uint64_t a, uint64_t b) {
  return a > std::numeric_limits<uint64_t>::max() - b ? std::numeric_limits<uint64_t>::max() : a + b;
}

// Bytes in `charset` that give at least `utf8_bytes` of UTF-8. Every charset
// gives at least one UTF-8 byte per input byte, except those whose ASCII
// takes several: UTF-16 / UCS-2 (2:1), UTF-32 / UCS-4 (4:1), UTF-7 (a
// character in base64 takes 8/3 bytes and more with its "+...-" frame: 3:1
// is a fair allowance). Fewer than enough only leaves the cut text shorter.
uint64_t CharsetBytesFor(std::string_view charset, uint64_t utf8_bytes) {
  const std::string cs = NormalizeCharset(charset);
  if (cs.starts_with("utf-32") || cs.starts_with("ucs-4")) return SaturatingMul(utf8_bytes, 4);
  if (cs == "utf-7") return SaturatingMul(utf8_bytes, 3);
  if (cs.starts_with("utf-16") || cs.starts_with("ucs-2")) return SaturatingMul(utf8_bytes, 2);
  return utf8_bytes;
}

// Encoded bytes that hold `decoded` bytes, so a text body over the limit
// costs one partial fetch of about what it needs:
//  - base64: 4 characters per 3 bytes plus a CRLF per 76 characters (RFC
//    2045 6.8): D*4/3 * 78/76 < D*4/3 + D/16, +16 for the last quantum;
//  - quoted-printable: up to 3 characters per byte ("=XX") plus a soft line
//    break ("=" CRLF) per line of up to 76 characters, which may hold as
//    few as 72 of them (whole escapes): D*3 * 75/72 = D*3 + D/8; allowed
//    D*3 + D/4 + 256, since the last, cut line is dropped before decoding;
//  - uuencode: 62 characters (+ CRLF) per 45 bytes < D*3/2, + 256 for the
//    "begin" line;
//  - 7bit, 8bit, binary: the bytes themselves.
// Lines shorter than these allow leave the decoded prefix shorter than the
// limit; the body is then still cut (and flagged) there.
uint64_t EncodedBytesFor(std::string_view encoding, uint64_t decoded) {
  const std::string enc = util::Lower(util::Trim(encoding));
  if (enc == "base64") return SaturatingAdd(SaturatingAdd(SaturatingMul(decoded / 3 + 1, 4), decoded / 16), 16);
  if (enc == "quoted-printable") return SaturatingAdd(SaturatingAdd(SaturatingMul(decoded, 3), decoded / 4), 256);
  if (HasTransferEncoding(enc)) return SaturatingAdd(SaturatingMul(decoded / 2, 3), 256);  // uuencode
  return decoded;
}

// Drops a multi-byte UTF-8 sequence that the cut left incomplete at the end.
void DropIncompleteUtf8Tail(std::string& s) {
  size_t i = s.size();
  for (int back = 0; back < 3 && i > 0 && (static_cast<unsigned char>(s[i - 1]) & 0xC0) == 0x80; ++back) --i;
  if (i == 0) return;
  const auto lead = static_cast<unsigned char>(s[i - 1]);
  const size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
  if (s.size() - (i - 1) < need) s.resize(i - 1);
}

// Cuts valid UTF-8 `s` (longer than `limit`) to at most `limit` bytes on a
// character boundary.
void CutUtf8(std::string& s, uint64_t limit) {
  size_t n = static_cast<size_t>(limit);
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  s.resize(n);
}

class Walker {
 public:
  Walker(SectionSource& source, const ExtractOptions& opts, MessageContent& out)
      : source_(source), opts_(opts), out_(out) {}

  util::Status Walk(const Part& root) {
    Planner planner(opts_.max_parts);
    planner.Visit(root);
    if (util::Status s = PlanSizes(planner.leaves()); !s.ok()) return s;
    for (const Leaf& leaf : planner.leaves()) {
      util::Status s = leaf.role == Role::kAttachment ? AddAttachment(leaf) : AddBody(leaf);
      if (!s.ok()) return s;
    }
    if (planner.omitted() > 0) Truncated().attachments_omitted = planner.omitted();
    return util::Ok();
  }

 private:
  Truncation& Truncated() {
    if (!out_.truncated) out_.truncated.emplace();
    return *out_.truncated;
  }

  bool WillFetch(const Part& part) const {
    return opts_.fetch_content && EstimateDecodedSize(part) / 2 <= opts_.max_content_bytes;
  }

  // Decides how attachments that are not fetched get their decoded size:
  // from a local source, every one is measured; from a server, at most
  // max_size_queries are asked for (each a round trip, and a re-parse of
  // the whole message on Dovecot: 2,000 parts cost 85 s of its CPU). When
  // more need one and the message is small, one BODY[] (1 ms for 280 KB)
  // and a local parse size them all.
  util::Status PlanSizes(const std::vector<Leaf>& leaves) {
    if (source_.Local()) {
      queries_left_ = std::numeric_limits<uint64_t>::max();
      return util::Ok();
    }
    queries_left_ = opts_.max_size_queries;
    uint64_t needing = 0;
    for (const Leaf& leaf : leaves) {
      if (leaf.role == Role::kAttachment && !WillFetch(*leaf.part) && HasTransferEncoding(leaf.part->encoding))
        ++needing;
    }
    if (needing <= opts_.max_size_queries || opts_.message_size > opts_.max_whole_fetch_bytes) {
      // The parts DecodedSize() will ask for, in the order it will: asked
      // of the source at once (one round trip, not one per part).
      std::vector<std::string> sections;
      for (const Leaf& leaf : leaves) {
        if (sections.size() == opts_.max_size_queries) break;
        if (leaf.role == Role::kAttachment && !WillFetch(*leaf.part) && HasTransferEncoding(leaf.part->encoding))
          sections.push_back(leaf.part->section);
      }
      return sections.size() > 1 ? source_.PlanDecodedSizes(sections) : util::Ok();
    }
    util::Result<std::string> whole = source_.Body("");
    if (!whole.ok()) return whole.error();
    util::Log(util::Area::kMime).debug("mime.sized_locally parts={} bytes={}", needing, whole->size());
    local_message_.emplace(ParseMessage(std::move(*whole), opts_.max_parts));
    local_source_.emplace(*local_message_);
    return util::Ok();
  }

  // The decoded size of an attachment that is not fetched (see PlanSizes).
  util::Result<uint64_t> DecodedSize(const Part& part) {
    // 7bit, 8bit, binary: the body's octets are its decoded bytes (IMAP
    // BINARY.SIZE equals BODYSTRUCTURE's size): no question to a server.
    if (!source_.Local() && !HasTransferEncoding(part.encoding)) return part.size;
    if (local_source_) {
      util::Result<std::optional<uint64_t>> local = local_source_->DecodedSize(part.section);
      return local.ok() && local->has_value() ? **local : EstimateDecodedSize(part);
    }
    if (queries_left_ == 0) return EstimateDecodedSize(part);
    --queries_left_;
    util::Result<std::optional<uint64_t>> exact = source_.DecodedSize(part.section);
    if (!exact.ok()) return exact.error();
    if (exact->has_value()) return **exact;
    if (part.size > kMeasureLimit) return EstimateDecodedSize(part);
    util::Result<std::string> body = source_.Body(part.section);
    if (!body.ok()) return body.error();
    return static_cast<uint64_t>(DecodeTransfer(*body, part.encoding).size());
  }

  // The text or html body, fetched only as far as max_text_bytes needs.
  util::Status AddBody(const Leaf& leaf) {
    const Part& part = *leaf.part;
    const uint64_t limit = opts_.max_text_bytes;
    const bool encoded = HasTransferEncoding(part.encoding);
    util::Result<SectionSource::Prefix> prefix =
        source_.BodyPrefix(part.section, EncodedBytesFor(part.encoding, CharsetBytesFor(leaf.charset, limit)),
                           /*raw=*/!encoded);
    if (!prefix.ok()) return prefix.error();
    bool cut = prefix->cut;
    std::string_view bytes = prefix->bytes;
    if (cut && encoded && util::Lower(util::Trim(part.encoding)) != "base64") {
      // Quoted-printable and uuencode decode line by line: a cut line
      // would decode to garbage ("=C" of "=C3").
      size_t eol = bytes.rfind('\n');
      bytes = bytes.substr(0, eol == std::string_view::npos ? 0 : eol + 1);
    }
    std::string decoded = DecodeTransfer(bytes, part.encoding);
    if (cut && NormalizeCharset(leaf.charset) == "utf-8") DropIncompleteUtf8Tail(decoded);
    std::string text = ToUtf8(decoded, leaf.charset);
    if (text.size() > limit) {
      CutUtf8(text, limit);
      cut = true;
    }
    const bool html = leaf.role == Role::kHtml;
    (html ? out_.html : out_.text) = std::move(text);
    if (cut) (html ? Truncated().html : Truncated().text) = true;
    return util::Ok();
  }

  util::Status AddAttachment(const Leaf& leaf) {
    const Part& part = *leaf.part;
    Attachment a;
    a.part = part.section;
    a.filename = leaf.filename;
    a.content_type = ForceUtf8(leaf.type + "/" + leaf.subtype);
    a.disposition = leaf.disposition ? std::optional(ForceUtf8(*leaf.disposition)) : std::nullopt;
    if (part.id) a.content_id = ForceUtf8(util::Trim(*part.id));
    a.size = EstimateDecodedSize(part);
    if (WillFetch(part)) {
      if (util::Status s = FetchContent(part, a); !s.ok()) return s;
    } else {
      // The contract promises the decoded size.
      util::Result<uint64_t> size = DecodedSize(part);
      if (!size.ok()) return size.error();
      a.size = *size;
    }
    out_.attachments.push_back(std::move(a));
    return util::Ok();
  }

  // Streams the part's body through the transfer decoder into the size, the
  // SHA-256 and (while within max_content_bytes) the base64 the event
  // carries: neither the encoded nor the decoded body is ever held whole.
  util::Status FetchContent(const Part& part, Attachment& a) {
    Sha256 sha;
    util::Base64Encoder encoder;
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
  uint64_t queries_left_ = 0;                      // decoded sizes still to ask the source for
  std::optional<ParsedMessage> local_message_;     // the whole message, when fetched to size parts
  std::optional<FileSectionSource> local_source_;  // over local_message_
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
  if (util::Lower(part.type) != "multipart") return false;
  const std::string boundary = RawParam(part.params, "boundary").value_or("");
  for (const std::string& b : outer) {
    if (boundary.starts_with(b) || b.starts_with(boundary)) return true;
  }
  for (const Part& child : part.children) {
    if (util::Lower(child.type) == "text" && util::Lower(child.subtype) == "plain" && child.size == 0 &&
        util::Lower(child.encoding) == "7bit" && child.params.size() == 1 &&
        util::Lower(child.params[0].name) == "charset" && util::Lower(child.params[0].value) == "us-ascii" &&
        !child.id && !child.description && !child.disposition)
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

util::Result<MessageContent> ExtractWhole(std::string message_bytes, const ExtractOptions& opts) {
  ParsedMessage parsed = ParseMessage(std::move(message_bytes), opts.max_parts);
  FileSectionSource source(parsed);
  return Extract(parsed.header_block, parsed.root, source, opts);
}

std::string Sha256Hex(std::string_view data) {
  Sha256 sha;
  sha.Update(data);
  return sha.Hex();
}

uint64_t EstimateDecodedSize(const Part& part) {
  const std::string enc = util::Lower(part.encoding);
  if (enc == "base64") return part.size * 76 / 78 * 3 / 4;
  if (enc == "x-uuencode" || enc == "uuencode" || enc == "x-uue" || enc == "uue") return part.size * 45 / 62;
  return part.size;
}

namespace {

void ReadHeaders(std::string_view header_block, MessageContent& out) {
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
  AutoReplyHeaders& ar = out.auto_reply;
  ar.auto_submitted = FirstHeader(fields, "Auto-Submitted");
  ar.precedence = FirstHeader(fields, "Precedence");
  ar.list_id = FirstHeader(fields, "List-Id");
  ar.list_unsubscribe = FirstHeader(fields, "List-Unsubscribe");
  ar.return_path = FirstHeader(fields, "Return-Path");
  ar.sender = FirstHeader(fields, "Sender");
}

util::Status ReadParts(const Part& root, SectionSource& source, const ExtractOptions& opts, MessageContent& out) {
  // A local source's tree is the local parse: never doubtful.
  std::vector<std::string> outer;
  if (source.Local() || !Doubtful(root, outer)) return Walker(source, opts, out).Walk(root);
  if (opts.message_size > opts.max_whole_fetch_bytes) {
    // Too large to hold whole: the server's tree is read as it is.
    util::Log(util::Area::kMime)
        .debug("mime.reparse_skipped size={} max={}", opts.message_size, opts.max_whole_fetch_bytes);
    return Walker(source, opts, out).Walk(root);
  }
  // Parse the message's own bytes (IMAP BODY[], the whole message) and
  // read every section from them: the tree and the bytes are then exactly
  // what `mailhook parse` sees for the same message. Costs one fetch and
  // one copy of the message, and only for broken MIME.
  util::Log(util::Area::kMime).debug("mime.reparse section={} type={}/{}", root.section, root.type, root.subtype);
  util::Result<std::string> whole = source.Body("");
  if (!whole.ok()) return whole.error();
  ParsedMessage local = ParseMessage(std::move(*whole), opts.max_parts);
  FileSectionSource local_source(local);
  return Walker(local_source, opts, out).Walk(local.root);
}

}  // namespace

util::Result<MessageContent> Extract(std::string_view header_block, const Part& root, SectionSource& source,
                                     const ExtractOptions& opts) {
  MessageContent out;
  ReadHeaders(header_block, out);
  if (util::Status s = ReadParts(root, source, opts, out); !s.ok()) return s.error();
  util::Log(util::Area::kMime)
      .debug("mime.extracted attachments={} text={} html={} omitted={}", out.attachments.size(), out.text.has_value(),
             out.html.has_value(), out.truncated ? out.truncated->attachments_omitted : 0);
  return out;
}

}  // namespace mailhook::mime
