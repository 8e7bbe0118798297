#include "pgstore/libpq.h"

#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <string>

namespace mailhook::pgstore {
namespace {

// `detail` names the library: dlerror()'s text begins with it.
util::Error LibpqError(const std::string& detail) {
  return util::Error(util::ErrorKind::kStore, "store.pg.libpq", util::RetryClass::kNeedsOperator,
                     "the PostgreSQL store needs libpq, which cannot be loaded (" + detail +
                         "); install it (Debian: apt-get install libpq5), or remove store.url to use SQLite");
}

std::string LastDlError() {
  const char* text = dlerror();
  return text != nullptr ? text : "unknown error";
}

struct Loaded {
  std::once_flag once;
  std::optional<util::Result<Libpq>> outcome;  // set once, by the first LoadLibpq
};

// Never destroyed: a connection closed by a late destructor still finds libpq.
Loaded& Process() {
  static Loaded& loaded = *new Loaded;
  return loaded;
}

// A library without one of the functions: closed again, with what it lacks.
util::Error Unusable(void* handle, const char* soname, const char* function) {
  dlclose(handle);
  return LibpqError(std::string(soname) + " has no " + function + ": not libpq, or too old a one");
}

}  // namespace

util::Result<Libpq> LoadLibpqFrom(const char* soname) {
  // RTLD_LOCAL: libpq's symbols stay out of the global scope. Never closed
  // once usable: its connections and results live as long as the process.
  void* handle = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) return LibpqError(LastDlError());
  Libpq out;
#define MAILHOOK_LIBPQ_LOOKUP(name)                                       \
  do {                                                                    \
    out.name = reinterpret_cast<decltype(&::name)>(dlsym(handle, #name)); \
    if (out.name == nullptr) return Unusable(handle, soname, #name);      \
  } while (false);
  MAILHOOK_LIBPQ_FUNCTIONS(MAILHOOK_LIBPQ_LOOKUP)
#undef MAILHOOK_LIBPQ_LOOKUP
  return out;
}

util::Status LoadLibpq() {
  Loaded& loaded = Process();
  std::call_once(loaded.once, [&loaded] { loaded.outcome.emplace(LoadLibpqFrom(kLibpqSoname)); });
  if (!*loaded.outcome) return loaded.outcome->error();
  return util::Ok();
}

const Libpq& Pq() {
  Loaded& loaded = Process();
  if (!loaded.outcome || !*loaded.outcome) {
    std::fputs("mailhook: libpq called before LoadLibpq succeeded (a bug: report it)\n", stderr);
    std::abort();
  }
  return **loaded.outcome;
}

}  // namespace mailhook::pgstore
