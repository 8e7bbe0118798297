#pragma once
/// RequestHead: an incremental, bounded parser for an HTTP/1.x request head
/// (request line and header fields, RFC 9112 §2-§5). It never reads a body;
/// it only says how much body the head announces, so the server can refuse it
/// before reading a byte of it.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mailhook::http {

/// Bounds on one request head.
struct HeadLimits {
  size_t max_bytes = 8 * 1024;  ///< request line + header fields + blank line
  size_t max_fields = 64;       ///< header field lines
};

/// A parsed request head. Field names are lower-cased; values trimmed.
struct RequestHead {
  std::string method;   ///< e.g. "GET" (case-sensitive, RFC 9110 §9.1)
  std::string target;   ///< as sent, e.g. "/metrics?x=1"
  std::string path;     ///< target up to '?'
  bool http10 = false;  ///< HTTP/1.0 (otherwise HTTP/1.1)
  std::vector<std::pair<std::string, std::string>> fields;
  uint64_t content_length = 0;
  bool has_transfer_encoding = false;  ///< any Transfer-Encoding field
  bool keep_alive = true;              ///< per version and Connection field

  /// The first value of field `lower_name`, or nullopt.
  std::optional<std::string> Field(std::string_view lower_name) const;
  /// True when a body follows the head (Content-Length > 0 or any
  /// Transfer-Encoding).
  bool AnnouncesBody() const { return has_transfer_encoding || content_length > 0; }
};

/// The outcome of one parse attempt.
struct HeadParse {
  enum class Kind { kIncomplete, kComplete, kError } kind = Kind::kIncomplete;
  size_t head_bytes = 0;  ///< kComplete: bytes of `buf` the head used
  int status = 0;         ///< kError: the HTTP status to answer (400, 431, 505)
  std::string cause;      ///< kError: why, for the log and the response body
  RequestHead head;       ///< kComplete
};

/// Progress of the search for the end of a head in a growing buffer; start
/// from {} for each request.
struct HeadScan {
  size_t scanned = 0;  ///< bytes known not to end the head
  size_t lines = 0;    ///< complete lines among them
};

/// Parses the head at the start of `buf`. `scan` carries progress between
/// calls on a growing buffer, so a head that trickles in byte by byte costs
/// linear time. Returns kError (431) as soon as the head is over `limits`,
/// without waiting for its end.
HeadParse ParseRequestHead(std::string_view buf, HeadScan* scan, const HeadLimits& limits);

}  // namespace mailhook::http
