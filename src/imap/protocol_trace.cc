#include "imap/protocol_trace.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <optional>

#include "util/known_secrets.h"
#include "util/log.h"

namespace mailhook::imap {
namespace {

// Bytes of a line kept for redaction before it is cut to kMaxShownLine: a
// secret that starts in the shown part is still whole here (tokens are a
// few KiB at most), so the cut never leaves a piece of it behind.
constexpr size_t kCaptureLimit = 8192;
// The most bytes a literal marker ("~{18446744073709551615+}") takes.
constexpr size_t kTailBytes = 32;

std::atomic<uint64_t> g_next_conn{1};

std::string UpperVerb(std::string_view in) {
  std::string out(in);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  return out;
}

// The literal a segment announces at its end: `{N}`, `{N+}`, `{N-}` (RFC
// 7888) or `~{N}` (RFC 3516). Returns N and where the marker starts.
std::optional<std::pair<uint64_t, size_t>> TrailingLiteral(std::string_view s) {
  if (s.empty() || s.back() != '}') return std::nullopt;
  size_t open = s.rfind('{');
  if (open == std::string_view::npos) return std::nullopt;
  std::string_view digits = s.substr(open + 1, s.size() - open - 2);
  if (!digits.empty() && (digits.back() == '+' || digits.back() == '-')) digits.remove_suffix(1);
  if (digits.empty() || digits.size() > 19) return std::nullopt;
  uint64_t n = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + static_cast<uint64_t>(c - '0');
  }
  if (open > 0 && s[open - 1] == '~') --open;
  return std::make_pair(n, open);
}

// The n-th space-separated word of a line (0: the tag), empty if absent.
std::string_view Word(std::string_view line, int n) {
  size_t start = 0;
  for (int i = 0; i < n; ++i) {
    size_t space = line.find(' ', start);
    if (space == std::string_view::npos) return {};
    start = space + 1;
  }
  return line.substr(start, line.find(' ', start) - start);
}

}  // namespace

ProtocolTrace::ProtocolTrace(std::string account, const std::string& host, CredentialRedactor redactor)
    : account_(account.empty() ? host : std::move(account)), conn_(g_next_conn++), redactor_(std::move(redactor)) {}

void ProtocolTrace::Sent(std::string_view bytes, bool private_data) {
  if (private_data && !bytes.empty()) sent_.private_data = true;
  Feed(sent_, bytes, true);
}

void ProtocolTrace::Received(std::string_view bytes) { Feed(received_, bytes, false); }

void ProtocolTrace::Feed(Side& side, std::string_view bytes, bool sent) {
  while (!bytes.empty()) {
    if (side.literal_left > 0) {
      // A literal's bytes are never looked at (a message, or a password).
      const size_t skip = static_cast<size_t>(std::min<uint64_t>(side.literal_left, bytes.size()));
      side.literal_left -= skip;
      bytes.remove_prefix(skip);
      continue;
    }
    const size_t nl = bytes.find('\n');
    std::string_view piece = bytes.substr(0, nl);
    const size_t room = kCaptureLimit - std::min(kCaptureLimit, side.shown.size());
    side.shown.append(piece.substr(0, room));
    side.hidden += piece.size() - std::min(room, piece.size());
    side.tail.append(piece.substr(piece.size() - std::min(piece.size(), kTailBytes)));
    if (side.tail.size() > kTailBytes) side.tail.erase(0, side.tail.size() - kTailBytes);
    if (nl == std::string_view::npos) return;
    bytes.remove_prefix(nl + 1);
    EndSegment(side, sent);
  }
}

void ProtocolTrace::EndSegment(Side& side, bool sent) {
  if (!side.tail.empty() && side.tail.back() == '\r') side.tail.pop_back();
  if (!side.shown.empty() && side.shown.back() == '\r' && side.hidden == 0) side.shown.pop_back();
  auto literal = TrailingLiteral(side.tail);
  side.tail.clear();
  if (!literal) {
    Emit(side, sent);
    return;
  }
  // The line goes on after the literal: show its size in place of its marker
  // (a line already cut keeps only its size).
  if (side.hidden == 0) {
    auto in_shown = TrailingLiteral(side.shown);
    if (in_shown) side.shown.resize(in_shown->second);
    side.shown += "{" + std::to_string(literal->first) + " bytes}";
  }
  side.literal_left = literal->first;
}

void ProtocolTrace::Emit(Side& side, bool sent) {
  std::string line = std::move(side.shown);
  const uint64_t hidden = side.hidden;
  const bool private_data = side.private_data;
  side = Side();
  spdlog::logger& log = util::Log(util::Area::kImap);
  if (!log.should_log(spdlog::level::trace)) return;
  if (sent) {
    log.trace("imap.sent account={} conn={} folder={} line=\"{}\"", account_, conn_, folder_,
              Finish(RenderSent(line, private_data), hidden));
    return;
  }
  // A tagged answer ends a SASL exchange; "+" asks for more and untagged
  // data (CAPABILITY...) may come in between.
  if (!line.starts_with("+") && !line.starts_with("*")) in_authenticate_ = false;
  log.trace("imap.received account={} conn={} folder={} line=\"{}\"", account_, conn_, folder_,
            Finish(redactor_.Clean(line, kCaptureLimit), hidden));
}

std::string ProtocolTrace::RenderSent(const std::string& line, bool private_data) {
  // A client line during AUTHENTICATE is a SASL response (RFC 3501 §6.2.2):
  // a password, a token or a proof, in base64.
  if (in_authenticate_) return "<redacted: " + std::to_string(line.size()) + " bytes of SASL response>";
  const std::string tag(Word(line, 0));
  const std::string verb = UpperVerb(Word(line, 1));
  if (verb == "LOGIN") return tag + " LOGIN <redacted>";
  if (verb == "AUTHENTICATE") {
    in_authenticate_ = true;
    const std::string mechanism(Word(line, 2));
    const bool initial_response = !Word(line, 3).empty();
    return tag + " AUTHENTICATE " + redactor_.Clean(mechanism, 40) + (initial_response ? " <redacted>" : "");
  }
  if (private_data) return tag + " " + verb + " <redacted>";
  if (verb == "SELECT" || verb == "EXAMINE") {
    // The connection's role from here on.
    folder_ = redactor_.Clean(line.substr(std::min(line.size(), tag.size() + verb.size() + 2)), 100);
    if (folder_.empty()) folder_ = "-";
    // One field: a quoted name without its quotes, spaces shown as _.
    if (folder_.size() >= 2 && folder_.front() == '"' && folder_.back() == '"') {
      folder_ = folder_.substr(1, folder_.size() - 2);
    }
    for (char& c : folder_) c = c == '"' || c == '\\' || c == ' ' ? '_' : c;
  } else if (verb == "NOTIFY") {
    folder_ = "notify";
  }
  return redactor_.Clean(line, kCaptureLimit);
}

std::string ProtocolTrace::Finish(const std::string& line, uint64_t hidden) const {
  // Redacted whole, then cut: a cut never leaves half a secret behind.
  std::string out = util::RedactKnownSecrets(line);
  uint64_t cut = hidden;
  if (out.size() > kMaxShownLine) {
    cut += out.size() - kMaxShownLine;
    out.resize(kMaxShownLine);
  }
  // Shown as line="...": quotes and backslashes escaped, as in other fields.
  std::string escaped;
  escaped.reserve(out.size() + 16);
  for (char c : out) {
    if (c == '"' || c == '\\') escaped += '\\';
    escaped += c;
  }
  if (cut > 0) escaped += "...(+" + std::to_string(cut) + " bytes)";
  return escaped;
}

}  // namespace mailhook::imap
