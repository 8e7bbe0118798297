#include "pgstore/pg_statement.h"

namespace mailhook::pgstore {

util::Result<PgRows> ExecStatement(PgConnection& conn, const PgStatement& statement, std::span<const PgParam> params) {
  if (auto s = conn.Prepare(statement.name, statement.sql); !s) return s.error();
  return conn.Exec(statement.name, params);
}

util::Status RunStatement(PgConnection& conn, const PgStatement& statement, std::initializer_list<PgParam> params) {
  if (auto r = ExecStatement(conn, statement, params); !r) return r.error();
  return util::Ok();
}

util::Result<std::optional<int64_t>> FirstInt(util::Result<PgRows> rows) {
  if (!rows) return rows.error();
  if (rows->rows() == 0 || rows->IsNull(0, 0)) return std::optional<int64_t>();
  auto value = rows->Int64(0, 0);
  if (!value) return value.error();
  return std::optional<int64_t>(*value);
}

util::Status InReadSnapshot(PgConnection& conn, const std::function<util::Status()>& fn) {
  if (conn.in_transaction()) return fn();
  return conn.InTransaction([&]() -> util::Status {
    // First in the transaction: it sets the isolation for every statement after.
    if (auto s = conn.Run("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"); !s) return s;
    return fn();
  });
}

std::string PgTextArray(std::span<const std::string> items) {
  std::string out = "{";
  for (const std::string& item : items) {
    if (out.size() > 1) out += ',';
    // Every element quoted: commas, braces, spaces and NULL stay texts.
    out += '"';
    for (char c : item) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  return out + '}';
}

std::string PgIntArray(std::span<const int64_t> ids) {
  std::string out = "{";
  for (int64_t id : ids) {
    if (out.size() > 1) out += ',';
    out += std::to_string(id);
  }
  return out + '}';
}

std::string_view Utf8Prefix(std::string_view text, size_t max) {
  if (text.size() <= max) return text;
  size_t end = max;
  // Back off over continuation bytes (10xxxxxx) to the start of the
  // sequence: at most 3 (a sequence is at most 4 bytes, RFC 3629 §3), so
  // bytes that are not UTF-8 (a run of continuation bytes) cut near `max`,
  // not at 0.
  for (int n = 0; n < 3 && end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80; ++n) --end;
  return text.substr(0, end);
}

namespace {

// The length of the valid UTF-8 sequence at text[at] (RFC 3629 §4: no
// overlong forms, no surrogates, nothing past U+10FFFF), or 0.
size_t Utf8SequenceAt(std::string_view text, size_t at) {
  const auto byte = [&](size_t i) { return i < text.size() ? static_cast<unsigned char>(text[i]) : 0u; };
  const unsigned b0 = byte(at);
  const auto cont = [&](size_t i) { return (byte(i) & 0xC0) == 0x80; };
  if (b0 >= 0x01 && b0 <= 0x7F) return 1;
  if (b0 >= 0xC2 && b0 <= 0xDF) return cont(at + 1) ? 2 : 0;
  if (b0 >= 0xE0 && b0 <= 0xEF) {
    const unsigned b1 = byte(at + 1);
    if ((b0 == 0xE0 && b1 < 0xA0) || (b0 == 0xED && b1 > 0x9F)) return 0;
    return cont(at + 1) && cont(at + 2) ? 3 : 0;
  }
  if (b0 >= 0xF0 && b0 <= 0xF4) {
    const unsigned b1 = byte(at + 1);
    if ((b0 == 0xF0 && b1 < 0x90) || (b0 == 0xF4 && b1 > 0x8F)) return 0;
    return cont(at + 1) && cont(at + 2) && cont(at + 3) ? 4 : 0;
  }
  return 0;  // NUL, a continuation byte, C0, C1, F5..FF
}

}  // namespace

std::string ValidUtf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t at = 0; at < text.size();) {
    const size_t n = Utf8SequenceAt(text, at);
    if (n == 0) {
      out += "\xEF\xBF\xBD";  // U+FFFD REPLACEMENT CHARACTER
      ++at;
    } else {
      out.append(text.substr(at, n));
      at += n;
    }
  }
  return out;
}

}  // namespace mailhook::pgstore
