// SIGHUP reloads the config (CONTRACT.md): only the accounts and targets that
// changed restart, an invalid file is reported with its line:column while
// the running config keeps delivering, and SIGHUP no longer stops the daemon.

#include <signal.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "pipeline_fixture.h"

namespace mailhook::testsupport {
namespace {

class SighupTest : public PipelineTest {
 protected:
  void SetUp() override {
    PipelineTest::SetUp();
    MH_ASSERT_OK(second_.Start());
  }

  /// Accounts "a" (alice, `a_folders`) and "b" (bob, INBOX); webhook "hook",
  /// and "hook2" (the second receiver) when `with_hook2`.
  std::string Config(const std::vector<std::string>& a_folders, bool with_hook2) const {
    ConfigSpec cfg;
    cfg.state_dir = daemon_.state_dir();
    cfg.http_listen = "127.0.0.1:0";
    AccountSpec a;
    a.name = "a";
    a.folders = a_folders;
    AccountSpec b;
    b.name = "b";
    b.user = "bob";
    cfg.accounts = {AccountYaml(dovecot_, a), AccountYaml(dovecot_, b)};
    cfg.webhooks.push_back(WebhookYaml({"hook", receiver_.url(), kTestWebhookSecret, ""}));
    if (with_hook2) cfg.webhooks.push_back(WebhookYaml({"hook2", second_.url(), kTestWebhookSecret, ""}));
    return RenderConfig(cfg);
  }

  /// Both accounts logged in and watching: Dovecot offers NOTIFY, so each
  /// has two connections (the worker and the NOTIFY one).
  void WaitSettled() {
    WaitIdle(2);
    ASSERT_TRUE(dovecot_.WaitForSessions(4, seconds(20))) << daemon_.Log();
    ASSERT_TRUE(daemon_.WaitForLog("imap.idle account=a mode=notify", seconds(20))) << daemon_.Log();
    ASSERT_TRUE(daemon_.WaitForLog("imap.idle account=b mode=notify", seconds(20))) << daemon_.Log();
  }

  /// Sends SIGHUP and waits for the reload's outcome (`event`) after `mark`.
  void Hup(const std::string& event, size_t mark) {
    ASSERT_EQ(kill(daemon_.pid(), SIGHUP), 0);
    ASSERT_TRUE(daemon_.WaitForLog(event, seconds(20), mark)) << daemon_.Log();
  }

  /// mailhook's logins as `user` so far, by Dovecot's log. mailhook uses
  /// implicit TLS ("TLS"); the test's own ImapClient does not ("secured").
  size_t Logins(const std::string& user) const {
    std::istringstream log(dovecot_.ReadLog());
    size_t n = 0;
    for (std::string line; std::getline(log, line);) {
      if (line.find("Login: user=<" + user + ">") != std::string::npos && line.find(", TLS,") != std::string::npos) {
        ++n;
      }
    }
    return n;
  }

  /// The pids of `user`'s IMAP session processes (one per connection).
  std::set<pid_t> SessionsOf(const std::string& user) const {
    std::set<pid_t> out;
    for (pid_t pid : dovecot_.SessionPids()) {
      std::string title;
      std::ifstream in("/proc/" + std::to_string(pid) + "/cmdline");
      std::getline(in, title, '\n');
      for (char& c : title) c = c == '\0' ? ' ' : c;
      if (title.find("[" + user + " ") != std::string::npos) out.insert(pid);
    }
    return out;
  }

  /// GET /metrics of the running daemon.
  std::string Metrics() const {
    httplib::Client http("127.0.0.1", daemon_.HttpPort());
    auto res = http.Get("/metrics");
    return res ? res->body : "";
  }

  WebhookReceiver second_;
};

TEST_F(SighupTest, OnlyTheChangedAccountRestartsAndANewWebhookGetsEvents) {
  ImapClient imap(dovecot_);
  MH_ASSERT_OK(imap.CreateFolder("alice", "Archive"));
  MH_ASSERT_OK(daemon_.WriteConfig(Config({"INBOX"}, false)));
  MH_ASSERT_OK(daemon_.Start());
  WaitSettled();
  MH_ASSERT_OK(imap.Append("bob", "INBOX", SampleMessage("plain_utf8.eml")));
  ASSERT_TRUE(receiver_.WaitFor(1, seconds(20))) << daemon_.Log();
  const size_t bob_logins = Logins("bob");
  const std::set<pid_t> bob_sessions = SessionsOf("bob");
  ASSERT_FALSE(bob_sessions.empty());
  const size_t alice_logins = Logins("alice");

  // Account a gets a folder more; webhook hook2 is new; b and hook are as they were.
  MH_ASSERT_OK(daemon_.WriteConfig(Config({"INBOX", "Archive"}, true)));
  size_t mark = daemon_.LogMark();
  Hup("daemon.reloaded", mark);
  std::string log = daemon_.Log().substr(mark);
  EXPECT_NE(log.find("daemon.signal signal=SIGHUP"), std::string::npos) << log;
  EXPECT_NE(log.find("accounts_restarted=1 accounts_added=0 accounts_removed=0 targets_rebuilt=0 targets_added=1 "
                     "targets_removed=0"),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("daemon.reload_account account=a change=restarted"), std::string::npos) << log;
  EXPECT_EQ(log.find("account=b change"), std::string::npos) << log;
  ASSERT_TRUE(daemon_.WaitForLog("imap.connected account=a folder=Archive", seconds(20), mark)) << daemon_.Log();

  // The new webhook gets events of both accounts, the old one still does;
  // the new folder is watched.
  MH_ASSERT_OK(imap.Append("bob", "INBOX", SampleMessage("latin1_qp.eml")));
  MH_ASSERT_OK(imap.Append("alice", "Archive", SampleMessage("alternative.eml")));
  ASSERT_TRUE(second_.WaitFor(2, seconds(20))) << daemon_.Log();
  ASSERT_TRUE(receiver_.WaitFor(3, seconds(20))) << daemon_.Log();
  std::set<std::string> second_accounts;
  for (const auto& r : second_.Requests()) second_accounts.insert(r.Json()["account"].get<std::string>());
  EXPECT_EQ(second_accounts, (std::set<std::string>{"a", "b"}));

  // a logged in again; b kept its connections: no login, the same sessions.
  EXPECT_GT(Logins("alice"), alice_logins);
  EXPECT_EQ(Logins("bob"), bob_logins) << dovecot_.ReadLog();
  EXPECT_EQ(SessionsOf("bob"), bob_sessions);
  EXPECT_TRUE(daemon_.Running());
  MH_ASSERT_OK_AND_ASSIGN(int code, daemon_.Terminate());
  EXPECT_EQ(code, 0);
}

TEST_F(SighupTest, AnInvalidFileIsReportedWithItsPositionAndTheOldConfigKeepsDelivering) {
  MH_ASSERT_OK(daemon_.WriteConfig(Config({"INBOX"}, false)));
  MH_ASSERT_OK(daemon_.Start());
  WaitSettled();
  const size_t alice_logins = Logins("alice");
  // The first account's port must be a number.
  std::string bad = Config({"INBOX", "Archive"}, true);
  const std::string port = "port: " + std::to_string(dovecot_.imaps_port());
  const size_t at_port = bad.find(port);
  ASSERT_NE(at_port, std::string::npos);
  bad.replace(at_port, port.size(), "port: nine");
  const size_t line = 1 + static_cast<size_t>(std::count(bad.begin(), bad.begin() + at_port, '\n'));
  const size_t column = at_port - bad.rfind('\n', at_port) + std::string("port: ").size();
  MH_ASSERT_OK(daemon_.WriteConfig(bad));
  size_t mark = daemon_.LogMark();
  Hup("daemon.reload_failed", mark);
  std::string log = daemon_.Log().substr(mark);
  // FILE:LINE:COL of the bad value, and what is wrong with it.
  const std::string at = daemon_.config_path() + ":" + std::to_string(line) + ":" + std::to_string(column) + ":";
  EXPECT_NE(log.find(at), std::string::npos) << log;
  EXPECT_NE(log.find("port"), std::string::npos) << log;
  EXPECT_EQ(log.find("daemon.reloaded"), std::string::npos) << log;

  // Still running on the old config: a and hook deliver, nothing reconnected.
  ImapClient imap(dovecot_);
  MH_ASSERT_OK(imap.Append("alice", "INBOX", SampleMessage("plain_utf8.eml")));
  ASSERT_TRUE(receiver_.WaitFor(1, seconds(20))) << daemon_.Log();
  EXPECT_EQ(second_.count(), 0u);
  EXPECT_EQ(Logins("alice"), alice_logins);
  EXPECT_TRUE(daemon_.Running());
  std::string metrics = Metrics();
  EXPECT_NE(metrics.find("mailhook_config_reloads_total{outcome=\"failed\"} 1\n"), std::string::npos) << metrics;
  EXPECT_EQ(metrics.find("mailhook_config_reloads_total{outcome=\"applied\"}"), std::string::npos) << metrics;

  // Fixed, it is taken on the next SIGHUP.
  MH_ASSERT_OK(daemon_.WriteConfig(Config({"INBOX"}, true)));
  mark = daemon_.LogMark();
  Hup("daemon.reloaded", mark);
  MH_ASSERT_OK(imap.Append("bob", "INBOX", SampleMessage("latin1_qp.eml")));
  ASSERT_TRUE(second_.WaitFor(1, seconds(20))) << daemon_.Log();
  EXPECT_EQ(Logins("alice"), alice_logins);
  metrics = Metrics();
  EXPECT_NE(metrics.find("mailhook_config_reloads_total{outcome=\"applied\"} 1\n"), std::string::npos) << metrics;
  MH_ASSERT_OK_AND_ASSIGN(int code, daemon_.Terminate());
  EXPECT_EQ(code, 0);
}

TEST_F(SighupTest, KeysThatNeedARestartAreReportedAndKept) {
  MH_ASSERT_OK(daemon_.WriteConfig(Config({"INBOX"}, false)));
  MH_ASSERT_OK(daemon_.Start());
  WaitSettled();
  std::string moved = Config({"INBOX"}, false);
  const std::string state = "state_dir: ";
  moved.replace(moved.find(state), state.size(), "state_dir: " + Quote(daemon_.dir() + "/elsewhere") + "\n#");
  MH_ASSERT_OK(daemon_.WriteConfig(moved));
  size_t mark = daemon_.LogMark();
  Hup("daemon.reloaded", mark);
  std::string log = daemon_.Log().substr(mark);
  EXPECT_NE(log.find("daemon.reload_needs_restart key=state_dir"), std::string::npos) << log;
  EXPECT_NE(log.find("accounts_restarted=0"), std::string::npos) << log;
  // Still the old state_dir: events flow, nothing was created elsewhere.
  ImapClient imap(dovecot_);
  MH_ASSERT_OK(imap.Append("bob", "INBOX", SampleMessage("plain_utf8.eml")));
  ASSERT_TRUE(receiver_.WaitFor(1, seconds(20))) << daemon_.Log();
  EXPECT_FALSE(std::filesystem::exists(daemon_.dir() + "/elsewhere"));
  MH_ASSERT_OK_AND_ASSIGN(int code, daemon_.Terminate());
  EXPECT_EQ(code, 0);
}

}  // namespace
}  // namespace mailhook::testsupport
