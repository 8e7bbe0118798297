// Many folders, few connections (issue 8): with NOTIFY one connection
// watches every folder of an account and one fetches; without it, IDLE
// connections up to max_connections - 1 and STATUS polling for the rest, said
// in the log and /metrics; folders created or deleted while watching are
// reported. Against a private Dovecot, with and without NOTIFY.

#include <httplib.h>

#include <map>
#include <set>

#include "pipeline_fixture.h"

namespace mailhook::testsupport {
namespace {

class ManyFoldersTest : public PipelineTest {
 protected:
  /// Restarts the fixture's Dovecot with `options` (e.g. without NOTIFY).
  void RestartDovecot(const DovecotOptions& options) {
    MH_ASSERT_OK(dovecot_.Stop());
    MH_ASSERT_OK(dovecot_.Start(options));
  }
  /// Creates `n` folders F01..Fn (INBOX exists) and returns INBOX + them.
  std::vector<std::string> MakeFolders(int n) {
    ImapClient imap(dovecot_);
    std::vector<std::string> folders = {"INBOX"};
    for (int i = 1; i <= n; ++i) {
      std::string name = (i < 10 ? "F0" : "F") + std::to_string(i);
      EXPECT_TRUE(imap.CreateFolder("alice", name).ok());
      folders.push_back(name);
    }
    return folders;
  }
  /// Appends one message to each folder and checks each becomes its event.
  void OneMessageInEveryFolderBecomesItsEvent(const std::vector<std::string>& folders) {
    ImapClient imap(dovecot_);
    std::map<std::string, uint32_t> uid_of;
    for (const std::string& f : folders) {
      auto uid = imap.Append("alice", f, SampleMessage("plain_utf8.eml"));
      ASSERT_TRUE(uid.ok()) << uid.error().message();
      uid_of[f] = *uid;
    }
    ASSERT_TRUE(receiver_.WaitFor(folders.size(), seconds(60))) << daemon_.Log();
    std::map<std::string, uint32_t> got;
    for (const auto& e : Events()) got[e["mailbox"].get<std::string>()] = e["uid"].get<uint32_t>();
    EXPECT_EQ(got, uid_of);
  }
  std::string Metrics() {
    httplib::Client http("127.0.0.1", daemon_.HttpPort());
    auto r = http.Get("/metrics");
    return r && r->status == 200 ? r->body : "";
  }
  static std::string FolderList(const std::vector<std::string>& folders, const std::set<std::string>& pinned = {}) {
    std::string out;
    for (const std::string& f : folders) {
      out += out.empty() ? "" : ", ";
      out += pinned.contains(f) ? "{ name: " + Quote(f) + ", idle: true }" : Quote(f);
    }
    return "[" + out + "]";
  }
  void StartWith(const std::vector<std::string>& folders, const std::string& account_extra,
                 const std::set<std::string>& pinned = {}) {
    ConfigSpec cfg;
    cfg.state_dir = daemon_.state_dir();
    cfg.http_listen = "127.0.0.1:0";
    AccountSpec account;
    account.folders = {"INBOX"};  // replaced below: the map form is not an AccountSpec field
    account.extra = account_extra;
    std::string yaml = AccountYaml(dovecot_, account);
    const std::string plain = "folders: [\"INBOX\"]";
    const size_t at = yaml.find(plain);
    ASSERT_NE(at, std::string::npos) << yaml;
    yaml.replace(at, plain.size(), "folders: " + FolderList(folders, pinned));
    cfg.accounts.push_back(yaml);
    cfg.webhooks.push_back(WebhookYaml({"hook", receiver_.url(), kTestWebhookSecret, ""}));
    MH_ASSERT_OK(daemon_.WriteConfig(RenderConfig(cfg)));
    MH_ASSERT_OK(daemon_.Start());
  }
  /// Waits until every folder did its first sync (logged imap.connected).
  void WaitSynced(size_t folders) {
    for (int i = 0; i < 600; ++i) {
      size_t n = 0;
      const std::string log = daemon_.Log();
      for (size_t at = log.find("imap.connected"); at != std::string::npos; at = log.find("imap.connected", at + 1))
        ++n;
      if (n >= folders) return;
      std::this_thread::sleep_for(milliseconds(50));
    }
    FAIL() << "not every folder synced\n" << daemon_.Log();
  }
};

TEST_F(ManyFoldersTest, TwentyFoldersWithNotifyUseTwoConnections) {
  const std::vector<std::string> folders = MakeFolders(19);
  StartWith(folders, "");
  ASSERT_TRUE(daemon_.WaitForLog("imap.watch account=test mode=notify folders=20", seconds(20))) << daemon_.Log();
  WaitSynced(folders.size());
  ASSERT_TRUE(daemon_.WaitForLog("mode=notify folders=20", seconds(20))) << daemon_.Log();
  ASSERT_TRUE(daemon_.WaitForLog("imap.idle account=test mode=notify", seconds(20))) << daemon_.Log();
  // No test client is connected now: every session is the daemon's.
  EXPECT_TRUE(dovecot_.WaitForSessionsAtMost(2, seconds(10)));
  EXPECT_EQ(dovecot_.SessionPids().size(), 2u) << "one watches (NOTIFY), one fetches";
  OneMessageInEveryFolderBecomesItsEvent(folders);
  EXPECT_TRUE(dovecot_.WaitForSessionsAtMost(2, seconds(10)));
  EXPECT_LE(dovecot_.SessionPids().size(), 2u);
  EXPECT_NE(Metrics().find("mailhook_imap_connections{account=\"test\"} 2"), std::string::npos) << Metrics();
}

TEST_F(ManyFoldersTest, WithoutNotifyIdleUpToTheBudgetAndTheRestIsPolled) {
  RestartDovecot(DovecotOptions{.notify = false});
  const std::vector<std::string> folders = MakeFolders(5);  // INBOX, F01..F05
  // max_connections counts every connection: 3 IDLE + the worker. F05 is
  // pinned to IDLE, so F03 and F04 (config order) are the ones polled.
  StartWith(folders, "max_connections: 4, poll_interval: 1s", {"F05"});
  ASSERT_TRUE(
      daemon_.WaitForLog("imap.watch account=test mode=idle folders=6 idle_connections=3 polled=3", seconds(20)))
      << daemon_.Log();
  WaitSynced(folders.size());
  for (const std::string polled : {"INBOX", "F01", "F05"}) {
    EXPECT_EQ(daemon_.Log().find("imap.folder_polled account=test folder=" + polled + " "), std::string::npos)
        << polled << " has an IDLE connection";
  }
  for (const std::string polled : {"F02", "F03", "F04"}) {
    EXPECT_NE(daemon_.Log().find("imap.folder_polled account=test folder=" + polled + " "), std::string::npos)
        << daemon_.Log();
  }
  const std::string metrics = Metrics();
  EXPECT_NE(metrics.find("mailhook_imap_folder_polled{account=\"test\",folder=\"F03\"} 1"), std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("mailhook_imap_folder_polled{account=\"test\",folder=\"F05\"} 0"), std::string::npos)
      << metrics;
  EXPECT_TRUE(dovecot_.WaitForSessions(4, seconds(20)));
  EXPECT_EQ(dovecot_.SessionPids().size(), 4u) << "3 IDLE + the worker";
  OneMessageInEveryFolderBecomesItsEvent(folders);
  EXPECT_TRUE(dovecot_.WaitForSessionsAtMost(4, seconds(10)));
  EXPECT_LE(dovecot_.SessionPids().size(), 4u) << "never more than max_connections";
}

TEST_F(ManyFoldersTest, AFolderCreatedOrDeletedWhileWatchingIsReported) {
  std::vector<std::string> folders = MakeFolders(1);  // INBOX, F01
  StartWith(folders, "");
  ASSERT_TRUE(daemon_.WaitForLog("imap.idle account=test mode=notify", seconds(20))) << daemon_.Log();
  WaitSynced(folders.size());
  ImapClient imap(dovecot_);
  MH_ASSERT_OK(imap.CreateFolder("alice", "Fresh"));
  ASSERT_TRUE(daemon_.WaitForLog("imap.folder_created account=test folder=Fresh watched=no", seconds(20)))
      << daemon_.Log();
  MH_ASSERT_OK(imap.DeleteFolder("alice", "F01"));
  ASSERT_TRUE(daemon_.WaitForLog("imap.folder_deleted account=test folder=F01 watched=yes", seconds(20)))
      << daemon_.Log();
  ASSERT_TRUE(daemon_.WaitForLog("imap.folder_unavailable account=test folder=F01", seconds(20))) << daemon_.Log();
  const std::string metrics = Metrics();
  EXPECT_NE(metrics.find("mailhook_imap_folder_changes_total{account=\"test\",change=\"created\"} 1"),
            std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("mailhook_imap_folder_changes_total{account=\"test\",change=\"deleted\"} 1"),
            std::string::npos);
  // The other folder goes on.
  MH_ASSERT_OK(imap.Append("alice", "INBOX", SampleMessage("plain_utf8.eml")));
  ASSERT_TRUE(receiver_.WaitFor(1, seconds(20))) << daemon_.Log();
  // Recreated: reported, and watched again (a new UIDVALIDITY re-baselines it).
  MH_ASSERT_OK(imap.CreateFolder("alice", "F01"));
  ASSERT_TRUE(daemon_.WaitForLog("imap.folder_created account=test folder=F01 watched=yes", seconds(20)))
      << daemon_.Log();
  ASSERT_TRUE(daemon_.WaitForLog("imap.folder_available account=test folder=F01", seconds(20))) << daemon_.Log();
}

}  // namespace
}  // namespace mailhook::testsupport
