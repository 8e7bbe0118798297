// src/mime/idna.h: libidn2 is loaded at the first non-ASCII domain, not linked
// (the daemon's libraries are checked by fence.no_libidn2).
#include "mime/idna.h"

#include <gtest/gtest.h>

#include <string>

namespace mailhook::mime {
namespace {

TEST(IdnaTest, ConvertsThroughTheInstalledLibidn2) {
  auto ascii = DomainToAscii("bücher.example");
  ASSERT_TRUE(ascii) << ascii.error().message();
  EXPECT_EQ(*ascii, "xn--bcher-kva.example");
  auto direct = DomainToAsciiWith(kIdn2Soname, "faß.de");  // non-transitional: ß stays
  ASSERT_TRUE(direct) << direct.error().message();
  EXPECT_EQ(*direct, "xn--fa-hia.de");
}

TEST(IdnaTest, AnInvalidDomainIsBadIdnWithLibidn2sReason) {
  auto ascii = DomainToAscii("-\xc3\xbc-.example");  // a label with a leading hyphen
  ASSERT_FALSE(ascii);
  EXPECT_EQ(ascii.error().code(), "mail.bad_idn");
  EXPECT_EQ(ascii.error().message().rfind("IDNA: ", 0), 0u) << ascii.error().message();
}

TEST(IdnaTest, AMissingLibidn2IsAnErrorNamingThePackage) {
  auto ascii = DomainToAsciiWith("libidn2-mailhook-test-absent.so.0", "bücher.example");
  ASSERT_FALSE(ascii);
  EXPECT_EQ(ascii.error().code(), "mail.libidn2");
  EXPECT_EQ(ascii.error().retry(), util::RetryClass::kNeedsOperator);
  const std::string& message = ascii.error().message();
  EXPECT_NE(message.find("libidn2-mailhook-test-absent.so.0"), std::string::npos) << message;
  EXPECT_NE(message.find("apt-get install libidn2-0"), std::string::npos) << message;
}

TEST(IdnaTest, ALibraryWithoutLibidn2sFunctionsIsRefused) {
  auto ascii = DomainToAsciiWith("libc.so.6", "bücher.example");
  ASSERT_FALSE(ascii);
  EXPECT_EQ(ascii.error().code(), "mail.libidn2");
  EXPECT_NE(ascii.error().message().find("libc.so.6 lacks idn2_to_ascii_8z"), std::string::npos)
      << ascii.error().message();
}

}  // namespace
}  // namespace mailhook::mime
