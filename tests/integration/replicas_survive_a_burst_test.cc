// Replicas on one PostgreSQL (issue #11) while mail keeps arriving: a replica
// killed (-9) in the middle of a burst, with deliveries of its own still
// unanswered at the receiver, and PostgreSQL killed for longer than the lease
// TTL in the middle of a burst. Either way every message is delivered, and
// under one event id only: a delivery cut short by the kill is sent again by a
// survivor under the same webhook-id (at-least-once), never as a new event.
// While PostgreSQL is down every replica's /readyz says so. Skipped without
// PostgreSQL (server or libpq).

#include <signal.h>

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "replicas_fixture.h"

namespace mailhook::testsupport {
namespace {

// Appends one message to every account per round ("burst-R-acctNN"), from its
// own thread: the rounds before `gate_after` at once, the others after
// Release(), so a test can disturb the replicas with mail arriving on both
// sides of the disturbance.
class BurstAppender {
 public:
  BurstAppender(const DovecotServer& dovecot, std::set<int> accounts, int rounds, int gate_after)
      : imap_(dovecot), accounts_(std::move(accounts)), rounds_(rounds), gate_after_(gate_after) {
    thread_ = std::thread([this] { Run(); });
  }
  ~BurstAppender() {
    Release();
    if (thread_.joinable()) thread_.join();
  }
  BurstAppender(const BurstAppender&) = delete;
  BurstAppender& operator=(const BurstAppender&) = delete;

  void Release() {
    std::lock_guard<std::mutex> lock(mu_);
    released_ = true;
    cv_.notify_all();
  }
  // Waits for the last append; the first error, if any.
  util::Status Join() {
    Release();
    if (thread_.joinable()) thread_.join();
    return status_;
  }
  size_t total() const { return accounts_.size() * static_cast<size_t>(rounds_); }
  std::set<std::string> Subjects() const {
    std::set<std::string> out;
    for (int round = 0; round < rounds_; ++round)
      for (int i : accounts_) out.insert(Subject(round, i));
    return out;
  }
  static std::string Subject(int round, int account) {
    return "burst-" + std::to_string(round) + "-" + AccountName(account);
  }

 private:
  void Run() {
    for (int round = 0; round < rounds_; ++round) {
      if (round == gate_after_) {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return released_; });
      }
      for (int i : accounts_) {
        const std::string subject = Subject(round, i);
        auto uid = imap_.Append(UserName(i), "INBOX", MessageWithSubject(subject));
        if (!uid.ok() && status_.ok()) status_ = uid.error();
      }
    }
  }

  ImapClient imap_;
  const std::set<int> accounts_;
  const int rounds_;
  const int gate_after_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool released_ = false;  // guarded by mu_
  util::Status status_;    // written by the thread only, read after join
  std::thread thread_;
};

class ReplicasBurstTest : public ReplicasTest {
 protected:
  // Event ids per subject, over every request so far.
  std::map<std::string, std::set<std::string>> IdsPerSubject() const {
    std::map<std::string, std::set<std::string>> out;
    for (const auto& req : hook_.Requests())
      out[req.Json()["message"]["subject"].get<std::string>()].insert(req.Header("webhook-id"));
    return out;
  }

  // Every subject of `burst` delivered, each under exactly one event id;
  // checked again once the receiver has been quiet for 3 s, so a late copy
  // under a new id is seen too.
  void ExpectEachDeliveredUnderOneId(const BurstAppender& burst) {
    const std::set<std::string> subjects = burst.Subjects();
    std::map<std::string, std::set<std::string>> ids;
    ASSERT_TRUE(WaitUntil(
        [&] {
          ids = IdsPerSubject();
          for (const std::string& s : subjects)
            if (ids.count(s) == 0) return false;
          return true;
        },
        seconds(90)))
        << ids.size() << " of " << subjects.size() << " subjects delivered";
    ASSERT_TRUE(WaitQuiet(seconds(3), seconds(60))) << hook_.count() << " requests and counting";
    ids = IdsPerSubject();
    EXPECT_EQ(ids.size(), subjects.size());  // nothing else was delivered
    for (const auto& [subject, event_ids] : ids) EXPECT_EQ(event_ids.size(), 1u) << subject;
  }

  // Waits until no request arrived for `quiet`; false if requests still came after `timeout`.
  bool WaitQuiet(milliseconds quiet, milliseconds timeout) const {
    size_t seen = hook_.count();
    auto since = std::chrono::steady_clock::now();
    return WaitUntil(
        [&] {
          const auto now = std::chrono::steady_clock::now();
          if (hook_.count() != seen) {
            seen = hook_.count();
            since = now;
          }
          return now - since >= quiet;
        },
        timeout);
  }

  // Ids of the requests on `path` received less than `age` ago: the receiver
  // answers each after kDelay, so these are still waiting for their answer.
  std::set<std::string> Unanswered(const std::string& path, milliseconds age) const {
    std::set<std::string> out;
    const auto now = std::chrono::steady_clock::now();
    for (const auto& req : hook_.Requests()) {
      if (req.path == path && now - req.received_at < age) out.insert(req.Header("webhook-id"));
    }
    return out;
  }

  // How often each event id was sent on a path other than `path`.
  std::map<std::string, int> SentElsewhere(const std::string& path) const {
    std::map<std::string, int> out;
    for (const auto& req : hook_.Requests())
      if (req.path != path) ++out[req.Header("webhook-id")];
    return out;
  }

  static constexpr milliseconds kDelay{1500};
};

TEST_F(ReplicasBurstTest, AReplicaKilledDuringABurstLosesNothingAndSendsNothingUnderANewId) {
  for (auto& r : replicas_) MH_ASSERT_OK(r->Start());
  ASSERT_TRUE(WaitSettled(AllReplicas(), All(), seconds(60)));
  // Each answer comes late: deliveries are in flight when the kill comes.
  ScriptedResponse slow;
  slow.delay = kDelay;
  hook_.SetDefaultResponse(slow);
  BurstAppender burst(dovecot_, All(), 3, 1);
  // Kill replica 0 while the receiver holds one of its deliveries (its path
  // is /r0) unanswered.
  const std::string victim = HookPath(*replicas_[0]);
  std::set<std::string> cut_short;
  ASSERT_TRUE(WaitUntil(
      [&] {
        cut_short = Unanswered(victim, kDelay - milliseconds(500));
        return !cut_short.empty();
      },
      seconds(30)))
      << hook_.count() << " requests";
  replicas_[0]->Kill9();
  burst.Release();  // rounds 2 and 3 arrive after the kill
  MH_ASSERT_OK(burst.Join());
  // The deliveries the kill cut short: sent again by a survivor, same id
  // (once the dead replica's heartbeat is older than the TTL), and only once.
  std::map<std::string, int> again;
  ASSERT_TRUE(WaitUntil(
      [&] {
        again = SentElsewhere(victim);
        for (const std::string& id : cut_short)
          if (again[id] == 0) return false;
        return true;
      },
      seconds(60)));
  ASSERT_NO_FATAL_FAILURE(ExpectEachDeliveredUnderOneId(burst));
  again = SentElsewhere(victim);
  for (const std::string& id : cut_short) EXPECT_EQ(again[id], 1) << "event " << id;
  std::cerr << cut_short.size() << " deliveries cut short by the kill, sent again by a survivor under their ids; "
            << hook_.count() << " requests for " << burst.total() << " messages\n";
  EXPECT_EQ(Owned(*replicas_[1]) + Owned(*replicas_[2]), kAccounts);
  for (int r = 1; r < kReplicas; ++r) {
    MH_ASSERT_OK_AND_ASSIGN(int code, replicas_[r]->Terminate());
    EXPECT_EQ(code, 0);
  }
}

// PostgreSQL killed during a burst and kept down past the lease TTL: every
// replica says it is not ready and stops its sessions at its lease deadline;
// mail keeps arriving meanwhile. Back up, the replicas share the accounts
// again and every message is delivered under one id.
TEST_F(ReplicasBurstTest, PostgresqlDownLongerThanTheTtlDuringABurstLosesNothing) {
  for (auto& r : replicas_) MH_ASSERT_OK(r->Start());
  ASSERT_TRUE(WaitSettled(AllReplicas(), All(), seconds(60)));
  BurstAppender burst(dovecot_, All(), 3, 1);
  ASSERT_TRUE(hook_.WaitFor(5, seconds(30)));
  std::vector<size_t> marks;
  for (auto& r : replicas_) marks.push_back(r->LogMark());
  MH_ASSERT_OK(pg_.Kill());
  const auto down_at = std::chrono::steady_clock::now();
  const size_t delivered_before = hook_.count();
  burst.Release();
  for (int r = 0; r < kReplicas; ++r) {
    std::pair<int, std::string> answer;
    ASSERT_TRUE(WaitUntil(
        [&] {
          answer = Readyz(*replicas_[r]);
          return answer.first == 503 && answer.second.find("store: unreachable") != std::string::npos;
        },
        seconds(15)))
        << "replica " << r << ": " << answer.first << " " << answer.second;
    // Its leases could not be renewed: it stopped their sessions.
    ASSERT_TRUE(replicas_[r]->WaitForLog("cluster.lease_deadline", seconds(15), marks[r])) << replicas_[r]->Log();
  }
  // And they did: no IMAP session is left on the server.
  ASSERT_TRUE(WaitUntil([&] { return SessionsPerUser().empty(); }, seconds(15)));
  MH_ASSERT_OK(burst.Join());
  // Down for longer than the TTL (5 s) before it returns.
  ASSERT_TRUE(WaitUntil([&] { return std::chrono::steady_clock::now() - down_at > seconds(6); }, seconds(10)));
  std::cerr << "PostgreSQL down: " << delivered_before << " requests before it, " << hook_.count() - delivered_before
            << " during it; rounds 2 and 3 appended during it\n";
  MH_ASSERT_OK(pg_.Start());
  for (auto& r : replicas_)
    ASSERT_TRUE(WaitUntil([&] { return Readyz(*r).first == 200; }, seconds(40))) << Readyz(*r).second;
  ASSERT_NO_FATAL_FAILURE(ExpectEachDeliveredUnderOneId(burst));
  ASSERT_TRUE(WaitSettled(AllReplicas(), All(), seconds(60)));
  for (auto& r : replicas_) {
    MH_ASSERT_OK_AND_ASSIGN(int code, r->Terminate());
    EXPECT_EQ(code, 0);
  }
}

}  // namespace
}  // namespace mailhook::testsupport
