// Session's account-level calls against a real, private Dovecot (over
// implicit TLS): STATUS, LIST, NOTIFY SET and IdleForEvents turning pushes
// into folder events; and the test Dovecot without NOTIFY and with a session
// limit, as the account session manager's acceptance tests use it.

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <future>
#include <iostream>
#include <set>

#include <gtest/gtest.h>

#include "dovecot_server.h"
#include "imap/session.h"
#include "imap_client.h"

namespace mailhook::imap {
namespace {

using testsupport::DovecotOptions;
using testsupport::DovecotServer;
using testsupport::ImapClient;
using Kind = FolderEvent::Kind;
using namespace std::chrono_literals;

const char* kMessage = "From: a@example.com\r\nTo: b@example.com\r\nSubject: hi\r\n\r\nbody\r\n";

struct EventFd {
  int fd = eventfd(0, EFD_CLOEXEC);
  ~EventFd() { close(fd); }
  void Fire() const {
    uint64_t one = 1;
    ASSERT_EQ(write(fd, &one, sizeof one), static_cast<ssize_t>(sizeof one));
  }
};

class NotifyDovecotTest : public ::testing::Test {
 protected:
  void SetUp() override { Start(DovecotOptions{}); }
  void Start(const DovecotOptions& options) {
    auto s = server_.Start(options);
    ASSERT_TRUE(s.ok()) << s.error().message();
    client_ = std::make_unique<ImapClient>(server_);  // it keeps the port Start chose
  }
  SessionOptions Options(int stop_fd = -1) const {
    SessionOptions o;
    o.host = server_.host();
    o.port = static_cast<uint16_t>(server_.imaps_port());
    o.tls = config::TlsMode::kImplicit;
    o.ca_file = server_.ca_file();
    o.username = "alice";
    o.password = util::Secret(server_.password("alice"));
    o.timeout = 10s;
    o.stop_fd = stop_fd;
    return o;
  }
  std::unique_ptr<Session> Open(int stop_fd = -1) {
    auto s = Session::Open(Options(stop_fd));
    EXPECT_TRUE(s.ok()) << s.error().message();
    return s.ok() ? std::move(*s) : nullptr;
  }
  void Create(const std::string& folder) { ASSERT_TRUE(client_->CreateFolder("alice", folder).ok()) << folder; }
  void Append(const std::string& folder) { ASSERT_TRUE(client_->Append("alice", folder, kMessage).ok()) << folder; }

  /// Calls IdleForEvents until `done(events)` or 20 s; every wake must be
  /// activity or a refresh timeout.
  static std::vector<FolderEvent> EventsUntil(Session& s,
                                              const std::function<bool(const std::vector<FolderEvent>&)>& done) {
    std::vector<FolderEvent> events;
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    while (!done(events) && std::chrono::steady_clock::now() < deadline) {
      auto wake = s.IdleForEvents(2s, -1, events);
      EXPECT_TRUE(wake.ok()) << wake.error().message();
      if (!wake.ok()) break;
      EXPECT_TRUE(*wake == IdleWake::kActivity || *wake == IdleWake::kTimeout);
    }
    return events;
  }

  DovecotServer server_;
  std::unique_ptr<ImapClient> client_;
};

bool Has(const std::vector<FolderEvent>& events, Kind kind, const std::string& folder) {
  return std::any_of(events.begin(), events.end(),
                     [&](const FolderEvent& e) { return e.kind == kind && e.folder == folder; });
}

TEST_F(NotifyDovecotTest, ServerOffersNotifyAndStatusCountsAppends) {
  auto s = Open();
  ASSERT_TRUE(s);
  EXPECT_TRUE(s->HasCapability("NOTIFY"));
  Append("INBOX");
  Append("INBOX");
  auto st = s->Status("INBOX");
  ASSERT_TRUE(st.ok()) << st.error().message();
  EXPECT_EQ(st->messages, 2u);
  EXPECT_EQ(st->uidnext, 3u);
  auto theirs = client_->Status("alice", "INBOX");
  ASSERT_TRUE(theirs.ok());
  EXPECT_EQ(st->uidvalidity, theirs->uidvalidity);
  EXPECT_NE(st->uidvalidity, 0u);

  auto missing = s->Status("Nope");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().retry(), util::RetryClass::kNeedsOperator);
  EXPECT_NE(missing.error().message().find("\"Nope\""), std::string::npos) << missing.error().message();
  // A NO leaves the session usable.
  EXPECT_TRUE(s->Status("INBOX").ok());
}

TEST_F(NotifyDovecotTest, ListFoldersSeesACreatedFolder) {
  auto s = Open();
  ASSERT_TRUE(s);
  auto before = s->ListFolders();
  ASSERT_TRUE(before.ok()) << before.error().message();
  EXPECT_EQ(std::count(before->begin(), before->end(), "Work \"Stuff\""), 0);
  Create("Work \"Stuff\"");
  auto after = s->ListFolders();
  ASSERT_TRUE(after.ok()) << after.error().message();
  EXPECT_EQ(std::count(after->begin(), after->end(), "INBOX"), 1);
  EXPECT_EQ(std::count(after->begin(), after->end(), "Work \"Stuff\""), 1);
  auto st = s->Status("Work \"Stuff\"");
  ASSERT_TRUE(st.ok()) << st.error().message();
  EXPECT_EQ(st->messages, 0u);
}

TEST_F(NotifyDovecotTest, EveryFolderThatChangedTogetherIsReported) {
  for (const char* f : {"F1", "F 2", "F3"}) Create(f);
  auto s = Open();
  ASSERT_TRUE(s);
  ASSERT_TRUE(s->NotifySet({"F1", "F 2", "F3"}).ok());
  // Nothing pending: the first wait times out.
  std::vector<FolderEvent> none;
  auto quiet = s->IdleForEvents(300ms, -1, none);
  ASSERT_TRUE(quiet.ok()) << quiet.error().message();
  EXPECT_EQ(*quiet, IdleWake::kTimeout);
  EXPECT_TRUE(none.empty());

  // The window: two folders in one push (Dovecot debounces by 500 ms), where
  // libetpan's own parser would keep only the last STATUS. Two APPENDs at
  // once usually land in it; rounds repeat until one did, and say so.
  bool one_push = false;
  for (uint32_t round = 1; round <= 5 && !one_push; ++round) {
    auto waiter = std::async(std::launch::async, [&] {
      std::vector<FolderEvent> events;
      while (!(Has(events, Kind::kChanged, "F1") && Has(events, Kind::kChanged, "F3"))) {
        const size_t before = events.size();
        auto wake = s->IdleForEvents(20s, -1, events);
        if (!wake.ok() || *wake != IdleWake::kActivity) break;
        std::vector<FolderEvent> batch(events.begin() + static_cast<std::ptrdiff_t>(before), events.end());
        if (Has(batch, Kind::kChanged, "F1") && Has(batch, Kind::kChanged, "F3")) one_push = true;
      }
      return events;
    });
    ASSERT_TRUE(server_.WaitForSessionTitle("IDLE", 10s));
    auto other = std::async(std::launch::async, [&] { Append("F3"); });
    Append("F1");
    other.get();
    auto events = waiter.get();
    EXPECT_TRUE(Has(events, Kind::kChanged, "F1"));
    EXPECT_TRUE(Has(events, Kind::kChanged, "F3"));
    EXPECT_FALSE(Has(events, Kind::kChanged, "F 2"));
    for (const auto& e : events) {
      ASSERT_TRUE(e.status.has_value());
      EXPECT_EQ(e.status->uidnext, round + 1) << e.folder;
      EXPECT_EQ(e.status->messages, round) << e.folder;
    }
    std::cerr << "round " << round << ": " << events.size() << " events, both in one push: " << one_push << "\n";
  }
  EXPECT_TRUE(one_push) << "no round had both folders in one push; the window was never hit";
  // Still in step after DONE.
  EXPECT_TRUE(s->Status("F 2").ok());
}

TEST_F(NotifyDovecotTest, AppendsBeforeTheWaitAreNotLost) {
  Create("Early");
  auto s = Open();
  ASSERT_TRUE(s);
  ASSERT_TRUE(s->NotifySet({"INBOX", "Early"}).ok());
  // Dovecot pushes between commands too: the lines wait in the socket.
  Append("Early");
  Append("INBOX");
  auto events = EventsUntil(*s, [](const std::vector<FolderEvent>& e) {
    return Has(e, Kind::kChanged, "Early") && Has(e, Kind::kChanged, "INBOX");
  });
  EXPECT_TRUE(Has(events, Kind::kChanged, "Early"));
  EXPECT_TRUE(Has(events, Kind::kChanged, "INBOX"));
}

TEST_F(NotifyDovecotTest, CreatedAndDeletedFoldersAreReported) {
  Create("Doomed");
  auto s = Open();
  ASSERT_TRUE(s);
  ASSERT_TRUE(s->NotifySet({"INBOX", "Doomed"}).ok());
  auto waiter = std::async(std::launch::async, [&] {
    return EventsUntil(*s, [](const std::vector<FolderEvent>& e) {
      return Has(e, Kind::kCreated, "Brand New") && Has(e, Kind::kDeleted, "Doomed");
    });
  });
  ASSERT_TRUE(server_.WaitForSessionTitle("IDLE", 10s));
  Create("Brand New");
  ASSERT_TRUE(client_->DeleteFolder("alice", "Doomed").ok());
  auto events = waiter.get();
  EXPECT_TRUE(Has(events, Kind::kCreated, "Brand New"));
  EXPECT_TRUE(Has(events, Kind::kDeleted, "Doomed"));
  // A deleted watched folder's STATUS is refused as a missing folder.
  auto gone = s->Status("Doomed");
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.error().retry(), util::RetryClass::kNeedsOperator);
}

TEST_F(NotifyDovecotTest, WakeAndStopEndTheWait) {
  EventFd stop;
  auto s = Open(stop.fd);
  ASSERT_TRUE(s);
  ASSERT_TRUE(s->NotifySet({"INBOX"}).ok());
  EventFd wake;
  std::vector<FolderEvent> events;
  auto t0 = std::chrono::steady_clock::now();
  auto woken = std::async(std::launch::async, [&] { return s->IdleForEvents(30s, wake.fd, events); });
  ASSERT_TRUE(server_.WaitForSessionTitle("IDLE", 10s));
  wake.Fire();
  auto w = woken.get();
  ASSERT_TRUE(w.ok()) << w.error().message();
  EXPECT_EQ(*w, IdleWake::kWoken);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 15s);

  // The wake fd still fires; the stop fd wins.
  auto stopped = std::async(std::launch::async, [&] { return s->IdleForEvents(30s, -1, events); });
  ASSERT_TRUE(server_.WaitForSessionTitle("IDLE", 10s));
  stop.Fire();
  auto st = stopped.get();
  ASSERT_TRUE(st.ok()) << st.error().message();
  EXPECT_EQ(*st, IdleWake::kStopped);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 25s);
  s->Logout();
}

TEST_F(NotifyDovecotTest, SessionPidsCountOurConnections) {
  auto a = Open();
  auto b = Open();
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(server_.WaitForSessions(2, 10s));
  EXPECT_EQ(server_.SessionPids().size(), 2u);
  a->Logout();
  a.reset();
  ASSERT_TRUE(server_.WaitForSessionsAtMost(1, 10s));
  EXPECT_EQ(server_.SessionPids().size(), 1u);
}

class WithoutNotifyDovecotTest : public NotifyDovecotTest {
 protected:
  void SetUp() override {
    DovecotOptions options;
    options.notify = false;
    options.max_userip_connections = 2;
    Start(options);
  }
};

TEST_F(WithoutNotifyDovecotTest, NoNotifyCapabilityAndASessionLimit) {
  auto a = Open();
  ASSERT_TRUE(a);
  EXPECT_FALSE(a->HasCapability("NOTIFY"));
  EXPECT_TRUE(a->HasCapability("IDLE"));
  auto refused = a->NotifySet({"INBOX"});
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().retry(), util::RetryClass::kNeedsOperator);
  // STATUS works without NOTIFY (the polling path).
  Append("INBOX");
  auto st = a->Status("INBOX");
  ASSERT_TRUE(st.ok()) << st.error().message();
  EXPECT_EQ(st->messages, 1u);

  auto b = Open();
  ASSERT_TRUE(b);
  ASSERT_TRUE(server_.WaitForSessions(2, 10s));
  auto third = Session::Open(Options());
  ASSERT_FALSE(third.ok());
  EXPECT_NE(third.error().message().find("mail_max_userip_connections=2"), std::string::npos)
      << third.error().message();
}

}  // namespace
}  // namespace mailhook::imap
