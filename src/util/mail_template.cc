#include "util/mail_template.h"

#include <nlohmann/json.hpp>

namespace mailhook::util {
namespace {

// What a field reads from the event and how it renders.
enum class Kind {
  kScalar,        // a string or number
  kAddressList,   // [{name, address}] → "Name <address>, …"
  kFirstName,     // the first address's name
  kFirstAddress,  // the first address's address
  kCount,         // the length of an array
};

struct Field {
  std::string_view name;
  std::string_view pointer;  // JSON pointer into the event
  Kind kind;
};

// The event of CONTRACT.md "Event": its envelope, and the message fields a
// mail can use. Attachment contents are left out on purpose (no bytes of an
// attachment in a header or body by a typo).
constexpr Field kFields[] = {
    {"id", "/id", Kind::kScalar},
    {"type", "/type", Kind::kScalar},
    {"account", "/account", Kind::kScalar},
    {"mailbox", "/mailbox", Kind::kScalar},
    {"uid", "/uid", Kind::kScalar},
    {"uidvalidity", "/uidvalidity", Kind::kScalar},
    {"created_at", "/created_at", Kind::kScalar},
    {"message.message_id", "/message/message_id", Kind::kScalar},
    {"message.subject", "/message/subject", Kind::kScalar},
    {"message.date", "/message/date", Kind::kScalar},
    {"message.size", "/message/size", Kind::kScalar},
    {"message.text", "/message/text", Kind::kScalar},
    {"message.html", "/message/html", Kind::kScalar},
    {"message.from", "/message/from", Kind::kAddressList},
    {"message.from.name", "/message/from", Kind::kFirstName},
    {"message.from.address", "/message/from", Kind::kFirstAddress},
    {"message.to", "/message/to", Kind::kAddressList},
    {"message.to.name", "/message/to", Kind::kFirstName},
    {"message.to.address", "/message/to", Kind::kFirstAddress},
    {"message.cc", "/message/cc", Kind::kAddressList},
    {"message.cc.name", "/message/cc", Kind::kFirstName},
    {"message.cc.address", "/message/cc", Kind::kFirstAddress},
    {"message.reply_to", "/message/reply_to", Kind::kAddressList},
    {"message.reply_to.name", "/message/reply_to", Kind::kFirstName},
    {"message.reply_to.address", "/message/reply_to", Kind::kFirstAddress},
    {"message.attachments.count", "/message/attachments", Kind::kCount},
};

std::string_view TrimSpaces(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

util::Error TemplateError(std::string message) {
  return util::Error("config.template", util::RetryClass::kNeedsOperator, std::move(message));
}

std::string Scalar(const nlohmann::json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_unsigned()) return std::to_string(v.get<uint64_t>());
  if (v.is_number_integer()) return std::to_string(v.get<int64_t>());
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  if (v.is_number_float()) return v.dump();
  return "";  // null, and the objects or arrays no field points at
}

std::string StringAt(const nlohmann::json& v, const char* key) {
  if (!v.is_object()) return "";
  auto it = v.find(key);
  return it != v.end() && it->is_string() ? it->get<std::string>() : "";
}

// RFC 5322 3.2.3 specials (and controls): a name holding one is quoted, so
// the rendered list parses back as the same addresses.
bool NeedsQuotes(std::string_view name) {
  for (char c : name) {
    if (static_cast<unsigned char>(c) < 0x20 || std::string_view("()<>[]:;@\\,.\"").find(c) != std::string_view::npos) {
      return true;
    }
  }
  return false;
}

std::string AddressList(const nlohmann::json& list) {
  std::string out;
  if (!list.is_array()) return out;
  for (const nlohmann::json& a : list) {
    const std::string name = StringAt(a, "name"), address = StringAt(a, "address");
    if (!out.empty()) out += ", ";
    if (name.empty()) {
      out += address;
      continue;
    }
    if (NeedsQuotes(name)) {
      out += '"';
      for (char c : name) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
      }
      out += '"';
    } else {
      out += name;
    }
    out += " <" + address + ">";
  }
  return out;
}

std::string Value(const Field& field, const nlohmann::json& event) {
  const nlohmann::json::json_pointer ptr{std::string(field.pointer)};
  if (!event.contains(ptr)) return "";
  const nlohmann::json& v = event.at(ptr);
  switch (field.kind) {
    case Kind::kScalar: return Scalar(v);
    case Kind::kAddressList: return AddressList(v);
    case Kind::kFirstName: return v.is_array() && !v.empty() ? StringAt(v.front(), "name") : "";
    case Kind::kFirstAddress: return v.is_array() && !v.empty() ? StringAt(v.front(), "address") : "";
    case Kind::kCount: return v.is_array() ? std::to_string(v.size()) : "";
  }
  return "";
}

// Header text: a CR or LF would start a new header field (injection); TAB
// is white space there too. Other controls have no place in a header.
void AppendHeader(std::string& out, std::string_view s) {
  for (char c : s) {
    const auto b = static_cast<unsigned char>(c);
    if (c == '\r' || c == '\n' || c == '\t') {
      out += ' ';
    } else if (b >= 0x20 && b != 0x7f) {
      out += c;
    }
  }
}

void AppendHtml(std::string& out, std::string_view s) {
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
}

// Cuts `s` to at most `max` bytes without splitting a UTF-8 character.
void CutUtf8(std::string& s, size_t max) {
  if (s.size() <= max) return;
  size_t n = max;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  s.resize(n);
}

std::string KnownList() {
  std::string out;
  for (const Field& f : kFields) out += (out.empty() ? "" : ", ") + std::string(f.name);
  return out;
}

util::Result<int> FieldIndex(std::string_view path, size_t pos) {
  for (size_t i = 0; i < std::size(kFields); ++i) {
    if (kFields[i].name == path) return static_cast<int>(i);
  }
  return TemplateError("unknown field \"" + std::string(path) + "\" at position " + std::to_string(pos) +
                       " of the template; known fields: " + KnownList());
}

}  // namespace

const std::vector<std::string_view>& MailTemplate::KnownFields() {
  static const std::vector<std::string_view> names = [] {
    std::vector<std::string_view> v;
    for (const Field& f : kFields) v.push_back(f.name);
    return v;
  }();
  return names;
}

util::Result<MailTemplate> MailTemplate::CompileAddresses(std::string_view source) {
  auto compiled = Compile(source, Escape::kHeader);
  if (!compiled.ok()) return compiled;
  for (const Piece& p : compiled->pieces_) {
    if (p.field < 0) continue;
    std::string_view path = KnownFields()[static_cast<size_t>(p.field)];
    if (path.ends_with(".address")) path.remove_suffix(8);
    if (path != "message.from" && path != "message.to" && path != "message.cc" && path != "message.reply_to") {
      return TemplateError("{{" + std::string(KnownFields()[static_cast<size_t>(p.field)]) +
                           "}} cannot be used in an address list: it could add recipients; use message.from, "
                           "message.reply_to (or their .address) or a fixed address");
    }
  }
  return compiled;
}

util::Result<MailTemplate> MailTemplate::Compile(std::string_view source, Escape escape) {
  std::vector<Piece> pieces(1);
  size_t i = 0;
  while (i < source.size()) {
    const size_t open = source.find("{{", i);
    if (open == std::string_view::npos) {
      pieces.back().literal.append(source.substr(i));
      break;
    }
    pieces.back().literal.append(source.substr(i, open - i));
    if (source.substr(open, 4) == "{{{{") {  // the escape for a literal "{{"
      pieces.back().literal += "{{";
      i = open + 4;
      continue;
    }
    const size_t close = source.find("}}", open + 2);
    if (close == std::string_view::npos) {
      return TemplateError("unclosed \"{{\" at position " + std::to_string(open + 1) +
                           " of the template; close it with \"}}\", or write \"{{{{\" for a literal \"{{\"");
    }
    const std::string_view path = TrimSpaces(source.substr(open + 2, close - open - 2));
    if (path.empty()) return TemplateError("empty \"{{}}\" at position " + std::to_string(open + 1));
    auto field = FieldIndex(path, open + 1);
    if (!field) return field.error();
    pieces.back().field = *field;
    pieces.emplace_back();
    i = close + 2;
  }
  if (escape == Escape::kHeader) {
    for (Piece& p : pieces) {
      std::string clean;
      AppendHeader(clean, p.literal);
      p.literal = std::move(clean);
    }
  }
  return MailTemplate(std::move(pieces), escape);
}

std::string MailTemplate::Render(const nlohmann::json& event) const {
  const size_t max = escape_ == Escape::kHeader ? kMaxHeaderBytes : kMaxBodyBytes;
  std::string out;
  for (const Piece& p : pieces_) {
    out += p.literal;
    if (p.field >= 0) {
      const std::string value = Value(kFields[p.field], event);
      switch (escape_) {
        case Escape::kHeader: AppendHeader(out, value); break;
        case Escape::kHtml: AppendHtml(out, value); break;
        case Escape::kText: out += value; break;
      }
    }
    if (out.size() > max) break;
  }
  CutUtf8(out, max);
  return out;
}

}  // namespace mailhook::util
