#pragma once
/// The name mailhook gives in EHLO (RFC 5321 §4.1.1.1): strict servers
/// refuse "localhost" (Postfix reject_non_fqdn_helo_hostname,
/// reject_invalid_helo_hostname), so the client says, in this order:
///  1. the host's fully qualified name, when it has one (a dot, valid LDH
///     syntax, not localhost/localdomain): what RFC 5321 asks for;
///  2. else the domain of the target's `from` address (A-label form): not
///     this host's name, but a real, resolvable domain in the syntax strict
///     servers check, and the one the server sees in MAIL FROM anyway;
///     RFC 5321 §4.1.4 forbids refusing mail because the EHLO name does not
///     match the client's address. Containers (hostname "a1b2c3", no dot)
///     land here;
///  3. else an address literal of the connection's local address
///     ("[127.0.0.1]", "[IPv6:::1]"), which RFC 5321 §4.1.3 allows a host
///     without a name and Postfix's checks accept; chosen by the client
///     after connecting (SmtpOptions::helo_name left empty).
/// Not a config key: the contract has none.

#include <string>
#include <string_view>

namespace mailhook::smtp {

/// The EHLO name for a target whose envelope sender is `envelope_from` (a
/// bare address, domain in A-labels; may be ""): the host's FQDN, else that
/// domain, else "" (the client then uses the address literal).
std::string HeloName(std::string_view envelope_from);

/// The choice itself, for tests: `host_fqdn` when it is a usable FQDN, else
/// the domain of `envelope_from` when usable, else "".
std::string ChooseHeloName(std::string_view host_fqdn, std::string_view envelope_from);

/// This host's fully qualified name (gethostname, then getaddrinfo
/// AI_CANONNAME when that has no dot), looked up once per process; "" when
/// neither has a dot.
const std::string& HostFqdn();

/// "[192.0.2.1]" or "[IPv6:2001:db8::1]" for the local end of socket `fd`;
/// "" when it cannot be read.
std::string LocalAddressLiteral(int fd);

}  // namespace mailhook::smtp
