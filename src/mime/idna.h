#pragma once
/// IDNA A-labels for the domains of outgoing mail, from libidn2 loaded when
/// first needed rather than linked.
///
/// Linked, libidn2 and its libunistring cost every daemon ~200 KiB resident
/// at start (bench/README.md, "Memory again"), though only a mail action to a
/// non-ASCII domain uses them. So the first such domain dlopens libidn2; a
/// daemon that never meets one never loads it.

#include <string>
#include <string_view>

#include "util/result.h"

namespace mailhook::mime {

/// The shared library loaded (its SONAME; Debian's libidn2-0).
inline constexpr const char* kIdn2Soname = "libidn2.so.0";

/// `domain` (UTF-8) in IDNA A-labels: IDNA2008 with UTS #46 non-transitional
/// mapping, NFC first. Errors (kNeedsOperator): "mail.bad_idn" with libidn2's
/// reason when the domain is not a valid IDN; "mail.libidn2" when the library
/// cannot be loaded, naming the cause and the package to install. The library
/// is loaded once per process (thread-safe); later calls reuse the outcome.
util::Result<std::string> DomainToAscii(std::string_view domain);

/// The same with the library `soname`, loaded for this call and not kept:
/// for tests of the failure.
util::Result<std::string> DomainToAsciiWith(const char* soname, std::string_view domain);

}  // namespace mailhook::mime
