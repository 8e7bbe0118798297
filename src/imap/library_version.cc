#include "imap/library_version.h"

#include <libetpan/libetpan.h>
#include <openssl/crypto.h>

namespace mailhook::imap {

std::string LibraryVersion() {
  return "libetpan " + std::to_string(libetpan_get_version_major()) + "." +
         std::to_string(libetpan_get_version_minor());
}

std::string TlsLibraryVersion() { return OpenSSL_version(OPENSSL_VERSION); }

}  // namespace mailhook::imap
