#pragma once
/// TlsStream: our own libetpan `mailstream_low_driver` over a socket and an
/// OpenSSL `SSL*`. Debian's libetpan uses GnuTLS and verifies nothing (no
/// chain, no host name, no SNI); this driver does all three (DESIGN.md "TLS").
///
/// Every read and write waits with poll() on the socket and a caller-owned
/// stop fd, bounded by a per-stream timeout, so a hung server or a shutdown
/// never blocks a watcher thread for longer than that timeout.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <libetpan/libetpan.h>

#include "imap/etpan_ptr.h"

#include "imap/nesting_scanner.h"
#include "util/result.h"

namespace mailhook::imap {

/// How to verify the server when TLS is started.
struct TlsOptions {
  std::string host;                    ///< for SNI and the host-name check
  std::optional<std::string> ca_file;  ///< default: the system trust store
  bool verify = true;                  ///< false: no chain/host check (per-account opt-out)
  /// What a verification error's opt-out names: "tls_verify: false for this
  /// <owner>"; empty: there is no opt-out to offer.
  std::string owner = "account";
  /// What a failed handshake suggests after "is this port really TLS?".
  std::string port_hint = "993 is implicit TLS, 143 needs tls: starttls";
};

/// Opens a TCP connection to host:port (non-blocking connect bounded by
/// `timeout` from the call, name resolution included as far as getaddrinfo
/// returns; TCP keepalive + TCP_USER_TIMEOUT so a dead path is noticed) and
/// wraps it as a plain (not yet encrypted) libetpan stream. `stop_fd` becomes
/// readable when the caller wants every blocking operation to end (-1: none).
/// The returned stream is owned by the caller until it hands it to
/// mailimap_connect (release() it there). A failed connect's error ends
/// with `port_hint`, the ports the protocol's TLS modes use.
util::Result<StreamPtr> OpenPlainStream(const std::string& host, uint16_t port, std::chrono::milliseconds timeout,
                                        int stop_fd,
                                        std::string_view port_hint = "993 for tls: implicit, 143 for starttls");

/// Performs the TLS handshake on a stream from OpenPlainStream (implicit TLS
/// right after connecting, or after a successful STARTTLS) and verifies the
/// certificate chain and host name. Errors name the cause (untrusted, host
/// mismatch, expired...) and the fix; they are kNeedsOperator for verification
/// failures and kBackoff for network failures.
util::Status StartTls(mailstream* stream, const TlsOptions& options);

/// True once StartTls succeeded on this stream.
bool IsEncrypted(mailstream* stream);

/// True when bytes are waiting inside OpenSSL or held back by
/// ScreenByeGreeting: such data never wakes poll(), so check this before
/// waiting on the socket.
bool HasPendingTlsData(mailstream* stream);

/// Changes the fd that interrupts blocking operations (-1: none). Used to let
/// a last DONE/LOGOUT through during shutdown after the stop fd fired.
void SetInterruptFd(mailstream* stream, int stop_fd);

/// Reads are no longer checked for IMAP's list nesting (NestingScanner): for
/// the other protocols sent over this stream (HTTP, SMTP), where a "(" means
/// nothing and a text with a thousand of them must not break the read.
void StopScanningImapNesting(mailstream* stream);

/// Changes the per-operation timeout.
void SetStreamTimeout(mailstream* stream, std::chrono::milliseconds timeout);

/// No wait of the stream (TLS handshake steps, reads of a trickled reply,
/// partial writes) goes past `deadline`; nullopt: each wait has the timeout.
void SetStreamDeadline(mailstream* stream, std::optional<std::chrono::steady_clock::time_point> deadline);

/// Starts a new response budget: from now on at most `limit` bytes are read
/// from the transport (decrypted bytes under TLS; 0 = no bound), of which at
/// most `syntax_limit` outside literal contents (0 = no bound): those are what
/// libetpan's parser turns into objects, at up to ~55 bytes of heap each,
/// while a literal is only copied. A read past either fails, so libetpan sees
/// a broken stream and stops buffering, and ResponseBudgetExceeded() turns
/// true until the next StartResponseBudget. Counted in the driver, below
/// libetpan, so no parser path can escape it.
void StartResponseBudget(mailstream* stream, uint64_t limit, uint64_t syntax_limit = 0);

/// Holds back the next line read (the greeting) until it is whole. A BYE
/// greeting (RFC 3501 §7.1.5) puts its text (FindBye) in *bye_text and the
/// read fails instead: libetpan's parse_greeting leaks a parsed BYE
/// greeting, and a server refusing connections would leak it on every try.
/// `bye_text` must outlive the read.
void ScreenByeGreeting(mailstream* stream, std::optional<std::string>* bye_text);

/// True when a read was refused because the current budget was spent.
bool ResponseBudgetExceeded(mailstream* stream);

/// True once the server nested lists deeper than kMaxResponseNesting
/// (nesting_scanner.h): the read that carried it failed, and every later
/// read fails too.
bool ResponseTooDeep(mailstream* stream);

/// Bytes read from the transport since the last StartResponseBudget.
uint64_t ResponseBytesRead(mailstream* stream);

}  // namespace mailhook::imap
