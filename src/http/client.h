#pragma once
/// http::ClientConnection: one HTTP/1.1 connection from the daemon to an
/// origin, for its outgoing requests (webhooks, OAuth2 token endpoints).
///
/// Our own rather than cpp-httplib's client: that library and the zlib and
/// brotli it links cost every daemon ~540 KiB resident, and ending one of its
/// requests from outside took a watchdog thread repeating stop()
/// (bench/README.md, "Memory again"). This one is built on imap/tls_stream's
/// socket stream, as src/smtp is: a connect bounded by the deadline, TLS with
/// the chain and the host name verified (SNI), and a stop fd that ends any
/// wait at once.
///
/// The server is not trusted: every wait ends by the request's deadline,
/// however slowly bytes trickle; the response head is at most
/// kMaxResponseHeadBytes; the body is read up to the caller's cap and the
/// connection then dropped; nothing is decompressed (no Accept-Encoding is
/// sent); redirects are returned, never followed.
///
/// Keep-alive: after a response read whole on a connection the server did not
/// mark "close", Reusable() says the connection may carry the next request;
/// pooling is the caller's. One request at a time per connection; not
/// thread-safe.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/http_url.h"
#include "util/result.h"

namespace mailhook::http {

/// Bytes of a response's status line and headers read at most.
inline constexpr size_t kMaxResponseHeadBytes = 64 * 1024;

/// Where requests go.
struct ClientOrigin {
  bool https = false;
  std::string host;  ///< a name or an IP literal (IPv6 without brackets)
  uint16_t port = 0;
  bool tls_verify = true;              ///< false: no chain/host check (an explicit opt-out)
  std::optional<std::string> ca_file;  ///< default: the system trust store
  /// What the opt-out in a TLS verification error names ("tls_verify: false
  /// for this webhook"); empty when there is none.
  std::string owner;

  /// The scheme, host and port of `url`; verification as the fields' defaults.
  static ClientOrigin Of(const config::HttpUrl& url);
};

struct ClientRequest {
  std::string method = "POST";
  std::string target = "/";  ///< path and query
  /// Sent as given, after Host; Content-Length is added. No CR, LF or NUL.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string_view body;
};

struct ClientResponse {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;  ///< as received, values trimmed
  std::string body;                                          ///< at most the cap Exchange was given
  bool body_capped = false;                                  ///< the server sent more; the rest was not read
  /// The first header of that name (any case), or nullptr.
  const std::string* Header(std::string_view name) const;
};

/// One connection. Errors (util::Error codes), each with a message naming the
/// server, and kBackoff unless said:
///  - "http.connect": no connection (refused, unreachable, not resolved);
///  - "http.tls_verify" (kNeedsOperator): the certificate is not trusted or
///    not for the host; the message names the fix (ca_file);
///  - "http.tls": another TLS failure (not a TLS port?);
///  - "http.timeout": the deadline passed;
///  - "http.stopped": the stop fd fired;
///  - "http.closed": the server closed or reset the connection first;
///  - "http.bad_response": not an HTTP/1.x response, or a head over the cap;
///  - "http.bad_request" (kNeedsOperator): a header with CR, LF or NUL.
class ClientConnection {
 public:
  using Clock = std::chrono::steady_clock;

  /// Connects, and for https handshakes, by `deadline`; `stop_fd` (-1:
  /// none) readable ends the attempt.
  static util::Result<std::unique_ptr<ClientConnection>> Open(const ClientOrigin& origin, Clock::time_point deadline,
                                                              int stop_fd);
  ~ClientConnection();
  ClientConnection(const ClientConnection&) = delete;
  ClientConnection& operator=(const ClientConnection&) = delete;

  /// Sends `request` and reads its response by `deadline`, at most
  /// `max_body` bytes of its body; `stop_fd` as for Open. A 1xx interim
  /// response is skipped. After any error the connection is not reusable.
  util::Result<ClientResponse> Exchange(const ClientRequest& request, Clock::time_point deadline, int stop_fd,
                                        size_t max_body);

  /// True when the last exchange ended cleanly on a connection the server
  /// keeps alive, and nothing has arrived since (a server that closed an idle
  /// connection makes it readable): it may carry the next request.
  bool Reusable();

 private:
  struct Impl;
  explicit ClientConnection(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace mailhook::http
