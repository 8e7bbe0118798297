// The liveness round trips of a Session (account liveness_interval): the
// answer to DONE and NOOP is awaited only answer_deadline, so a black-holed
// session fails long before `timeout`; and an EXISTS that comes with DONE's
// answer is reported, so a liveness round trip that ends a quiet IDLE never
// hides new mail. Against the scripted server (a silent answer is an empty
// reply); the black hole end to end is
// tests/integration/black_holed_session_is_replaced_test.cc.

#include <gtest/gtest.h>

#include <chrono>

#include "config/config.h"
#include "fake_imap_server.h"
#include "imap/session.h"
#include "tcp_proxy.h"

namespace mailhook::imap {
namespace {

using fake::FakeImapServer;
using std::chrono::milliseconds;
using SteadyClock = std::chrono::steady_clock;

std::string NoUid(const std::string&) { return ""; }

// A session with a 3 s timeout and a 200 ms answer deadline.
std::unique_ptr<Session> OpenShortDeadline(const FakeImapServer& server) {
  SessionOptions o = fake::FakeSessionOptions(server.port());
  o.answer_deadline = milliseconds(200);
  auto s = Session::Open(o);
  EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error().message());
  return s.ok() ? std::move(*s) : nullptr;
}

TEST(SessionLivenessTest, AnUnansweredDoneFailsAfterTheAnswerDeadlineNotTheTimeout) {
  FakeImapServer server(NoUid, "* OK [CAPABILITY IMAP4rev1 IDLE] fake\r\n", "IMAP4rev1 IDLE",
                        {{"IDLE", "+ idling\r\n"}, {"DONE", ""}});
  auto s = OpenShortDeadline(server);
  ASSERT_TRUE(s);
  ASSERT_TRUE(s->Select("INBOX").ok());
  const auto start = SteadyClock::now();
  auto wake = s->Idle(milliseconds(50));
  const auto took = SteadyClock::now() - start;
  ASSERT_FALSE(wake.ok());
  EXPECT_EQ(wake.error().code(), "imap.idle_done");
  EXPECT_LT(took, milliseconds(2000)) << "the 3 s timeout was waited instead of the 200 ms deadline";
  EXPECT_GE(took, milliseconds(150));
}

TEST(SessionLivenessTest, AnUnansweredIdleFailsAfterTheAnswerDeadline) {
  // DONE was answered, then the hole opened: the next IDLE's continuation
  // never comes. Part of the same round trip, so the same deadline.
  FakeImapServer server(NoUid, "* OK [CAPABILITY IMAP4rev1 IDLE] fake\r\n", "IMAP4rev1 IDLE", {{"IDLE", ""}});
  auto s = OpenShortDeadline(server);
  ASSERT_TRUE(s);
  ASSERT_TRUE(s->Select("INBOX").ok());
  const auto start = SteadyClock::now();
  auto wake = s->Idle(milliseconds(50));
  ASSERT_FALSE(wake.ok());
  EXPECT_EQ(wake.error().code(), "imap.idle");
  EXPECT_LT(SteadyClock::now() - start, milliseconds(2000));
}

TEST(SessionLivenessTest, AnUnansweredNoopFailsAfterTheAnswerDeadline) {
  FakeImapServer server(NoUid, "* OK [CAPABILITY IMAP4rev1 IDLE] fake\r\n", "IMAP4rev1 IDLE", {{"NOOP", ""}});
  auto s = OpenShortDeadline(server);
  ASSERT_TRUE(s);
  const auto start = SteadyClock::now();
  util::Status noop = s->Noop();
  ASSERT_FALSE(noop.ok());
  EXPECT_EQ(noop.error().code(), "imap.noop");
  EXPECT_LT(SteadyClock::now() - start, milliseconds(2000));
}

TEST(SessionLivenessTest, AnUnansweredDoneOnTheNotifyConnectionFailsAfterTheAnswerDeadline) {
  FakeImapServer server(NoUid, "* OK [CAPABILITY IMAP4rev1 IDLE] fake\r\n", "IMAP4rev1 IDLE NOTIFY",
                        {{"NOTIFY", "$TAG OK\r\n"}, {"IDLE", "+ idling\r\n"}, {"DONE", ""}});
  auto s = OpenShortDeadline(server);
  ASSERT_TRUE(s);
  ASSERT_TRUE(s->NotifySet({"INBOX"}).ok());
  std::vector<FolderEvent> events;
  const auto start = SteadyClock::now();
  auto wake = s->IdleForEvents(milliseconds(50), -1, events);
  ASSERT_FALSE(wake.ok());
  EXPECT_EQ(wake.error().code(), "imap.idle_done");
  EXPECT_LT(SteadyClock::now() - start, milliseconds(2000));
}

TEST(SessionLivenessTest, AnsweredRoundTripsKeepTheSessionAndTheLongTimeoutAfterwards) {
  // After DONE and NOOP the timeout is `timeout` again: a UID SEARCH answered
  // after 600 ms (past the 200 ms deadline, within the 3 s timeout) succeeds.
  FakeImapServer server(
      [](const std::string&) {
        std::this_thread::sleep_for(milliseconds(600));
        return std::string("* SEARCH 5\r\n");
      },
      "* OK [CAPABILITY IMAP4rev1 IDLE] fake\r\n", "IMAP4rev1 IDLE", {{"IDLE", "+ idling\r\n"}});
  auto s = OpenShortDeadline(server);
  ASSERT_TRUE(s);
  ASSERT_TRUE(s->Select("INBOX").ok());
  auto wake = s->Idle(milliseconds(20));
  ASSERT_TRUE(wake.ok()) << wake.error().message();
  EXPECT_EQ(*wake, IdleWake::kTimeout);
  ASSERT_TRUE(s->Noop().ok());
  auto uids = s->SearchUidsFrom(1);
  ASSERT_TRUE(uids.ok()) << uids.error().message();
  EXPECT_EQ(*uids, std::vector<uint32_t>{5});
}

TEST(SessionLivenessTest, AnExistsThatComesWithDonesAnswerIsActivity) {
  // The wait timed out (a liveness round trip), then the server's EXISTS
  // came just before DONE's answer: libetpan parses it as part of that
  // answer, so only the selection info tells.
  FakeImapServer server(NoUid, "* OK [CAPABILITY IMAP4rev1 IDLE] fake\r\n", "IMAP4rev1 IDLE",
                        {{"IDLE", "+ idling\r\n"}, {"DONE", "* 4 EXISTS\r\n$TAG OK idle done\r\n"}});
  auto s = OpenShortDeadline(server);
  ASSERT_TRUE(s);
  ASSERT_TRUE(s->Select("INBOX").ok());  // 3 EXISTS
  auto wake = s->Idle(milliseconds(20));
  ASSERT_TRUE(wake.ok()) << wake.error().message();
  EXPECT_EQ(*wake, IdleWake::kActivity);
}

// A server without IDLE is polled with NOOP each wait (the liveness
// interval, a minute): only news in NOOP's answer is activity, else every
// folder of such a server would be synced each minute.
TEST(SessionLivenessTest, WithoutIdleANoopIsActivityOnlyWhenItBringsNews) {
  FakeImapServer quiet(NoUid, "* OK [CAPABILITY IMAP4rev1] fake\r\n", "IMAP4rev1", {});
  auto s = OpenShortDeadline(quiet);
  ASSERT_TRUE(s);
  ASSERT_TRUE(s->Select("INBOX").ok());
  auto wake = s->Idle(milliseconds(20));
  ASSERT_TRUE(wake.ok()) << wake.error().message();
  EXPECT_EQ(*wake, IdleWake::kTimeout);

  FakeImapServer news(NoUid, "* OK [CAPABILITY IMAP4rev1] fake\r\n", "IMAP4rev1",
                      {{"NOOP", "* 4 EXISTS\r\n$TAG OK noop\r\n"}});
  auto t = OpenShortDeadline(news);
  ASSERT_TRUE(t);
  ASSERT_TRUE(t->Select("INBOX").ok());  // 3 EXISTS
  wake = t->Idle(milliseconds(20));
  ASSERT_TRUE(wake.ok()) << wake.error().message();
  EXPECT_EQ(*wake, IdleWake::kActivity);

  FakeImapServer expunge(NoUid, "* OK [CAPABILITY IMAP4rev1] fake\r\n", "IMAP4rev1",
                         {{"NOOP", "* 2 EXPUNGE\r\n* 3 EXISTS\r\n$TAG OK noop\r\n"}});
  auto u = OpenShortDeadline(expunge);
  ASSERT_TRUE(u);
  ASSERT_TRUE(u->Select("INBOX").ok());  // 3 EXISTS
  wake = u->Idle(milliseconds(20));
  ASSERT_TRUE(wake.ok()) << wake.error().message();
  EXPECT_EQ(*wake, IdleWake::kActivity) << "one expunged and one new: the count alone does not tell";
}

// The same through the test proxy (tests/support/tcp_proxy.h), whose black
// hole and reset the integration tests use against Dovecot.
TEST(SessionLivenessTest, ANoopIntoAProxysBlackHoleFailsAfterTheDeadlineAndAResetAtOnce) {
  for (const bool black_hole : {true, false}) {
    FakeImapServer server(NoUid);
    testsupport::TcpProxy proxy(server.port());
    SessionOptions o = fake::FakeSessionOptions(proxy.port());
    o.answer_deadline = milliseconds(300);
    auto s = Session::Open(o);
    ASSERT_TRUE(s.ok()) << s.error().message();
    ASSERT_TRUE((*s)->Noop().ok()) << "forwarded";
    EXPECT_EQ(proxy.forwarding(), 1);
    EXPECT_EQ(black_hole ? proxy.BlackHole() : proxy.Reset(), 1);
    const auto start = SteadyClock::now();
    util::Status noop = (*s)->Noop();
    const auto took = SteadyClock::now() - start;
    ASSERT_FALSE(noop.ok()) << black_hole;
    EXPECT_EQ(noop.error().code(), "imap.noop");
    if (black_hole) {
      EXPECT_GE(took, milliseconds(250)) << "the socket stayed open: only the deadline ends the wait";
      EXPECT_GT(proxy.swallowed(), 0u) << "the NOOP went into the hole";
    } else {
      EXPECT_LT(took, milliseconds(250)) << "a reset is seen at once";
      EXPECT_EQ(proxy.swallowed(), 0u);
    }
    EXPECT_LT(took, milliseconds(2000));
    EXPECT_EQ(proxy.accepted(), 1);
  }
}

TEST(SessionLivenessTest, TheAccountsAnswerDeadlineIsTheShorterOfTimeoutAndThirtySeconds) {
  config::Account a;
  EXPECT_EQ(SessionOptions::FromAccount(a, util::Secret("x"), -1).answer_deadline, config::kLivenessDeadline);
  a.timeout = std::chrono::seconds(10);
  EXPECT_EQ(SessionOptions::FromAccount(a, util::Secret("x"), -1).answer_deadline, std::chrono::seconds(10));
  a.liveness_interval = config::Duration(0);  // off: DONE and NOOP wait `timeout` like any command
  EXPECT_EQ(SessionOptions::FromAccount(a, util::Secret("x"), -1).answer_deadline, milliseconds(0));
}

}  // namespace
}  // namespace mailhook::imap
