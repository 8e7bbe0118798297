// Session's account-level calls (STATUS, LIST, NOTIFY SET, IdleForEvents)
// against a scripted server: what is sent, every pushed line becoming an
// event, and hostile answers ending the session with an error. The real
// Dovecot: tests/integration/notify_reports_folder_events_test.cc.

#include <sys/eventfd.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "fake_imap_server.h"
#include "imap/notify_events.h"
#include "imap/session.h"

namespace mailhook::imap {
namespace {

using fake::FakeImapServer;
using Kind = FolderEvent::Kind;
using namespace std::chrono_literals;

const char* kGreeting = "* OK [CAPABILITY IMAP4rev1 IDLE] fake\r\n";
const char* kCaps = "IMAP4rev1 IDLE NOTIFY LITERAL+";

std::unique_ptr<FakeImapServer> Server(std::map<std::string, std::string> replies, const char* caps = kCaps) {
  return std::make_unique<FakeImapServer>([](const std::string&) { return std::string(); }, kGreeting, caps,
                                          std::move(replies));
}

std::unique_ptr<Session> Open(const FakeImapServer& server, int stop_fd = -1) {
  SessionOptions o = fake::FakeSessionOptions(server.port());
  o.stop_fd = stop_fd;
  auto s = Session::Open(o);
  EXPECT_TRUE(s.ok()) << s.error().message();
  return s.ok() ? std::move(*s) : nullptr;
}

struct EventFd {
  int fd = eventfd(0, EFD_CLOEXEC);
  ~EventFd() { close(fd); }
  void Fire() const {
    uint64_t one = 1;
    ASSERT_EQ(write(fd, &one, sizeof one), static_cast<ssize_t>(sizeof one));
  }
};

TEST(SessionNotifyTest, StatusReadsTheFolderAndIgnoresOthers) {
  auto server = Server({{"STATUS",
                         "* STATUS Other (MESSAGES 9 UIDNEXT 99)\r\n* STATUS \"a \\\"b\\\"\" (MESSAGES 2 UIDNEXT 5 "
                         "UIDVALIDITY 7)\r\n$TAG OK done\r\n"}});
  auto s = Open(*server);
  ASSERT_TRUE(s);
  auto st = s->Status("a \"b\"");
  ASSERT_TRUE(st.ok()) << st.error().message();
  EXPECT_EQ(st->messages, 2u);
  EXPECT_EQ(st->uidnext, 5u);
  EXPECT_EQ(st->uidvalidity, 7u);
  s.reset();
  server->Join();
  EXPECT_NE(server->transcript().find("STATUS \"a \\\"b\\\"\" (UIDNEXT UIDVALIDITY MESSAGES)"), std::string::npos)
      << server->transcript();
}

TEST(SessionNotifyTest, StatusOfAMissingFolderNeedsTheOperator) {
  auto server = Server({{"STATUS", "$TAG NO Mailbox doesn't exist: Nope\r\n"}});
  auto s = Open(*server);
  ASSERT_TRUE(s);
  auto st = s->Status("Nope");
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().retry(), util::RetryClass::kNeedsOperator);
  EXPECT_NE(st.error().message().find("\"Nope\""), std::string::npos) << st.error().message();
  EXPECT_NE(st.error().message().find("doesn't exist"), std::string::npos);
}

TEST(SessionNotifyTest, StatusOnABrokenSessionIsBackoff) {
  auto server = Server({{"STATUS", "CLOSE"}});
  auto s = Open(*server);
  ASSERT_TRUE(s);
  auto st = s->Status("INBOX");
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().retry(), util::RetryClass::kBackoff);
}

TEST(SessionNotifyTest, NonAsciiNamesGoAsLiteralPlusOrAreRefused) {
  auto server = Server({{"STATUS", "* STATUS {6}\r\nÄpfel (UIDNEXT 3)\r\n$TAG OK done\r\n"}});
  auto s = Open(*server);
  ASSERT_TRUE(s);
  auto st = s->Status("Äpfel");
  ASSERT_TRUE(st.ok()) << st.error().message();
  EXPECT_EQ(st->uidnext, 3u);

  auto plain = Server({}, "IMAP4rev1 IDLE NOTIFY");
  auto p = Open(*plain);
  ASSERT_TRUE(p);
  auto refused = p->Status("Äpfel");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().retry(), util::RetryClass::kNeedsOperator);
  EXPECT_NE(refused.error().message().find("modified UTF-7"), std::string::npos);
}

TEST(SessionNotifyTest, ListFoldersReadsEveryNameForm) {
  auto server = Server({{"LIST",
                         "* LIST (\\HasNoChildren) \".\" INBOX\r\n"
                         "* LIST (\\HasNoChildren) \".\" \"Sent Items\"\r\n"
                         "* LIST (\\HasNoChildren) \".\" {9}\r\nx (y) \"z\"\r\n"
                         "* LIST (\\Noselect \\HasChildren) \".\" Parent\r\n"
                         "* LIST (\\NonExistent) \".\" Gone\r\n"
                         "* LIST () \".\" &AMQ-pfel\r\n"
                         "* LIST () \".\" \"Sent Items\"\r\n"
                         "$TAG OK done\r\n"}});
  auto s = Open(*server);
  ASSERT_TRUE(s);
  auto names = s->ListFolders();
  ASSERT_TRUE(names.ok()) << names.error().message();
  EXPECT_EQ(*names, (std::vector<std::string>{"INBOX", "Sent Items", "x (y) \"z\"", "&AMQ-pfel"}));
}

TEST(SessionNotifyTest, NotifySetSendsTheRfc5465Command) {
  auto server = Server({{"NOTIFY", "$TAG OK NOTIFY completed\r\n"}});
  auto s = Open(*server);
  ASSERT_TRUE(s);
  ASSERT_TRUE(s->NotifySet({"INBOX", "Sent Items", "a\"b"}).ok());
  s.reset();
  server->Join();
  EXPECT_NE(server->transcript().find("NOTIFY SET (mailboxes (\"INBOX\" \"Sent Items\" \"a\\\"b\") (MessageNew "
                                      "MessageExpunge MailboxName)) (personal (MailboxName))"),
            std::string::npos)
      << server->transcript();
}

TEST(SessionNotifyTest, NotifyRefusedOrMissingNeedsTheOperator) {
  auto server = Server({{"NOTIFY", "$TAG NO [BADEVENT] (MessageNew MessageExpunge) not supported\r\n"}});
  auto s = Open(*server);
  ASSERT_TRUE(s);
  auto r = s->NotifySet({"INBOX"});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().retry(), util::RetryClass::kNeedsOperator);
  EXPECT_NE(r.error().message().find("BADEVENT"), std::string::npos) << r.error().message();
  EXPECT_NE(r.error().message().find("notify: off"), std::string::npos);

  auto bad = Server({{"NOTIFY", "$TAG BAD syntax\r\n"}});
  auto b = Open(*bad);
  ASSERT_TRUE(b);
  auto rb = b->NotifySet({"INBOX"});
  ASSERT_FALSE(rb.ok());
  EXPECT_EQ(rb.error().retry(), util::RetryClass::kNeedsOperator);

  auto none = Server({}, "IMAP4rev1 IDLE");
  auto n = Open(*none);
  ASSERT_TRUE(n);
  auto rn = n->NotifySet({"INBOX"});
  ASSERT_FALSE(rn.ok());
  EXPECT_EQ(rn.error().retry(), util::RetryClass::kNeedsOperator);
  EXPECT_NE(rn.error().message().find("does not offer NOTIFY"), std::string::npos);
}

TEST(SessionNotifyTest, OneWakeReturnsEveryBufferedPushAndThoseBeforeDone) {
  // All of it arrives in one packet: after the first line the rest sits in
  // libetpan's buffer, which never wakes poll().
  auto server = Server({{"NOTIFY", "$TAG OK\r\n"},
                        {"IDLE",
                         "* STATUS Early (UIDNEXT 2)\r\n+ idling\r\n* STATUS A (MESSAGES 1 UIDNEXT 2)\r\n"
                         "* OK Still here\r\n* STATUS B (MESSAGES 3 UIDNEXT 4)\r\n* LIST () \"/\" {5}\r\nn e w\r\n"
                         "* LIST (\\NonExistent) \"/\" Old\r\n* LIST () \"/\" W3 (\"OLDNAME\" (W1))\r\n"},
                        {"DONE", "* STATUS Late (UIDNEXT 9)\r\n$TAG OK Idle completed\r\n"}});
  auto s = Open(*server);
  ASSERT_TRUE(s);
  ASSERT_TRUE(s->NotifySet({"A", "B"}).ok());
  std::vector<FolderEvent> events;
  auto wake = s->IdleForEvents(5s, -1, events);
  ASSERT_TRUE(wake.ok()) << wake.error().message();
  EXPECT_EQ(*wake, IdleWake::kActivity);
  std::vector<std::pair<Kind, std::string>> got;
  for (const auto& e : events) got.emplace_back(e.kind, e.folder);
  EXPECT_EQ(got, (std::vector<std::pair<Kind, std::string>>{{Kind::kChanged, "Early"},
                                                            {Kind::kChanged, "A"},
                                                            {Kind::kChanged, "B"},
                                                            {Kind::kCreated, "n e w"},
                                                            {Kind::kDeleted, "Old"},
                                                            {Kind::kDeleted, "W1"},
                                                            {Kind::kCreated, "W3"},
                                                            {Kind::kChanged, "Late"}}));
  EXPECT_EQ(events[2].status->messages, 3u);
  // The session is still in step: another command works.
  ASSERT_TRUE(s->Noop().ok());
}

TEST(SessionNotifyTest, TimeoutWakeAndStopEndTheWait) {
  EventFd stop;
  auto server = Server({{"IDLE", "+ idling\r\n"}});
  auto s = Open(*server, stop.fd);
  ASSERT_TRUE(s);
  std::vector<FolderEvent> events;
  auto t0 = std::chrono::steady_clock::now();
  auto timeout = s->IdleForEvents(150ms, -1, events);
  ASSERT_TRUE(timeout.ok()) << timeout.error().message();
  EXPECT_EQ(*timeout, IdleWake::kTimeout);
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 150ms);

  EventFd wake;
  wake.Fire();
  auto woken = s->IdleForEvents(10s, wake.fd, events);
  ASSERT_TRUE(woken.ok()) << woken.error().message();
  EXPECT_EQ(*woken, IdleWake::kWoken);

  stop.Fire();
  auto stopped = s->IdleForEvents(10s, wake.fd, events);
  ASSERT_TRUE(stopped.ok()) << stopped.error().message();
  EXPECT_EQ(*stopped, IdleWake::kStopped);
  EXPECT_TRUE(events.empty());
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
}

TEST(SessionNotifyTest, PushesDuringOtherCommandsAreKeptForTheNextWait) {
  auto server = Server({{"NOTIFY", "$TAG OK\r\n"},
                        {"STATUS", "* STATUS B (UIDNEXT 8)\r\n* STATUS A (UIDNEXT 3)\r\n$TAG OK\r\n"},
                        {"LIST", "* LIST (\\NonExistent) \"/\" C\r\n* LIST () \"/\" A\r\n$TAG OK\r\n"}});
  auto s = Open(*server);
  ASSERT_TRUE(s);
  ASSERT_TRUE(s->NotifySet({"A", "B", "C"}).ok());
  ASSERT_TRUE(s->Status("A").ok());
  auto names = s->ListFolders();
  ASSERT_TRUE(names.ok());
  EXPECT_EQ(*names, std::vector<std::string>{"A"});
  std::vector<FolderEvent> events;
  auto wake = s->IdleForEvents(10s, -1, events);  // returns at once: no IDLE sent
  ASSERT_TRUE(wake.ok());
  EXPECT_EQ(*wake, IdleWake::kActivity);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].folder, "B");
  EXPECT_EQ(events[0].kind, Kind::kChanged);
  EXPECT_EQ(events[1].folder, "C");
  EXPECT_EQ(events[1].kind, Kind::kDeleted);
  s.reset();
  server->Join();
  EXPECT_EQ(server->transcript().find("IDLE"), std::string::npos);
}

TEST(SessionNotifyTest, HostilePushesEndTheSessionWithAnError) {
  struct Case {
    std::string idle;
    std::string code;
  };
  for (const Case& c : std::vector<Case>{
           {"+ idling\r\n* STATUS X (MESSAGES 99999999999)\r\n", "imap.unreadable_response"},
           {"+ idling\r\n* STATUS \"unterminated (MESSAGES 1)\r\n", "imap.unreadable_response"},
           {"+ idling\r\n* STATUS {100000}\r\n", "imap.response_too_large"},
           {"+ idling\r\n* LIST () \"/\" " + std::string(70000, 'x') + "\r\n", "imap.response_too_large"},
           {"+ idling\r\n$TAG BAD gone\r\n", "imap.idle"},
           {"$TAG NO no idle for you\r\n", "imap.idle"},
       }) {
    SCOPED_TRACE(c.idle.substr(0, 60));
    auto server = Server({{"IDLE", c.idle}});
    auto s = Open(*server);
    ASSERT_TRUE(s);
    std::vector<FolderEvent> events;
    auto wake = s->IdleForEvents(3s, -1, events);
    ASSERT_FALSE(wake.ok());
    EXPECT_EQ(wake.error().code(), c.code) << wake.error().message();
  }
}

TEST(SessionNotifyTest, EndlessPushesAreBoundedByTheEventCap) {
  std::string flood = "+ idling\r\n";
  for (size_t i = 0; i < notify::kMaxEventsPerWait + 5; ++i) flood += "* STATUS F (UIDNEXT 2)\r\n";
  auto server = Server({{"IDLE", flood}});
  auto s = Open(*server);
  ASSERT_TRUE(s);
  std::vector<FolderEvent> events;
  auto wake = s->IdleForEvents(3s, -1, events);
  ASSERT_FALSE(wake.ok());
  EXPECT_EQ(wake.error().code(), "imap.too_many_events");
  EXPECT_LE(events.size(), notify::kMaxEventsPerWait + 1);
}

}  // namespace
}  // namespace mailhook::imap
