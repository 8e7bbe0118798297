#include "mime/event.h"

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>

#include "mime/decode.h"
#include "mime/extractor.h"
#include "mime/header.h"
#include "mime/mime_parser.h"

namespace mailhook::mime {
namespace {

using nlohmann::json;

json Str(const std::optional<std::string>& s) { return s ? json(ForceUtf8(*s)) : json(nullptr); }

json Addresses(const std::vector<Address>& list) {
  json out = json::array();
  for (const Address& a : list) out.push_back({{"name", ForceUtf8(a.name)}, {"address", ForceUtf8(a.address)}});
  return out;
}

json Strings(const std::vector<std::string>& list) {
  json out = json::array();
  for (const std::string& s : list) out.push_back(ForceUtf8(s));
  return out;
}

json Truncated(const std::optional<Truncation>& t) {
  if (!t) return nullptr;
  return {{"text", t->text}, {"html", t->html}, {"attachments_omitted", t->attachments_omitted}};
}

// The envelope every event type shares (CONTRACT.md "Event").
json Envelope(std::string_view type, const EventMeta& meta) {
  return {{"type", std::string(type)},
          {"schema", 1},
          {"id", EventId(meta.account, meta.mailbox, meta.uidvalidity, meta.uid)},
          {"created_at", meta.created_at},
          {"account", ForceUtf8(meta.account)},
          {"mailbox", ForceUtf8(meta.mailbox)},
          {"uidvalidity", meta.uidvalidity},
          {"uid", meta.uid}};
}

}  // namespace

std::string EventId(const std::string& account, const std::string& mailbox, uint32_t uidvalidity, uint32_t uid) {
  std::string key = account;
  key.push_back('\0');
  key += mailbox;
  key.push_back('\0');
  key += std::to_string(uidvalidity);
  key.push_back('\0');
  key += std::to_string(uid);
  return "evt_" + Sha256Hex(key).substr(0, 32);
}

std::string NowRfc3339() {
  auto now = std::chrono::system_clock::now();
  return FormatRfc3339(std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count());
}

namespace {

// Stands in for an attachment's content while the event is serialised; the
// content is spliced in afterwards (EventPayload), so it is never copied
// into the JSON tree and the dump. In the compact dump the sequence
// "content_base64":"#" can only be an attachment's key: inside any string
// value a quote is escaped.
constexpr std::string_view kContentMarker = "\"content_base64\":\"#\"";
// The same for the original of an smtp forward (EventOriginal).
constexpr std::string_view kOriginalMarker = "\"original_rfc822\":\"#\"";

// The attachments whose content the event carries.
bool Carries(const Attachment& a, config::AttachmentMode mode, uint64_t max_attachment_bytes) {
  return mode == config::AttachmentMode::kContent && a.content_base64 && a.size <= max_attachment_bytes;
}

json AutoReplyJson(const AutoReplyHeaders& h) {
  return {
      {"auto_submitted", Str(h.auto_submitted)},     {"precedence", Str(h.precedence)},   {"list_id", Str(h.list_id)},
      {"list_unsubscribe", Str(h.list_unsubscribe)}, {"return_path", Str(h.return_path)}, {"sender", Str(h.sender)}};
}

json EventTree(const EventMeta& meta, const MessageContent& c, config::AttachmentMode mode,
               uint64_t max_attachment_bytes, bool markers) {
  json attachments = json::array();
  if (mode != config::AttachmentMode::kNone) {
    for (const Attachment& a : c.attachments) {
      json j = {{"part", ForceUtf8(a.part)},
                {"filename", Str(a.filename)},
                {"content_type", ForceUtf8(a.content_type)},
                {"disposition", Str(a.disposition)},
                {"content_id", Str(a.content_id)},
                {"size", a.size},
                {"sha256", Str(a.sha256)}};
      if (mode == config::AttachmentMode::kContent) {
        j["content_base64"] = !Carries(a, mode, max_attachment_bytes) ? json(nullptr)
                              : markers                               ? json("#")
                                                                      : json(*a.content_base64);
      }
      attachments.push_back(std::move(j));
    }
  }
  json message = {{"message_id", Str(c.message_id)},
                  {"in_reply_to", Strings(c.in_reply_to)},
                  {"references", Strings(c.references)},
                  {"date", Str(c.date)},
                  {"subject", Str(c.subject)},
                  {"from", Addresses(c.from)},
                  {"to", Addresses(c.to)},
                  {"cc", Addresses(c.cc)},
                  {"reply_to", Addresses(c.reply_to)},
                  {"flags", Strings(meta.flags)},
                  {"size", meta.size},
                  {"text", Str(c.text)},
                  {"html", Str(c.html)},
                  {"attachments", std::move(attachments)},
                  {"truncated", Truncated(c.truncated)}};
  json event = Envelope("message.received", meta);
  event["message"] = std::move(message);
  return event;
}

}  // namespace

json EventJson(const EventMeta& meta, const MessageContent& content, config::AttachmentMode mode,
               uint64_t max_attachment_bytes) {
  return EventTree(meta, content, mode, max_attachment_bytes, false);
}

std::vector<std::shared_ptr<const std::string>> EventPieces(const EventMeta& meta, const MessageContent& content,
                                                            config::AttachmentMode mode, uint64_t max_attachment_bytes,
                                                            bool auto_reply_headers) {
  return EventPieces(meta, content, mode, max_attachment_bytes, auto_reply_headers, nullptr);
}

std::vector<std::shared_ptr<const std::string>> EventPieces(const EventMeta& meta, const MessageContent& content,
                                                            config::AttachmentMode mode, uint64_t max_attachment_bytes,
                                                            bool auto_reply_headers, const EventOriginal* original) {
  json tree = EventTree(meta, content, mode, max_attachment_bytes, true);
  if (auto_reply_headers) tree["auto_reply_headers"] = AutoReplyJson(content.auto_reply);
  if (original) tree["original_rfc822"] = original->base64 ? json("#") : json(nullptr);
  if (original && !original->base64 && !original->omitted.empty()) tree["original_omitted"] = original->omitted;
  std::string skeleton = tree.dump();
  std::vector<std::shared_ptr<const std::string>> pieces;
  size_t from = 0;
  for (const Attachment& a : content.attachments) {
    if (!Carries(a, mode, max_attachment_bytes)) continue;
    size_t at = skeleton.find(kContentMarker, from);
    if (at == std::string::npos) break;             // cannot happen: one marker per carried content
    size_t value = at + kContentMarker.size() - 2;  // the '#' between the quotes
    pieces.push_back(std::make_shared<const std::string>(skeleton, from, value - from));
    pieces.push_back(a.content_base64);
    from = value + 1;
  }
  if (original && original->base64) {
    // The object's keys are sorted, so "original_rfc822" follows "message"
    // and its attachments; like theirs, its marker can only be the key.
    size_t at = skeleton.find(kOriginalMarker, from);
    if (at != std::string::npos) {
      size_t value = at + kOriginalMarker.size() - 2;
      pieces.push_back(std::make_shared<const std::string>(skeleton, from, value - from));
      pieces.push_back(original->base64);
      from = value + 1;
    }
  }
  if (pieces.empty()) {
    pieces.push_back(std::make_shared<const std::string>(std::move(skeleton)));
  } else {
    pieces.push_back(std::make_shared<const std::string>(skeleton, from, std::string::npos));
  }
  return pieces;
}

std::string EventPayload(const EventMeta& meta, const MessageContent& content, config::AttachmentMode mode,
                         uint64_t max_attachment_bytes) {
  auto pieces = EventPieces(meta, content, mode, max_attachment_bytes);
  size_t total = 0;
  for (const auto& p : pieces) total += p->size();
  std::string out;
  out.reserve(total);
  for (const auto& p : pieces) out += *p;
  return out;
}

util::Result<std::string> ParseFileToEventJson(const std::string& path, const std::string& mailbox,
                                               config::AttachmentMode mode) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return util::Error("mime.read_failed", util::RetryClass::kNeedsOperator,
                       "cannot open '" + path + "': " + std::strerror(errno) + "; check the path and permissions");
  }
  // Read straight into one string of the file's size: the message is held
  // once (a stringstream would hold it twice, and grow by doubling).
  std::string data;
  in.seekg(0, std::ios::end);
  std::streamoff end = in.tellg();
  in.seekg(0, std::ios::beg);
  if (end > 0) {
    data.resize(static_cast<size_t>(end));
    in.read(data.data(), end);
    data.resize(static_cast<size_t>(in.gcount()));
  } else {
    std::ostringstream buf;  // not seekable (a pipe): read it as it comes
    buf << in.rdbuf();
    data = std::move(buf).str();
  }
  if (in.bad()) {
    return util::Error("mime.read_failed", util::RetryClass::kNeedsOperator,
                       "cannot read '" + path + "'; check the file");
  }
  // Read as the server would store it: an IMAP server serves a message
  // APPENDed with bare LFs with CRLFs, so the event of `run` has CRLFs in
  // text, html and 7bit/8bit/quoted-printable attachments (and sizes that
  // count them). `parse` prints that event.
  data = ToServerLineBreaks(std::move(data));
  EventMeta meta;
  meta.account = "local";
  meta.mailbox = mailbox;
  meta.size = data.size();
  meta.created_at = NowRfc3339();
  ExtractOptions opts;
  opts.fetch_content = true;  // the file is local: exact sizes and hashes cost nothing
  opts.message_size = meta.size;
  util::Result<MessageContent> content = ExtractWhole(std::move(data), opts);
  if (!content.ok()) return content.error();
  return EventJson(meta, *content, mode, opts.max_content_bytes).dump(2);
}

std::string UnprocessableEventJson(const EventMeta& meta, std::string_view header_block, const std::string& reason,
                                   int attempts) {
  // Only the top header block: what could be read of a message whose body
  // could not be (the parsers are linear and never fail).
  std::vector<HeaderField> fields = ParseHeaderBlock(header_block);
  json message = {
      {"message_id", nullptr}, {"date", nullptr}, {"subject", nullptr}, {"from", nullptr}, {"size", meta.size}};
  if (auto v = FirstHeader(fields, "Message-ID")) message["message_id"] = Str(ParseMessageId(*v));
  if (auto v = FirstHeader(fields, "Date")) message["date"] = Str(ParseDate(*v));
  if (auto v = FirstHeader(fields, "Subject")) message["subject"] = ForceUtf8(DecodeHeaderText(*v));
  if (auto v = FirstHeader(fields, "From")) {
    std::vector<Address> from = ParseAddressList(*v);
    if (!from.empty()) message["from"] = Addresses(from);
  }
  json event = Envelope("message.unprocessable", meta);
  event["reason"] = ForceUtf8(reason);
  event["attempts"] = attempts;
  event["message"] = std::move(message);
  return event.dump();
}

}  // namespace mailhook::mime
