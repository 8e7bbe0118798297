#include "util/cancel_token.h"

#include <poll.h>

#include <atomic>
#include <stdexcept>

#include <gtest/gtest.h>

namespace mailhook::util {
namespace {

bool Readable(int fd) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, 0) > 0;
}

TEST(CancelTokenTest, FiringMakesTheFdReadableAndStays) {
  CancelToken token;
  EXPECT_FALSE(token.cancelled());
  EXPECT_FALSE(Readable(token.fd()));
  token.Cancel();
  token.Cancel();  // idempotent
  EXPECT_TRUE(token.cancelled());
  EXPECT_TRUE(Readable(token.fd()));
  EXPECT_TRUE(Readable(token.fd()));  // level-triggered: a waiter does not consume it
  token.Reset();
  EXPECT_FALSE(token.cancelled());
  EXPECT_FALSE(Readable(token.fd()));
}

TEST(CancelTokenTest, RegistrationRunsOnFireAndAtOnceWhenAlreadyFired) {
  CancelToken token;
  int runs = 0;
  {
    CancelToken::Registration r(token, [&] { ++runs; });
    EXPECT_EQ(runs, 0);
    token.Cancel();
    EXPECT_EQ(runs, 1);
    token.Cancel();
    EXPECT_EQ(runs, 1);  // once
  }
  // Fired before the registration: the caller learns it before it waits.
  CancelToken::Registration late(token, [&] { ++runs; });
  EXPECT_EQ(runs, 2);
}

TEST(CancelTokenTest, NothingStaysRegisteredAfterAnException) {
  CancelToken token;
  std::atomic<int> runs{0};
  try {
    CancelToken::Registration r(token, [&] { ++runs; });
    throw std::runtime_error("the guarded call threw");
  } catch (const std::runtime_error&) {
  }
  token.Cancel();
  EXPECT_EQ(runs.load(), 0);
}

TEST(CancelTokenTest, NeverDoesNotFire) {
  EXPECT_FALSE(CancelToken::Never().cancelled());
  EXPECT_FALSE(Readable(CancelToken::Never().fd()));
}

}  // namespace
}  // namespace mailhook::util
