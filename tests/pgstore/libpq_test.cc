// src/pgstore/libpq.h: libpq is loaded when the PostgreSQL store is first
// used, not linked (the daemon's NEEDED entries are checked by fence.no_libpq).
#include "pgstore/libpq.h"

#include <gtest/gtest.h>

namespace mailhook::pgstore {
namespace {

TEST(LibpqTest, LoadsEveryFunctionMailhookCallsFromTheInstalledLibpq) {
  ASSERT_TRUE(LoadLibpq()) << LoadLibpq().error().message();
  const Libpq& pq = Pq();
#define MAILHOOK_EXPECT_LOADED(name) EXPECT_NE(pq.name, nullptr) << #name;
  MAILHOOK_LIBPQ_FUNCTIONS(MAILHOOK_EXPECT_LOADED)
#undef MAILHOOK_EXPECT_LOADED
  EXPECT_EQ(pq.PQstatus(nullptr), CONNECTION_BAD);  // the real function answers
}

TEST(LibpqTest, AMissingLibpqIsAnErrorNamingThePackageAndTheWayAround) {
  auto loaded = LoadLibpqFrom("libpq-mailhook-test-absent.so.5");
  ASSERT_FALSE(loaded);
  EXPECT_EQ(loaded.error().code(), "store.pg.libpq");
  EXPECT_EQ(loaded.error().retry(), util::RetryClass::kNeedsOperator);
  const std::string& message = loaded.error().message();
  EXPECT_NE(message.find("libpq-mailhook-test-absent.so.5"), std::string::npos) << message;
  EXPECT_NE(message.find("apt-get install libpq5"), std::string::npos) << message;
  EXPECT_NE(message.find("remove store.url to use SQLite"), std::string::npos) << message;
}

TEST(LibpqTest, ALibraryWithoutLibpqsFunctionsIsRefusedNamingTheMissingOne) {
  auto loaded = LoadLibpqFrom("libc.so.6");
  ASSERT_FALSE(loaded);
  EXPECT_NE(loaded.error().message().find("libc.so.6 has no PQbackendPID"), std::string::npos)
      << loaded.error().message();
}

}  // namespace
}  // namespace mailhook::pgstore
