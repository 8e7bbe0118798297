#pragma once
// ReplicasTest: replicas of `mailhook run` on one private PostgreSQL share the
// accounts of one private Dovecot (user01..user30), delivering to one webhook
// receiver; with helpers that read each replica's /metrics, /readyz and log.
// Skipped without PostgreSQL (server or libpq). Used by the replicas_*_test.cc.

#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <memory>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <httplib.h>

#include "postgres_server.h"
#include "testsupport.h"
#include "wait_until.h"

namespace mailhook::testsupport {

constexpr int kAccounts = 30;
constexpr int kReplicas = 3;

inline std::string AccountName(int i) {
  char n[16];
  std::snprintf(n, sizeof n, "acct%02d", i);
  return n;
}
inline std::string UserName(int i) {
  char n[16];
  std::snprintf(n, sizeof n, "user%02d", i);
  return n;
}

class ReplicasTest : public ::testing::Test {
 protected:
  using milliseconds = std::chrono::milliseconds;
  using seconds = std::chrono::seconds;

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
    // One receiver, a path per replica ("/r0", …): a request says who sent it.
    cfg.webhooks.push_back(WebhookYaml({"hook", hook_.url(HookPath(replica)), kTestWebhookSecret, ""}));
    cfg.extra = "store:\n  url: " + Quote(pg_.ConnectionUrl()) + "\n  lease_ttl: 5s\n";
    return RenderConfig(cfg);
  }

  std::string HookPath(const MailhookProcess& replica) const {
    for (size_t r = 0; r < replicas_.size(); ++r)
      if (replicas_[r].get() == &replica) return "/r" + std::to_string(r);
    return "/hook";
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
      ASSERT_TRUE(imap.Append(UserName(i), "INBOX", MessageWithSubject("after-rejoin-" + AccountName(i))).ok());
    const size_t expected = accounts.size() + 1;
    ASSERT_TRUE(hook_.WaitFor(expected, seconds(20))) << hook_.Requests().size();
    EXPECT_FALSE(hook_.WaitFor(expected + 1, seconds(3)));  // no late copy from either replica
    for (const auto& [id, count] : DeliveriesPerEventId()) EXPECT_EQ(count, 1) << "event " << id;
    std::map<std::string, int> per_account;
    for (const auto& req : hook_.Requests()) ++per_account[req.Json()["account"].get<std::string>()];
    for (int i : accounts) EXPECT_EQ(per_account[AccountName(i)], i == *lost.begin() ? 2 : 1) << AccountName(i);
    std::cerr << "A after waking, fenced commits:\n" << LogLinesWith(a, "store.fenced", mark);
  }

  // Every replica in `rs` holds its fair share of `accounts` ± 1, together
  // all of them, and each account has exactly one watcher.
  bool Settled(const std::vector<MailhookProcess*>& rs, const std::set<int>& accounts) const {
    const int n = static_cast<int>(accounts.size());
    const int r = static_cast<int>(rs.size());
    int total = 0;
    for (MailhookProcess* replica : rs) {
      const int owned = Owned(*replica);
      if (owned < n / r - 1 || owned > (n + r - 1) / r + 1) return false;  // shares still moving
      total += owned;
    }
    return total == n && EachAccountWatchedOnce(accounts);
  }

  // Waits until Settled() holds and no account moved between replicas for
  // 2 s (more than a keeper round, lease_ttl / 3): a share within ± 1 can be
  // a moment of a rebalancing still under way (11/10/9 handing one over).
  bool WaitSettled(const std::vector<MailhookProcess*>& rs, const std::set<int>& accounts, milliseconds timeout) const {
    std::vector<std::set<int>> last;
    auto since = std::chrono::steady_clock::now();
    return WaitUntil(
        [&] {
          std::vector<std::set<int>> now;
          for (MailhookProcess* replica : rs) now.push_back(Running(*replica));
          const auto at = std::chrono::steady_clock::now();
          if (now != last || !Settled(rs, accounts)) {
            last = std::move(now);
            since = at;
            return false;
          }
          return at - since >= seconds(2);
        },
        timeout);
  }

  std::vector<MailhookProcess*> AllReplicas() const {
    std::vector<MailhookProcess*> out;
    for (const auto& r : replicas_) out.push_back(r.get());
    return out;
  }

  static std::set<int> All() {
    std::set<int> all;
    for (int i = 1; i <= kAccounts; ++i) all.insert(i);
    return all;
  }

  PostgresServer pg_;
  DovecotServer dovecot_;
  WebhookReceiver hook_;
  std::vector<std::unique_ptr<MailhookProcess>> replicas_;
};

}  // namespace mailhook::testsupport
