#pragma once
/// Assertions for the fuzz targets: a broken promise of our code (invalid
/// UTF-8, invalid JSON) aborts, which libFuzzer reports as a crash and saves
/// the input. Header-only; used by one fuzzing thread.

#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "mime/decode.h"

namespace mailhook::fuzz {

/// Aborts with `what` when `ok` is false.
inline void Check(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "fuzz check failed: %s\n", what);
  std::abort();
}

/// Aborts when `s`, which our API promises to be UTF-8, is not.
inline void CheckUtf8(std::string_view s, const char* what) { Check(mime::IsValidUtf8(s), what); }

}  // namespace mailhook::fuzz
