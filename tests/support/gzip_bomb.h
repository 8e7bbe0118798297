#pragma once
/// GzipBomb: a gzip stream that inflates to far more than it weighs, for the
/// tests that check a client never inflates a response it did not ask for.

#include <cstddef>
#include <string>

namespace mailhook::testsupport {

/// `size` zero bytes, gzip-compressed at about 1000:1 (1 GiB -> ~1 MB).
std::string GzipBomb(size_t size);

}  // namespace mailhook::testsupport
