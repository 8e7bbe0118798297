#include "config/host_port.h"

namespace mailhook::config {

util::Result<HostPort> HostPort::Parse(std::string_view text) {
  auto bad = [&text] {
    return util::Error("config.listen", util::RetryClass::kNeedsOperator,
                       "\"" + std::string(text) +
                           "\" is not HOST:PORT; write e.g. \"127.0.0.1:8025\", \"0.0.0.0:8025\" or "
                           "\"[::]:8025\"");
  };
  size_t colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == text.size()) return bad();
  std::string_view host = text.substr(0, colon);
  if (host.front() == '[') {
    if (host.size() < 3 || host.back() != ']') return bad();
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string_view::npos) {
    return bad();  // an unbracketed IPv6 literal is ambiguous
  }
  if (host.find_first_of("[] \t") != std::string_view::npos) return bad();
  std::string_view port = text.substr(colon + 1);
  if (port.size() > 5 || port.find_first_not_of("0123456789") != std::string_view::npos) return bad();
  uint32_t value = 0;
  for (char c : port) value = value * 10 + static_cast<uint32_t>(c - '0');
  if (value > 65535) return bad();
  return HostPort(std::string(host), static_cast<uint16_t>(value));
}

std::string HostPort::ToString() const {
  bool v6 = host_.find(':') != std::string::npos;
  return (v6 ? "[" + host_ + "]" : host_) + ":" + std::to_string(port_);
}

}  // namespace mailhook::config
