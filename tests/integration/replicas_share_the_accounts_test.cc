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

#include <chrono>
#include <map>
#include <set>
#include <string>

#include "replicas_fixture.h"

namespace mailhook::testsupport {
namespace {

TEST_F(ReplicasTest, EachAccountIsWatchedByExactlyOneReplicaAndEachHoldsItsShare) {
  for (auto& r : replicas_) MH_ASSERT_OK(r->Start());
  // Shares settle: the first replica takes everything, then gives back one
  // account per round (lease_ttl/3) while the others join.
  ASSERT_TRUE(WaitSettled(AllReplicas(), All(), seconds(60)))
      << Metrics(*replicas_[0]) << Metrics(*replicas_[1]) << Metrics(*replicas_[2]);
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
  for (int i : targets) ASSERT_TRUE(imap.Append(UserName(i), "INBOX", MessageWithSubject("to-" + AccountName(i))).ok());
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
  ASSERT_TRUE(WaitSettled(AllReplicas(), All(), seconds(60)));
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
  ASSERT_TRUE(imap.Append(UserName(moved), "INBOX", MessageWithSubject("while-moving")).ok());
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
  ASSERT_TRUE(imap.Append(UserName(7), "INBOX", MessageWithSubject("after-restart")).ok());
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
  ASSERT_TRUE(imap.Append(UserName(moved), "INBOX", MessageWithSubject("while-paused")).ok());
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
