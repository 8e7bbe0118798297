#include "http/listen_address.h"

#include <cerrno>
#include <cstring>

#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace mailhook::http {
namespace {

using util::Error;
using util::RetryClass;

Error BindError(const std::string& listen, const std::string& cause) {
  return Error("http.bind", RetryClass::kNeedsOperator,
               "cannot listen on " + listen + " (" + cause +
                   "): port in use? change http.listen, or check that the host is a local "
                   "address");
}

// One socket for one resolved address; -1 and errno set on failure.
int BindOne(const addrinfo& ai) {
  int fd = socket(ai.ai_family, ai.ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai.ai_protocol);
  if (fd < 0) return -1;
  int yes = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  if (ai.ai_family == AF_INET6) {
    // "[::]:8025" serves IPv4 too, as with cpp-httplib before.
    int no = 0;
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &no, sizeof no);
  }
  if (bind(fd, ai.ai_addr, ai.ai_addrlen) != 0 || listen(fd, SOMAXCONN) != 0) {
    int saved = errno;
    close(fd);
    errno = saved;
    return -1;
  }
  return fd;
}

int BoundPort(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return 0;
  if (ss.ss_family == AF_INET) return ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  if (ss.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
  return 0;
}

}  // namespace

util::Result<Listener> BindListener(const std::string& listen, const config::HostPort& address) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* list = nullptr;
  std::string port = std::to_string(address.port());
  int rc = getaddrinfo(address.host().c_str(), port.c_str(), &hints, &list);
  if (rc != 0) return BindError(listen, gai_strerror(rc));
  std::string cause = "no usable address";
  int fd = -1;
  for (addrinfo* ai = list; ai != nullptr && fd < 0; ai = ai->ai_next) {
    fd = BindOne(*ai);
    if (fd < 0) cause = std::strerror(errno);
  }
  freeaddrinfo(list);
  if (fd < 0) return BindError(listen, cause);
  return Listener{fd, BoundPort(fd)};
}

}  // namespace mailhook::http
