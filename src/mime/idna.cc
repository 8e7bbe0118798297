#include "mime/idna.h"

#include <dlfcn.h>
#include <idn2.h>

#include <memory>
#include <mutex>
#include <optional>
#include <utility>

namespace mailhook::mime {
namespace {

// The three functions called, with idn2.h's own signatures (decltype), so a
// mismatch does not compile.
struct Idn2 {
  void* handle = nullptr;
  decltype(&::idn2_to_ascii_8z) to_ascii_8z = nullptr;
  decltype(&::idn2_strerror) strerror = nullptr;
  decltype(&::idn2_free) free = nullptr;
};

util::Error Unloadable(const std::string& detail) {
  return util::Error("mail.libidn2", util::RetryClass::kNeedsOperator,
                     "a mail address with a non-ASCII domain needs libidn2, which cannot be loaded (" + detail +
                         "); install it (Debian: apt-get install libidn2-0) and restart mailhook");
}

util::Result<Idn2> Load(const char* soname) {
  void* handle = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* text = dlerror();
    return Unloadable(text != nullptr ? text : soname);
  }
  Idn2 out;
  out.handle = handle;
  out.to_ascii_8z = reinterpret_cast<decltype(out.to_ascii_8z)>(dlsym(handle, "idn2_to_ascii_8z"));
  out.strerror = reinterpret_cast<decltype(out.strerror)>(dlsym(handle, "idn2_strerror"));
  out.free = reinterpret_cast<decltype(out.free)>(dlsym(handle, "idn2_free"));
  if (out.to_ascii_8z == nullptr || out.strerror == nullptr || out.free == nullptr) {
    dlclose(handle);
    return Unloadable(std::string(soname) + " lacks idn2_to_ascii_8z, idn2_strerror or idn2_free: too old a libidn2");
  }
  return out;
}

util::Result<std::string> Convert(const Idn2& idn2, std::string_view domain) {
  char* out = nullptr;
  const int rc = idn2.to_ascii_8z(std::string(domain).c_str(), &out, IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL);
  if (rc != IDN2_OK) {
    return util::Error("mail.bad_idn", util::RetryClass::kNeedsOperator, std::string("IDNA: ") + idn2.strerror(rc));
  }
  // Freed by libidn2's own free, even when the copy throws.
  const std::unique_ptr<char, decltype(idn2.free)> owned(out, idn2.free);
  return std::string(owned.get());
}

}  // namespace

util::Result<std::string> DomainToAscii(std::string_view domain) {
  // Never destroyed nor closed: a late caller during exit still finds it.
  static std::once_flag once;
  static auto* loaded = new std::optional<util::Result<Idn2>>;
  std::call_once(once, [] { loaded->emplace(Load(kIdn2Soname)); });
  if (!**loaded) return (*loaded)->error();
  return Convert(***loaded, domain);
}

util::Result<std::string> DomainToAsciiWith(const char* soname, std::string_view domain) {
  auto idn2 = Load(soname);
  if (!idn2) return idn2.error();
  auto out = Convert(*idn2, domain);
  dlclose(idn2->handle);
  return out;
}

}  // namespace mailhook::mime
