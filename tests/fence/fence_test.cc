// Every header of src/ but the private ones (all_public_headers.h is made by
// tests/fence/CMakeLists.txt), included together: none may bring a heavy
// library's headers into the including file.
#include <gtest/gtest.h>

#include <string>

#include "all_public_headers.h"

namespace {

#ifdef LIBETPAN_H
constexpr bool kEtpanVisible = true;
#else
constexpr bool kEtpanVisible = false;
#endif
#ifdef SQLITE3_H
constexpr bool kSqliteVisible = true;
#else
constexpr bool kSqliteVisible = false;
#endif
#ifdef CPPHTTPLIB_HTTPLIB_H
constexpr bool kHttplibVisible = true;
#else
constexpr bool kHttplibVisible = false;
#endif
#ifdef LIBPQ_FE_H
constexpr bool kLibpqVisible = true;
#else
constexpr bool kLibpqVisible = false;
#endif

TEST(FenceTest, PublicHeadersPullInNoHeavyLibrary) {
  EXPECT_FALSE(kEtpanVisible) << "a public header includes libetpan: move its use behind src/imap's private headers";
  EXPECT_FALSE(kSqliteVisible) << "a public header includes sqlite3.h: keep it in src/store's .cc files";
  EXPECT_FALSE(kHttplibVisible) << "a public header includes httplib.h: only the tests use cpp-httplib";
  EXPECT_FALSE(kLibpqVisible) << "a public header includes libpq-fe.h: keep it in src/pgstore's .cc files";
}

// The daemon reports the libraries' versions by asking each area.
TEST(FenceTest, VersionReportNamesEveryLibrary) {
  const std::string report = mailhook::daemon::VersionReport("0.0.0-test");
  for (const char* name :
       {"mailhook 0.0.0-test\n", "\nlibetpan 1.", "\nOpenSSL 3.", "\nSQLite 3.", "\nspdlog ", "\nnlohmann_json 3."}) {
    EXPECT_NE(report.find(name), std::string::npos) << name << " missing from:\n" << report;
  }
}

}  // namespace
