#pragma once
/// The name mailhook gives in EHLO (RFC 5321 §4.1.1.1): strict servers
/// refuse "localhost" (Postfix reject_non_fqdn_helo_hostname,
/// reject_invalid_helo_hostname), so the client says, as RFC 5321 §4.1.1.1
/// asks:
///  1. the host's fully qualified name, when it has one (a dot, valid LDH
///     syntax, not localhost/localdomain);
///  2. else an address literal of the connection's local address
///     ("[172.17.0.2]", "[IPv6:::1]"): "the client SHOULD send an address
///     literal" when it has no meaningful name, as in a container (hostname
///     "a1b2c3", no dot); Postfix's checks accept it. Chosen by the client
///     after connecting (SmtpOptions::helo_name left empty).
/// Not the domain of `from`: that is not this host's name, and servers that
/// check "EHLO is my own domain" refuse it. Not a config key: the contract
/// has none.

#include <string>
#include <string_view>

namespace mailhook::smtp {

/// The EHLO name: the host's FQDN, else "" (the client then uses the
/// address literal).
std::string HeloName();

/// The choice itself, for tests: `host_fqdn` when it is a usable FQDN, else "".
std::string ChooseHeloName(std::string_view host_fqdn);

/// This host's fully qualified name (gethostname, then getaddrinfo
/// AI_CANONNAME when that has no dot), looked up once per process; "" when
/// neither has a dot.
const std::string& HostFqdn();

/// "[192.0.2.1]" or "[IPv6:2001:db8::1]" for the local end of socket `fd`;
/// "" when it cannot be read.
std::string LocalAddressLiteral(int fd);

}  // namespace mailhook::smtp
