// The EHLO name: the host's FQDN, else an address literal of the local end
// (src/smtp/helo_name.h).
#include "smtp/helo_name.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

namespace mailhook::smtp {
namespace {

TEST(HeloNameTest, HostFqdnElseNothing) {
  EXPECT_EQ(ChooseHeloName("mx1.example.net"), "mx1.example.net");
  EXPECT_EQ(ChooseHeloName("xn--bcher-kva.example"), "xn--bcher-kva.example");
  // A container's bare hostname has no dot: "" (the client sends the
  // address literal), never the from domain, which is not this host's name.
  EXPECT_EQ(ChooseHeloName("a1b2c3d4"), "");
  EXPECT_EQ(ChooseHeloName(""), "");
  // Names strict servers refuse, or that say nothing, are skipped.
  for (const char* bad : {"localhost", "localhost.localdomain", "vm.localdomain", "host.localhost", "-bad.example",
                          "bad-.example", "a..example", "under_score.example", "192.0.2.1", "trailing.example.",
                          "b\xc3\xbc"
                          "cher.example"}) {
    EXPECT_EQ(ChooseHeloName(bad), "") << bad;
  }
}

TEST(HeloNameTest, HostFqdnIsEmptyOrAUsableName) {
  const std::string& fqdn = HostFqdn();
  if (!fqdn.empty()) {
    EXPECT_EQ(ChooseHeloName(fqdn), fqdn);
  }
  EXPECT_EQ(&HostFqdn(), &fqdn);  // looked up once
}

TEST(HeloNameTest, AddressLiteralOfTheLocalEnd) {
  const int fd = socket(AF_INET, SOCK_DGRAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  EXPECT_EQ(LocalAddressLiteral(fd), "[127.0.0.1]");
  close(fd);
  const int fd6 = socket(AF_INET6, SOCK_DGRAM, 0);
  if (fd6 >= 0) {
    sockaddr_in6 addr6{};
    addr6.sin6_family = AF_INET6;
    addr6.sin6_addr = in6addr_loopback;
    if (bind(fd6, reinterpret_cast<sockaddr*>(&addr6), sizeof addr6) == 0) {
      EXPECT_EQ(LocalAddressLiteral(fd6), "[IPv6:::1]");
    }
    close(fd6);
  }
  EXPECT_EQ(LocalAddressLiteral(-1), "");
}

}  // namespace
}  // namespace mailhook::smtp
