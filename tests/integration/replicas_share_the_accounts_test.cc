// Replicas on one PostgreSQL (issue #11): three `mailhook run` with the same
// config and a postgresql:// store share 30 accounts on one Dovecot — every
// account watched by exactly one replica (its two IMAP sessions, NOTIFY and
// worker, and no more: counted per user from Dovecot's session titles),
// each replica holding 10 ± 1 (/metrics mailhook_cluster_accounts_owned),
// and a message appended to accounts of every replica delivered exactly
// once. When a replica is killed (-9), its accounts resume on the others
// within the lease TTL plus a reconnect, and mail that arrived meanwhile is
// delivered. While PostgreSQL is down a replica's /readyz says so, and it
// takes its accounts back when the server returns. Skipped without
// PostgreSQL (server or libpq).

#include <signal.h>

#include <chrono>
#include <map>
#include <memory>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <httplib.h>

#include "postgres_server.h"
#include "testsupport.h"

namespace mailhook::testsupport {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr int kAccounts = 30;
constexpr int kReplicas = 3;

std::string AccountName(int i) {
  char n[16];
  std::snprintf(n, sizeof n, "acct%02d", i);
  return n;
}
std::string UserName(int i) {
  char n[16];
  std::snprintf(n, sizeof n, "user%02d", i);
  return n;
}

// Waits until `done` holds, polling every 100 ms; false on timeout.
template <class F>
bool WaitUntil(F done, milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (done()) return true;
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(milliseconds(100));
  }
}

class ReplicasTest : public ::testing::Test {
 protected:
  void SetUp() override {
#if !MAILHOOK_HAVE_PGSTORE
    GTEST_SKIP() << "built without libpq (no PostgreSQL store): run scripts/deps and reconfigure";
#endif
    if (std::string why = PostgresServer::WhyCannotRun(); !why.empty()) GTEST_SKIP() << why;
    MH_ASSERT_OK(pg_.Start());
    DovecotOptions options;
    options.extra_users = kAccounts;
    MH_ASSERT_OK(dovecot_.Start(options));
    MH_ASSERT_OK(hook_.Start());
    for (int r = 0; r < kReplicas; ++r) {
      replicas_.push_back(std::make_unique<MailhookProcess>());
      MH_ASSERT_OK(replicas_.back()->WriteConfig(Config(*replicas_.back())));
    }
  }

  std::string Config(const MailhookProcess& replica, const std::set<int>& accounts = All()) const {
    ConfigSpec cfg;
    cfg.state_dir = replica.state_dir();
    cfg.log_level = "info";
    cfg.http_listen = "127.0.0.1:0";
    for (int i : accounts) {
      AccountSpec a;
      a.name = AccountName(i);
      a.user = UserName(i);
      cfg.accounts.push_back(AccountYaml(dovecot_, a));
    }
    cfg.webhooks.push_back(WebhookYaml({"hook", hook_.url(), kTestWebhookSecret, ""}));
    cfg.extra = "store:\n  url: " + Quote(pg_.ConnectionUrl()) + "\n  lease_ttl: 5s\n";
    return RenderConfig(cfg);
  }

  // IMAP sessions per user now (Dovecot's titles: "[userNN 127.0.0.1 …]").
  std::map<std::string, int> SessionsPerUser() const {
    std::map<std::string, int> out;
    static const std::regex kUser(R"(\[(user\d\d) )");
    for (const std::string& title : dovecot_.SessionTitles()) {
      std::smatch m;
      if (std::regex_search(title, m, kUser)) ++out[m[1]];
    }
    return out;
  }

  // Every account has its two sessions (NOTIFY + worker) and none has more.
  bool EachAccountWatchedOnce(const std::set<int>& accounts) const {
    auto sessions = SessionsPerUser();
    for (int i : accounts)
      if (sessions[UserName(i)] != 2) return false;
    return true;
  }

  static std::string Metrics(const MailhookProcess& replica) {
    httplib::Client http("127.0.0.1", replica.HttpPort());
    auto r = http.Get("/metrics");
    return r && r->status == 200 ? r->body : "";
  }

  // The accounts a replica runs now: its mailhook_imap_connections{account} > 0.
  static std::set<int> Running(const MailhookProcess& replica) {
    std::set<int> out;
    static const std::regex kConn("mailhook_imap_connections\\{account=\"acct([0-9]+)\"\\} ([0-9.]+)");
    const std::string text = Metrics(replica);
    for (std::sregex_iterator it(text.begin(), text.end(), kConn), end; it != end; ++it) {
      if (std::stod((*it)[2]) > 0) out.insert(std::stoi((*it)[1]));
    }
    return out;
  }

  // GET /readyz: the status and body ("" when it did not answer).
  static std::pair<int, std::string> Readyz(const MailhookProcess& replica) {
    httplib::Client http("127.0.0.1", replica.HttpPort());
    auto r = http.Get("/readyz");
    return r ? std::make_pair(r->status, r->body) : std::make_pair(0, std::string());
  }

  static int Owned(const MailhookProcess& replica) {
    static const std::regex kOwned("mailhook_cluster_accounts_owned ([0-9.]+)");
    const std::string text = Metrics(replica);
    std::smatch m;
    return std::regex_search(text, m, kOwned) ? std::stoi(m[1]) : -1;
  }

  static std::set<int> All() {
    std::set<int> all;
    for (int i = 1; i <= kAccounts; ++i) all.insert(i);
    return all;
  }

  static std::string Message(const std::string& subject) {
    return "From: Ann <ann@example.com>\r\nTo: someone@example.com\r\nSubject: " + subject + "\r\nMessage-ID: <" +
           subject + "@example.com>\r\n\r\nhello\r\n";
  }

  PostgresServer pg_;
  DovecotServer dovecot_;
  WebhookReceiver hook_;
  std::vector<std::unique_ptr<MailhookProcess>> replicas_;
};

TEST_F(ReplicasTest, EachAccountIsWatchedByExactlyOneReplicaAndEachHoldsItsShare) {
  for (auto& r : replicas_) MH_ASSERT_OK(r->Start());
  // Shares settle: the first replica takes everything, then gives back one
  // account per round (lease_ttl/3) while the others join.
  ASSERT_TRUE(WaitUntil(
      [&] {
        int total = 0;
        for (auto& r : replicas_) {
          int owned = Owned(*r);
          if (owned < 9 || owned > 11) return false;
          total += owned;
        }
        return total == kAccounts;
      },
      seconds(40)))
      << Metrics(*replicas_[0]) << Metrics(*replicas_[1]) << Metrics(*replicas_[2]);
  ASSERT_TRUE(WaitUntil([&] { return EachAccountWatchedOnce(All()); }, seconds(20)));
  // The replicas' own view agrees: disjoint sets covering every account.
  std::set<int> seen;
  std::vector<int> first_of(kReplicas, 0);
  for (int r = 0; r < kReplicas; ++r) {
    std::set<int> running;
    ASSERT_TRUE(WaitUntil(
        [&] {
          running = Running(*replicas_[r]);
          return static_cast<int>(running.size()) == Owned(*replicas_[r]);
        },
        seconds(10)));
    for (int i : running) EXPECT_TRUE(seen.insert(i).second) << AccountName(i) << " runs on two replicas";
    ASSERT_FALSE(running.empty());
    first_of[r] = *running.begin();
  }
  EXPECT_EQ(seen, All());
  auto sessions = SessionsPerUser();
  for (int i = 1; i <= kAccounts; ++i) EXPECT_EQ(sessions[UserName(i)], 2) << UserName(i);

  // One message to an account of each replica, and two more: each delivered once.
  ImapClient imap(dovecot_);
  std::set<int> targets(first_of.begin(), first_of.end());
  targets.insert(1);
  targets.insert(kAccounts);
  for (int i : targets) ASSERT_TRUE(imap.Append(UserName(i), "INBOX", Message("to-" + AccountName(i))).ok());
  ASSERT_TRUE(hook_.WaitFor(targets.size(), seconds(30))) << hook_.Requests().size();
  // Nothing more comes (a second watcher of an account would send its copy).
  EXPECT_FALSE(hook_.WaitFor(targets.size() + 1, seconds(3)));
  std::set<std::string> accounts;
  for (const auto& req : hook_.Requests()) accounts.insert(req.Json()["account"].get<std::string>());
  EXPECT_EQ(accounts.size(), targets.size());
  for (auto& r : replicas_) {
    MH_ASSERT_OK_AND_ASSIGN(int code, r->Terminate());
    EXPECT_EQ(code, 0);
  }
}

TEST_F(ReplicasTest, AKilledReplicasAccountsResumeOnTheOthers) {
  for (auto& r : replicas_) MH_ASSERT_OK(r->Start());
  ASSERT_TRUE(WaitUntil(
      [&] {
        int total = 0;
        for (auto& r : replicas_) {
          const int owned = Owned(*r);
          if (owned < 9 || owned > 11) return false;  // shares still moving
          total += owned;
        }
        return total == kAccounts && EachAccountWatchedOnce(All());
      },
      seconds(40)));
  std::set<int> victims;
  ASSERT_TRUE(WaitUntil(
      [&] {
        victims = Running(*replicas_[0]);
        return static_cast<int>(victims.size()) == Owned(*replicas_[0]);
      },
      seconds(10)));
  ASSERT_FALSE(victims.empty());
  const auto killed_at = std::chrono::steady_clock::now();
  replicas_[0]->Kill9();
  // Mail for a victim account while nobody watches it.
  ImapClient imap(dovecot_);
  const int moved = *victims.begin();
  ASSERT_TRUE(imap.Append(UserName(moved), "INBOX", Message("while-moving")).ok());
  // TTL 5 s + a round (5/3 s) + login: well within 20 s.
  ASSERT_TRUE(WaitUntil(
      [&] {
        std::set<int> now = Running(*replicas_[1]);
        for (int i : Running(*replicas_[2])) now.insert(i);
        return now == All();
      },
      seconds(20)));
  const auto resumed = std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - killed_at);
  std::cerr << "accounts of the killed replica resumed after " << resumed.count() << " ms\n";
  ASSERT_TRUE(hook_.WaitFor(1, seconds(20)));
  EXPECT_EQ(hook_.Requests()[0].Json()["account"], AccountName(moved));
  ASSERT_TRUE(WaitUntil([&] { return EachAccountWatchedOnce(All()); }, seconds(20)));
  EXPECT_EQ(Owned(*replicas_[1]) + Owned(*replicas_[2]), kAccounts);
  EXPECT_FALSE(hook_.WaitFor(2, seconds(2)));
  for (int r = 1; r < kReplicas; ++r) {
    MH_ASSERT_OK_AND_ASSIGN(int code, replicas_[r]->Terminate());
    EXPECT_EQ(code, 0);
  }
}

TEST_F(ReplicasTest, ReadyzIsFalseWhileTheStoreIsUnreachable) {
  MailhookProcess& replica = *replicas_[0];
  MH_ASSERT_OK(replica.Start());
  ASSERT_TRUE(WaitUntil([&] { return Readyz(replica).first == 200 && Owned(replica) == kAccounts; }, seconds(30)))
      << Readyz(replica).second;
  MH_ASSERT_OK(pg_.Kill());
  std::pair<int, std::string> answer;
  // The next round (every lease_ttl/3) fails.
  ASSERT_TRUE(WaitUntil(
      [&] {
        answer = Readyz(replica);
        return answer.first == 503 && answer.second.find("store: unreachable") != std::string::npos;
      },
      seconds(15)))
      << answer.first << " " << answer.second;
  EXPECT_NE(Metrics(replica).find("mailhook_cluster_store_reachable 0"), std::string::npos);
  MH_ASSERT_OK(pg_.Start());
  // Back: the keeper reconnects, claims the accounts again and they connect.
  ASSERT_TRUE(WaitUntil([&] { return Readyz(replica).first == 200 && Owned(replica) == kAccounts; }, seconds(40)))
      << Readyz(replica).second;
  EXPECT_NE(Metrics(replica).find("mailhook_cluster_store_reachable 1"), std::string::npos);
  ASSERT_TRUE(WaitUntil([&] { return EachAccountWatchedOnce(All()); }, seconds(20)));
  // And it still delivers.
  ImapClient imap(dovecot_);
  ASSERT_TRUE(imap.Append(UserName(7), "INBOX", Message("after-restart")).ok());
  ASSERT_TRUE(hook_.WaitFor(1, seconds(20)));
  EXPECT_EQ(hook_.Requests()[0].Json()["account"], AccountName(7));
  MH_ASSERT_OK_AND_ASSIGN(int code, replica.Terminate());
  EXPECT_EQ(code, 0);
}

// SIGHUP on a replica: the keeper learns the new account list; a removed
// account stops wherever it ran, an added one starts on exactly one replica.
TEST_F(ReplicasTest, AReloadStartsOnlyTheAccountsThisReplicaHolds) {
  std::set<int> before, after;
  for (int i = 1; i <= 10; ++i) before.insert(i);
  for (int i = 2; i <= 14; ++i) after.insert(i);
  auto settled = [&](const std::set<int>& accounts, int per_replica_min) {
    int total = 0;
    for (int r = 0; r < 2; ++r) {
      const int owned = Owned(*replicas_[r]);
      if (owned < per_replica_min || owned > per_replica_min + 1) return false;
      total += owned;
    }
    return total == static_cast<int>(accounts.size()) && EachAccountWatchedOnce(accounts);
  };
  for (int r = 0; r < 2; ++r) {
    MH_ASSERT_OK(replicas_[r]->WriteConfig(Config(*replicas_[r], before)));
    MH_ASSERT_OK(replicas_[r]->Start());
  }
  ASSERT_TRUE(WaitUntil([&] { return settled(before, 5); }, seconds(40)));
  for (int r = 0; r < 2; ++r) {
    MH_ASSERT_OK(replicas_[r]->WriteConfig(Config(*replicas_[r], after)));
    const size_t mark = replicas_[r]->LogMark();
    ASSERT_EQ(kill(replicas_[r]->pid(), SIGHUP), 0);
    ASSERT_TRUE(replicas_[r]->WaitForLog("daemon.reloaded", seconds(10), mark));
  }
  ASSERT_TRUE(WaitUntil([&] { return settled(after, 6) && SessionsPerUser()[UserName(1)] == 0; }, seconds(40)))
      << Metrics(*replicas_[0]) << Metrics(*replicas_[1]);
  std::set<int> running = Running(*replicas_[0]);
  for (int i : Running(*replicas_[1])) EXPECT_TRUE(running.insert(i).second) << AccountName(i) << " runs twice";
  EXPECT_EQ(running, after);
  for (int r = 0; r < 2; ++r) {
    MH_ASSERT_OK_AND_ASSIGN(int code, replicas_[r]->Terminate());
    EXPECT_EQ(code, 0);
  }
}

}  // namespace
}  // namespace mailhook::testsupport
