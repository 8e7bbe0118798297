#include "util/clock.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <gtest/gtest.h>

namespace mailhook::util {
namespace {

using std::chrono::milliseconds;

/// An eventfd, readable once Fire()d.
class Fd {
 public:
  Fd() : fd_(eventfd(0, EFD_CLOEXEC)) {}
  ~Fd() { close(fd_); }
  void Fire() {
    uint64_t one = 1;
    ASSERT_EQ(write(fd_, &one, sizeof one), static_cast<ssize_t>(sizeof one));
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

TEST(ClockTest, RealWaitEndsAtOnceWhenTheFdIsReadable) {
  Fd fd;
  fd.Fire();
  const auto start = Clock::Real().SteadyNow();
  EXPECT_TRUE(Clock::Real().WaitFd(fd.get(), milliseconds(60000)));
  EXPECT_LT(Clock::Real().SteadyNow() - start, milliseconds(10000));
}

TEST(ClockTest, RealWaitRunsOutWithoutAnFd) {
  const auto start = Clock::Real().SteadyNow();
  EXPECT_FALSE(Clock::Real().WaitFd(-1, milliseconds(20)));
  EXPECT_GE(Clock::Real().SteadyNow() - start, milliseconds(20));
}

TEST(ClockTest, ManualTimeMovesOnlyWhenToldOrWaitedOn) {
  ManualClock clock;
  const auto wall = clock.Now();
  const auto steady = clock.SteadyNow();
  EXPECT_EQ(clock.Now(), wall);
  clock.Advance(milliseconds(1500));
  EXPECT_EQ(clock.Now() - wall, milliseconds(1500));
  EXPECT_EQ(clock.SteadyNow() - steady, milliseconds(1500));
  // A wait of five minutes costs nothing and is recorded.
  EXPECT_FALSE(clock.WaitFd(-1, std::chrono::minutes(5)));
  EXPECT_EQ(clock.Now() - wall, milliseconds(1500) + std::chrono::minutes(5));
  ASSERT_EQ(clock.waits().size(), 1u);
  EXPECT_EQ(clock.waits()[0], std::chrono::minutes(5));
}

TEST(ClockTest, ManualWaitOnAReadableFdDoesNotMoveTime) {
  ManualClock clock;
  Fd fd;
  fd.Fire();
  const auto wall = clock.Now();
  EXPECT_TRUE(clock.WaitFd(fd.get(), milliseconds(1000)));
  EXPECT_EQ(clock.Now(), wall);
  EXPECT_TRUE(clock.waits().empty());
}

}  // namespace
}  // namespace mailhook::util
