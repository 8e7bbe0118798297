#include "mime/mime_parser.h"

#include <cctype>

#include "mime/header.h"
#include "mime/params.h"
#include "util/strings.h"

namespace mailhook::mime {
namespace {

// Deeper nesting than this is an attack, not mail; the rest stays a leaf.
constexpr int kMaxDepth = 64;

// The Content-* fields of one entity into `out`. The first of each field
// counts, as in Dovecot's message-part-data.c, except Content-Disposition:
// Dovecot parses every one until one has parameters, so the first with
// parameters wins, else the last (a field without a disposition token is
// skipped). The server's BODYSTRUCTURE cannot change, so `mailhook parse`
// follows it.
void ReadContentFields(const std::vector<HeaderField>& fields, bool digest_child, Part& out) {
  if (auto ct = FirstHeader(fields, "Content-Type")) {
    ContentType parsed = ParseContentType(*ct);
    out.type = parsed.type;
    out.subtype = parsed.subtype;
    out.params = parsed.params;
  } else if (digest_child) {
    out.type = "message";  // RFC 2046 5.1.5
    out.subtype = "rfc822";
  }
  if (auto cte = FirstHeader(fields, "Content-Transfer-Encoding")) {
    std::string e = util::Lower(util::Trim(*cte));
    if (!e.empty()) out.encoding = e;
  }
  if (auto id = FirstHeader(fields, "Content-ID")) {
    std::string v(util::Trim(*id));
    if (!v.empty()) out.id = v;
  }
  if (auto desc = FirstHeader(fields, "Content-Description")) out.description = *desc;
  for (const std::string& value : AllHeaders(fields, "Content-Disposition")) {
    Disposition parsed = ParseDisposition(value);
    if (parsed.type.empty()) continue;
    out.disposition = parsed.type;
    out.disposition_params = parsed.params;
    if (!parsed.params.empty()) break;
  }
}

class Parser {
 public:
  Parser(const std::string& data, std::map<std::string, SectionRange>& ranges, uint32_t max_parts)
      : d_(data), ranges_(ranges), parts_left_(max_parts) {}

  // `greedy_end` is where the part would end if the line break before the
  // delimiter that ends it were kept (see ClosesInnerMultipart); `end` if none.
  void Entity(size_t begin, size_t end, size_t greedy_end, const std::string& section, bool digest_child, int depth,
              Part& out) {
    SectionRange r;
    r.header_begin = begin;
    // RFC 5322 2.1: the header ends at the first empty line. A message that
    // starts with an empty line has no header at all.
    size_t pos = begin;
    r.header_end = end;
    r.body_begin = end;
    while (pos < end) {
      size_t eol = d_.find('\n', pos);
      size_t next = (eol == std::string::npos || eol >= end) ? end : eol + 1;
      size_t content_end = (eol == std::string::npos || eol >= end) ? end : eol;
      if (content_end > pos && d_[content_end - 1] == '\r') --content_end;
      if (content_end == pos && next > pos) {
        r.header_end = pos;
        r.body_begin = next;
        break;
      }
      pos = next;
    }
    r.body_end = end;

    std::vector<HeaderField> fields =
        ParseHeaderBlock(std::string_view(d_).substr(r.header_begin, r.header_end - r.header_begin));
    out.section = section;
    ReadContentFields(fields, digest_child, out);
    // Dovecot (and so every IMAP client of it) ends a part AFTER the CRLF
    // that RFC 2046 5.1.1 gives to the delimiter that follows, when that
    // CRLF ends a line Dovecot parsed as structure: the close delimiter of a
    // multipart inside the part, or a header line (a message/rfc822 whose
    // message has no body). BODY[section] and the BODYSTRUCTURE size include
    // it: keep it too, so `mailhook parse` reports the bytes the daemon reads.
    const bool is_message = out.type == "message" && out.subtype == "rfc822";
    if (greedy_end > end && (((is_message || out.IsMultipart()) && ClosesInnerMultipart(r.body_begin, end)) ||
                             (is_message && HeaderOnly(r.body_begin, end)))) {
      end = greedy_end;
      r.body_end = end;
    }
    out.size = CrlfSize(std::string_view(d_).substr(r.body_begin, r.body_end - r.body_begin));
    ranges_[section] = r;

    if (!out.IsMultipart() || depth >= kMaxDepth) return;
    std::optional<std::string> boundary = RawParam(out.params, "boundary");
    if (!boundary || boundary->empty()) return;
    SplitMultipart(r.body_begin, r.body_end, *boundary, section, out.subtype == "digest", depth, out);
  }

 private:
  // RFC 2046 5.1.1: a delimiter is "--boundary" at the start of a line,
  // optionally followed by "--" (close) and linear whitespace. The line
  // break before a delimiter belongs to the delimiter.
  void SplitMultipart(size_t begin, size_t end, const std::string& boundary, const std::string& section, bool digest,
                      int depth, Part& out) {
    const std::string dash = "--" + boundary;
    struct Body {
      size_t begin, end, greedy_end;  // [begin, end); greedy_end keeps the CRLF before the delimiter
    };
    // Only as many bodies as may still be built are kept (each child is at
    // least one part): the rest of a part bomb is counted as the delimiters
    // go by, so memory stays bounded and the scan linear.
    std::vector<Body> bodies;
    uint64_t uncounted = 0;
    auto add = [&](const Body& b) {
      if (bodies.size() < parts_left_)
        bodies.push_back(b);
      else
        ++uncounted;
    };
    bool in_part = false;
    size_t part_begin = 0;
    size_t pos = begin;
    while (pos < end) {
      size_t eol = d_.find('\n', pos);
      size_t next = (eol == std::string::npos || eol >= end) ? end : eol + 1;
      std::string_view line = std::string_view(d_).substr(pos, next - pos);
      if (line.starts_with(dash)) {
        std::string_view rest = line.substr(dash.size());
        bool close = rest.starts_with("--");
        if (close) rest.remove_prefix(2);
        while (!rest.empty() &&
               (rest.front() == ' ' || rest.front() == '\t' || rest.front() == '\r' || rest.front() == '\n'))
          rest.remove_prefix(1);
        if (rest.empty()) {
          if (in_part) {
            size_t part_end = pos;
            if (part_end > part_begin && d_[part_end - 1] == '\n') --part_end;
            if (part_end > part_begin && d_[part_end - 1] == '\r') --part_end;
            add({part_begin, part_end, pos});
          }
          if (close) {
            in_part = false;
            break;  // the rest is the epilogue
          }
          in_part = true;
          part_begin = next;
        }
      }
      pos = next;
    }
    // A missing close delimiter: the last part runs to the end.
    if (in_part) add({part_begin, end, end});
    // Children are built in order while the cap allows (the grandchildren of
    // an earlier child come first); the rest are counted.
    out.children_omitted = uncounted;
    int n = 0;
    for (const Body& b : bodies) {
      ++n;
      if (parts_left_ == 0) {
        ++out.children_omitted;
        continue;
      }
      --parts_left_;
      std::string child_section = section.empty() ? std::to_string(n) : section + "." + std::to_string(n);
      Part child;
      Entity(b.begin, b.end, b.greedy_end, child_section, digest, depth + 1, child);
      out.children.push_back(std::move(child));
    }
  }

  // True when the last line of [begin, end) is the close delimiter
  // ("--X--", RFC 2046 5.1.1) of a boundary X opened by a "--X" line earlier
  // in the same range, i.e. it closes a multipart nested inside this part.
  bool ClosesInnerMultipart(size_t begin, size_t end) const {
    if (end <= begin) return false;
    size_t line_begin = d_.rfind('\n', end - 1);
    line_begin = (line_begin == std::string::npos || line_begin < begin) ? begin : line_begin + 1;
    std::string_view last = std::string_view(d_).substr(line_begin, end - line_begin);
    while (!last.empty() && (last.back() == ' ' || last.back() == '\t' || last.back() == '\r')) last.remove_suffix(1);
    if (last.size() < 5 || !last.starts_with("--") || !last.ends_with("--")) return false;
    const std::string open(last.substr(0, last.size() - 2));  // "--X"
    for (size_t at = begin; at < line_begin;) {
      size_t hit = d_.find(open, at);
      if (hit == std::string::npos || hit >= line_begin) return false;
      const bool line_start = hit == begin || d_[hit - 1] == '\n';
      const char after = hit + open.size() < end ? d_[hit + open.size()] : '\n';
      if (line_start && (after == '\r' || after == '\n' || after == ' ' || after == '\t')) return true;
      at = hit + 1;
    }
    return false;
  }

  // True when [begin, end) is not empty and holds no empty line: a message
  // that is all header (RFC 5322 2.1: the body is optional).
  bool HeaderOnly(size_t begin, size_t end) const {
    if (end <= begin) return false;
    for (size_t pos = begin; pos < end;) {
      size_t eol = d_.find('\n', pos);
      if (eol == std::string::npos || eol >= end) return true;  // the last, unterminated line
      if (eol == pos || (eol == pos + 1 && d_[pos] == '\r')) return false;
      pos = eol + 1;
    }
    return true;
  }

  const std::string& d_;
  std::map<std::string, SectionRange>& ranges_;
  uint64_t parts_left_;  // parts that may still be built (max_parts)
};

}  // namespace

uint64_t CrlfSize(std::string_view s) {
  uint64_t n = s.size();
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r')) ++n;
  }
  return n;
}

std::string ToServerLineBreaks(std::string data) {
  const uint64_t size = CrlfSize(data);
  if (size == data.size()) return data;
  std::string out;
  out.reserve(static_cast<size_t>(size));
  for (size_t i = 0; i < data.size(); ++i) {
    if (data[i] == '\n' && (i == 0 || data[i - 1] != '\r')) out.push_back('\r');
    out.push_back(data[i]);
  }
  return out;
}

ParsedMessage ParseMessage(std::string data, uint32_t max_parts) {
  ParsedMessage m;
  m.data = std::move(data);
  Parser parser(m.data, m.ranges, max_parts);
  parser.Entity(0, m.data.size(), m.data.size(), "", false, 0, m.root);
  const SectionRange top = m.ranges[""];
  m.header_block = m.data.substr(top.header_begin, top.header_end - top.header_begin);
  // IMAP numbering: a message that is not a split multipart has its body
  // at section "1" (RFC 3501 6.4.5).
  if (m.root.children.empty() && m.root.children_omitted == 0) {
    m.root.section = "1";
    m.ranges["1"] = top;
    m.ranges.erase("");
  }
  m.imap_size = CrlfSize(m.data);
  return m;
}

util::Result<std::string_view> FileSectionSource::BodyView(const std::string& section) const {
  // IMAP BODY[] (an empty section) is the whole message, header included.
  if (section.empty()) return std::string_view(message_.data);
  auto it = message_.ranges.find(section);
  if (it == message_.ranges.end()) {
    return util::Error(
        "mime.no_section", util::RetryClass::kNeedsOperator,
        "section '" + section + "' is not in the parsed message; ask only for sections of its Part tree");
  }
  return std::string_view(message_.data).substr(it->second.body_begin, it->second.body_end - it->second.body_begin);
}

util::Result<std::string> FileSectionSource::Body(const std::string& section) {
  util::Result<std::string_view> view = BodyView(section);
  if (!view.ok()) return view.error();
  return std::string(*view);
}

util::Status FileSectionSource::StreamBody(const std::string& section,
                                           const std::function<util::Status(std::string_view)>& sink) {
  util::Result<std::string_view> view = BodyView(section);
  if (!view.ok()) return view.error();
  constexpr size_t kPiece = 1 << 20;  // the sink's own buffers stay small
  std::string_view rest = *view;
  do {
    std::string_view piece = rest.substr(0, kPiece);
    rest.remove_prefix(piece.size());
    if (util::Status s = sink(piece); !s.ok()) return s;
  } while (!rest.empty());
  return util::Ok();
}

util::Result<std::string> FileSectionSource::MimeHeaders(const std::string& section) {
  auto it = message_.ranges.find(section);
  if (it == message_.ranges.end()) {
    return util::Error(
        "mime.no_section", util::RetryClass::kNeedsOperator,
        "section '" + section + "' is not in the parsed message; ask only for sections of its Part tree");
  }
  return message_.data.substr(it->second.header_begin, it->second.header_end - it->second.header_begin);
}

FileSectionSource::FileSectionSource(const ParsedMessage& message) : message_(message) {
  // Built once: every DecodedSize is then one lookup, not a tree search
  // (which made sizing every part of a large tree quadratic).
  std::vector<const Part*> todo{&message_.root};
  while (!todo.empty()) {
    const Part* p = todo.back();
    todo.pop_back();
    parts_.emplace(p->section, p);
    for (const Part& c : p->children) todo.push_back(&c);
  }
}

util::Result<SectionSource::Prefix> FileSectionSource::BodyPrefix(const std::string& section, uint64_t max_bytes,
                                                                  bool raw) {
  (void)raw;  // the file's bytes are all there: Body and RawBody are the same
  util::Result<std::string_view> view = BodyView(section);
  if (!view.ok()) return view.error();
  Prefix p;
  p.cut = view->size() > max_bytes;
  p.bytes = std::string(view->substr(0, p.cut ? static_cast<size_t>(max_bytes) : view->size()));
  return p;
}

util::Result<std::optional<uint64_t>> FileSectionSource::DecodedSize(const std::string& section) {
  auto it = parts_.find(section);
  if (it == parts_.end()) return std::optional<uint64_t>();
  // Decoded piece by piece and counted: the decoded body is never held.
  uint64_t size = 0;
  if (!StreamDecodedBody(*this, section, it->second->encoding, [&](std::string_view piece) {
         size += piece.size();
       }).ok())
    return std::optional<uint64_t>();
  return std::optional<uint64_t>(size);
}

}  // namespace mailhook::mime
