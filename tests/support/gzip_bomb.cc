#include "gzip_bomb.h"

#include <zlib.h>

namespace mailhook::testsupport {

std::string GzipBomb(size_t size) {
  z_stream z{};
  // Run-length encoding: as small as the best level for zeros, and fast.
  // windowBits 15 + 16: a gzip header, as Content-Encoding: gzip wants.
  deflateInit2(&z, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 9, Z_RLE);
  std::string zeros(1 << 20, '\0');
  std::string out;
  char buf[64 * 1024];
  for (size_t done = 0; done < size; done += zeros.size()) {
    z.next_in = reinterpret_cast<Bytef*>(zeros.data());
    z.avail_in = static_cast<uInt>(zeros.size());
    int flush = done + zeros.size() >= size ? Z_FINISH : Z_NO_FLUSH;
    do {
      z.next_out = reinterpret_cast<Bytef*>(buf);
      z.avail_out = sizeof(buf);
      deflate(&z, flush);
      out.append(buf, sizeof(buf) - z.avail_out);
    } while (z.avail_out == 0);
  }
  deflateEnd(&z);
  return out;
}

}  // namespace mailhook::testsupport
