#pragma once
/// The libraries src/imap is built on, for `mailhook version`: callers learn
/// them without including (or linking) libetpan or OpenSSL themselves.

#include <string>

namespace mailhook::imap {

/// "libetpan 1.9".
std::string LibraryVersion();
/// OpenSSL's own version line ("OpenSSL 3.0.11 19 Sep 2023"), the TLS under
/// every IMAP connection.
std::string TlsLibraryVersion();

}  // namespace mailhook::imap
