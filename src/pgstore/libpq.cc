#include "pgstore/libpq.h"

#include <dlfcn.h>

#include <cstdlib>
#include <mutex>
#include <optional>
#include <string>

namespace mailhook::pgstore {
namespace {

util::Error LibpqError(const char* soname, const std::string& detail) {
  return util::Error(util::ErrorKind::kStore, "store.pg.libpq", util::RetryClass::kNeedsOperator,
                     std::string("the PostgreSQL store needs libpq, which cannot be loaded (") + soname + ": " +
                         detail + "); install it (Debian: apt-get install libpq5), or remove store.url to use SQLite");
}

std::string LastDlError() {
  const char* text = dlerror();
  return text != nullptr ? text : "unknown error";
}

struct Loaded {
  std::once_flag once;
  std::optional<Libpq> functions;
  std::optional<util::Error> error;
};

Loaded& Process() {
  static Loaded loaded;
  return loaded;
}

}  // namespace

util::Result<Libpq> LoadLibpqFrom(const char* soname) {
  // RTLD_LOCAL: libpq's symbols stay out of the global scope. Never closed:
  // its connections and results live as long as the process may use them.
  void* handle = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) return LibpqError(soname, LastDlError());
  Libpq out;
#define MAILHOOK_LIBPQ_LOOKUP(name)                                                             \
  do {                                                                                          \
    out.name = reinterpret_cast<decltype(&::name)>(dlsym(handle, #name));                       \
    if (out.name == nullptr) return LibpqError(soname, "it has no " #name ": too old a libpq"); \
  } while (false);
  MAILHOOK_LIBPQ_FUNCTIONS(MAILHOOK_LIBPQ_LOOKUP)
#undef MAILHOOK_LIBPQ_LOOKUP
  return out;
}

util::Status LoadLibpq() {
  Loaded& loaded = Process();
  std::call_once(loaded.once, [&loaded] {
    auto functions = LoadLibpqFrom(kLibpqSoname);
    if (functions) {
      loaded.functions = *functions;
    } else {
      loaded.error = functions.error();
    }
  });
  if (loaded.error) return *loaded.error;
  return util::Ok();
}

const Libpq& Pq() {
  Loaded& loaded = Process();
  if (!loaded.functions) std::abort();  // a bug: called before LoadLibpq succeeded
  return *loaded.functions;
}

}  // namespace mailhook::pgstore
