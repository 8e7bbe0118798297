// Replicas on one PostgreSQL (issue #11): three `mailhook run` with the same
// config and a postgresql:// store share 30 accounts on one Dovecot — every
// account watched by exactly one replica (its two IMAP sessions, NOTIFY and
// worker, and no more: counted per user from Dovecot's session titles),
// each replica holding 10 ± 1 (/metrics mailhook_cluster_accounts_owned),
// and a message appended to accounts of every replica delivered exactly
// once. When a replica is killed (-9), its accounts resume on the others
// within the lease TTL plus a reconnect, and mail that arrived meanwhile is
// delivered. While PostgreSQL is down a replica's /readyz says so, and it
// takes its accounts back when the server returns. A replica paused
// (SIGSTOP) past its TTL loses its accounts to another and, continued,
// neither commits nor delivers for them, then rejoins and takes its share
// back. Skipped without PostgreSQL (server or libpq).

#include <signal.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <iterator>
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

  // The state letter of /proc/PID/stat ('T': stopped by a signal); '?' if unreadable.
  static char ProcState(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const size_t paren = stat.rfind(") ");
    return paren == std::string::npos || paren + 2 >= stat.size() ? '?' : stat[paren + 2];
  }

  // Requests per webhook-id (the event id) and per subject, so far.
  std::map<std::string, int> DeliveriesPerEventId() const {
    std::map<std::string, int> out;
    for (const auto& req : hook_.Requests()) ++out[req.Header("webhook-id")];
    return out;
  }

  // Lines of `replica`'s log at or after `mark` that contain `needle`.
  static std::string LogLinesWith(const MailhookProcess& replica, const std::string& needle, size_t mark) {
    const std::string log = replica.Log();
    std::string out;
    size_t at = std::min(mark, log.size());
    while ((at = log.find(needle, at)) != std::string::npos) {
      const size_t begin = log.rfind('\n', at);
      const size_t end = log.find('\n', at);
      out +=
          log.substr(begin == std::string::npos ? 0 : begin + 1,
                     end == std::string::npos ? std::string::npos : end - (begin == std::string::npos ? 0 : begin + 1));
      out += '\n';
      at = end == std::string::npos ? log.size() : end;
    }
    return out;
  }

  // After SIGCONT of `a` (log from `mark`): it logs the loss of every account
  // in `lost`, stops their stale sessions, rejoins with a share, and the one
  // delivery so far (B's, of mail A's sessions saw too) stays the only one;
  // then mail to every account is delivered exactly once.
  void ExpectRejoinedWithoutDuplicates(const MailhookProcess& a, const MailhookProcess& b,
                                       const std::set<int>& accounts, const std::set<int>& lost, size_t mark) {
    std::string losses;
    ASSERT_TRUE(WaitUntil(
        [&] {
          losses = LogLinesWith(a, "cluster.lease_deadline", mark) + LogLinesWith(a, "cluster.lease_lost", mark);
          for (int i : lost)
            if (losses.find(AccountName(i)) == std::string::npos) return false;
          return true;
        },
        seconds(10)))
        << a.Log().substr(mark);
    std::cerr << "A on waking:\n" << losses;
    // Rejoined: after rebalancing A holds its half again, each account has one
    // watcher (A's stale sessions are gone), and the delivery is still single.
    const int half = static_cast<int>(accounts.size()) / 2;
    ASSERT_TRUE(WaitUntil(
        [&] {
          return Owned(a) == half && Owned(b) == half && EachAccountWatchedOnce(accounts) &&
                 Running(a).size() == static_cast<size_t>(half);
        },
        seconds(30)))
        << Metrics(a) << Metrics(b);
    EXPECT_NE(LogLinesWith(a, "cluster.lease_acquired", mark), "");
    EXPECT_EQ(hook_.Requests().size(), 1u);
    ImapClient imap(dovecot_);
    for (int i : accounts)
      ASSERT_TRUE(imap.Append(UserName(i), "INBOX", Message("after-rejoin-" + AccountName(i))).ok());
    const size_t expected = accounts.size() + 1;
    ASSERT_TRUE(hook_.WaitFor(expected, seconds(20))) << hook_.Requests().size();
    EXPECT_FALSE(hook_.WaitFor(expected + 1, seconds(3)));  // no late copy from either replica
    for (const auto& [id, count] : DeliveriesPerEventId()) EXPECT_EQ(count, 1) << "event " << id;
    std::map<std::string, int> per_account;
    for (const auto& req : hook_.Requests()) ++per_account[req.Json()["account"].get<std::string>()];
    for (int i : accounts) EXPECT_EQ(per_account[AccountName(i)], i == *lost.begin() ? 2 : 1) << AccountName(i);
    std::cerr << "A after waking, fenced commits:\n" << LogLinesWith(a, "store.fenced", mark);
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

// Issue #11's pause: replica A is SIGSTOPped past its lease TTL, B takes over
// every account (and delivers mail A's sessions also saw), then A continues.
// Its leases are gone (fencing): it must neither commit nor deliver that mail
// again, must stop its stale sessions, and rejoins: it heartbeats, takes its
// share back, and every account still delivers exactly once.
constexpr int kPausedAccounts = 6;

std::set<int> FirstAccounts(int n) {
  std::set<int> out;
  for (int i = 1; i <= n; ++i) out.insert(i);
  return out;
}

TEST_F(ReplicasTest, APausedReplicaLosesItsAccountsAndRejoinsWithoutDuplicates) {
  const std::set<int> accounts = FirstAccounts(kPausedAccounts);
  MailhookProcess& a = *replicas_[0];
  MailhookProcess& b = *replicas_[1];
  for (MailhookProcess* r : {&a, &b}) {
    MH_ASSERT_OK(r->WriteConfig(Config(*r, accounts)));
    MH_ASSERT_OK(r->Start());
  }
  std::set<int> lost;
  ASSERT_TRUE(WaitUntil(
      [&] {
        lost = Running(a);
        return Owned(a) == 3 && Owned(b) == 3 && lost.size() == 3 && EachAccountWatchedOnce(accounts);
      },
      seconds(30)))
      << Metrics(a) << Metrics(b);
  const auto paused_at = std::chrono::steady_clock::now();
  ASSERT_EQ(kill(a.pid(), SIGSTOP), 0);
  ASSERT_TRUE(WaitUntil([&] { return ProcState(a.pid()) == 'T'; }, seconds(5)));
  // Mail to one of A's accounts while A is stopped: Dovecot pushes it to A's
  // open NOTIFY session, unread until A continues; B finds it on taking over.
  ImapClient imap(dovecot_);
  const int moved = *lost.begin();
  ASSERT_TRUE(imap.Append(UserName(moved), "INBOX", Message("while-paused")).ok());
  // B takes everything while A is still stopped (TTL 5 s + a round).
  ASSERT_TRUE(WaitUntil([&] { return Owned(b) == kPausedAccounts && Running(b) == accounts; }, seconds(15)))
      << Metrics(b);
  const auto took_over = std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - paused_at);
  ASSERT_EQ(ProcState(a.pid()), 'T');  // the window was real: A still stopped, B holds all
  ASSERT_TRUE(hook_.WaitFor(1, seconds(15)));
  EXPECT_EQ(hook_.Requests()[0].Json()["account"], AccountName(moved));
  ASSERT_EQ(ProcState(a.pid()), 'T');
  const auto stopped_for = std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - paused_at);
  std::cerr << "B held all accounts " << took_over.count() << " ms after the pause; A stopped for "
            << stopped_for.count() << " ms\n";
  const size_t mark = a.LogMark();
  ASSERT_EQ(kill(a.pid(), SIGCONT), 0);
  ExpectRejoinedWithoutDuplicates(a, b, accounts, lost, mark);
  for (MailhookProcess* r : {&a, &b}) {
    MH_ASSERT_OK_AND_ASSIGN(int code, r->Terminate());
    EXPECT_EQ(code, 0);
  }
}

}  // namespace
}  // namespace mailhook::testsupport
