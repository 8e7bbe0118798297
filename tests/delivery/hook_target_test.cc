#include "delivery/hook_target.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>

#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <future>
#include <sstream>
#include <thread>

#include "delivery/dispatcher.h"
#include "store/open_store.h"
#include "temp_dir.h"

namespace mailhook::delivery {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr auto kWait = 10s;  // generous upper bound for any condition below

const util::CancelToken& Never() { return util::CancelToken::Never(); }

/// A private temp dir, removed with everything in it.
class HookDir {
 public:
  std::string operator/(const std::string& name) const { return dir_ / name; }

  /// Writes an executable sh script and returns its path.
  std::string Script(const std::string& name, const std::string& body) const {
    std::string path = *this / name;
    std::ofstream(path) << "#!/bin/sh\n" << body << "\n";
    fs::permissions(path, fs::perms::owner_all);
    return path;
  }

 private:
  testsupport::TempDir dir_{"mh_hook_"};
};

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// Polls a condition that another process makes true (no fd to wait on).
bool Eventually(const std::function<bool()>& cond, std::chrono::milliseconds limit = kWait) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (cond()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return cond();
}

/// True once `pid` has ended: gone, or a zombie waiting for init to reap it
/// (init's reaping delay is not ours to test).
bool Dead(pid_t pid) {
  std::string stat = ReadFile("/proc/" + std::to_string(pid) + "/stat");
  if (stat.empty()) return true;
  auto paren = stat.rfind(')');
  return paren == std::string::npos || paren + 2 >= stat.size() || stat[paren + 2] == 'Z' || stat[paren + 2] == 'X';
}

const std::string kPayload = R"({"id":"evt_abc","type":"message.received","secret_body":"TOPSECRET"})";

store::Delivery Row() {
  store::Delivery row;
  row.id = 7;
  row.item.event_id = "evt_abc";
  row.item.target = "hook:archive";
  row.item.account = "support";
  row.item.folder = "Support/Urgent";
  row.item.uidvalidity = 99;
  row.item.uid = 4711;
  row.item.payload = kPayload;
  return row;
}

config::Hook MakeHook(std::vector<std::string> command, config::Duration timeout = 10s) {
  config::Hook hook;
  hook.name = "archive";
  hook.command = std::move(command);
  hook.timeout = timeout;
  hook.retry_schedule = {10ms};
  return hook;
}

// A target from a hook whose env values are inline (Create resolves them).
std::unique_ptr<HookTarget> Build(config::Hook hook) {
  auto target = HookTarget::Create(hook);
  EXPECT_TRUE(target.ok()) << target.error().message();
  return std::move(target).value();
}

TEST(HookTargetTest, PassesEventOnStdinAndContractEnvironment) {
  HookDir dir;
  std::string script = dir.Script("hook.sh",
                                  "cat > \"$1/stdin\"\n"
                                  // The contract's names only: MAILHOOK_* of the test's own
                                  // environment (MAILHOOK_CORPUS_DIR …) passes through too.
                                  "env | grep -E '^MAILHOOK_(ACCOUNT|EVENT_ID|MAILBOX|UID)=' | sort > \"$1/env\"\n");
  auto built = Build(MakeHook({script, dir / ""}));
  HookTarget& target = *built;
  Outcome o = target.Deliver(Row(), Never());
  EXPECT_EQ(o.kind, OutcomeKind::kSuccess) << o.error;
  EXPECT_TRUE(o.error.empty());
  EXPECT_EQ(ReadFile(dir / "stdin"), kPayload);
  EXPECT_EQ(ReadFile(dir / "env"),
            "MAILHOOK_ACCOUNT=support\n"
            "MAILHOOK_EVENT_ID=evt_abc\n"
            "MAILHOOK_MAILBOX=Support/Urgent\n"
            "MAILHOOK_UID=4711\n");
}

TEST(HookTargetTest, GetsItsEnvAndPassEnvButNotTheDaemonsOtherVariables) {
  HookDir dir;
  ::setenv("MH_HOOK_TEST_DAEMON_SECRET", "daemon-only", 1);
  ::setenv("MH_HOOK_TEST_PROXY", "http://proxy:3128", 1);
  std::string script = dir.Script("env.sh", "env | sort > \"$1/env\"\n");
  config::Hook hook = MakeHook({script, dir / ""});
  hook.env = {{"TICKET_TOKEN", util::Secret("from-env-map")}, {"MAILHOOK_UID", util::Secret("spoofed")}};
  hook.pass_env = {"MH_HOOK_TEST_PROXY"};
  auto built = Build(std::move(hook));
  HookTarget& target = *built;
  Outcome o = target.Deliver(Row(), Never());
  ::unsetenv("MH_HOOK_TEST_DAEMON_SECRET");
  ::unsetenv("MH_HOOK_TEST_PROXY");
  ASSERT_EQ(o.kind, OutcomeKind::kSuccess) << o.error;
  std::string env = "\n" + ReadFile(dir / "env");  // every line starts with \n
  EXPECT_NE(env.find("\nTICKET_TOKEN=from-env-map\n"), std::string::npos) << env;
  EXPECT_NE(env.find("\nMH_HOOK_TEST_PROXY=http://proxy:3128\n"), std::string::npos) << env;
  EXPECT_EQ(env.find("daemon-only"), std::string::npos) << env;
  // The contract's variables win over a hook's env of the same name.
  EXPECT_NE(env.find("\nMAILHOOK_UID=4711\n"), std::string::npos) << env;
  EXPECT_EQ(env.find("spoofed"), std::string::npos) << env;
}

TEST(HookTargetTest, ArgumentsAreNotInterpretedByAShell) {
  HookDir dir;
  std::string script = dir.Script("args.sh", "printf '%s|' \"$@\" > \"$0.out\"");
  auto built = Build(MakeHook({script, "$HOME", "a b", "*", ";rm -rf /"}));
  HookTarget& target = *built;
  Outcome o = target.Deliver(Row(), Never());
  EXPECT_EQ(o.kind, OutcomeKind::kSuccess) << o.error;
  EXPECT_EQ(ReadFile(script + ".out"), "$HOME|a b|*|;rm -rf /|");
}

TEST(HookTargetTest, Exit75IsRetriedWithExitCodeAndStderr) {
  HookDir dir;
  std::string script = dir.Script("tempfail.sh", "cat >/dev/null\necho 'ticket API down' >&2\nexit 75");
  auto built = Build(MakeHook({script}));
  HookTarget& target = *built;
  Outcome o = target.Deliver(Row(), Never());
  EXPECT_EQ(o.kind, OutcomeKind::kRetry);
  EXPECT_FALSE(o.cancelled);
  EXPECT_NE(o.error.find("exit code 75"), std::string::npos) << o.error;
  EXPECT_NE(o.error.find("ticket API down"), std::string::npos) << o.error;
  EXPECT_NE(o.error.find("hooks.archive"), std::string::npos) << o.error;
}

TEST(HookTargetTest, OtherExitCodeIsPermanentAndNeverQuotesTheEvent) {
  HookDir dir;
  // The script echoes its stdin to stdout: the event must not leak into the
  // error through either stream being reported.
  std::string script = dir.Script("fail.sh", "cat\necho 'bad input' >&2\nexit 1");
  auto built = Build(MakeHook({script}));
  HookTarget& target = *built;
  Outcome o = target.Deliver(Row(), Never());
  EXPECT_EQ(o.kind, OutcomeKind::kPermanent);
  EXPECT_NE(o.error.find("exit code 1 "), std::string::npos) << o.error;
  EXPECT_NE(o.error.find("bad input"), std::string::npos) << o.error;
  EXPECT_EQ(o.error.find("TOPSECRET"), std::string::npos) << o.error;
}

TEST(HookTargetTest, ItsEnvSecretsAreRedactedFromTheReportedStderr) {
  HookDir dir;
  // What `curl -v` or `set -x` does: print the token on stderr, then fail.
  std::string script =
      dir.Script("leak.sh", "cat >/dev/null\necho \"Authorization: Bearer $TICKET_TOKEN\" >&2\nexit 75");
  config::Hook hook = MakeHook({script});
  hook.env = {{"TICKET_TOKEN", util::Secret("tok-3141592653")}};
  auto built = Build(std::move(hook));
  HookTarget& target = *built;
  Outcome o = target.Deliver(Row(), Never());
  EXPECT_EQ(o.kind, OutcomeKind::kRetry);
  EXPECT_EQ(o.error.find("tok-3141592653"), std::string::npos) << o.error;
  EXPECT_NE(o.error.find("Authorization: Bearer <redacted>"), std::string::npos) << o.error;
}

TEST(HookTargetTest, ReportsOnlyTheTailOfALongStderr) {
  HookDir dir;
  std::string script = dir.Script("noisy.sh",
                                  "i=0; while [ $i -lt 2000 ]; do echo \"line $i of noise\" >&2; i=$((i+1)); done\n"
                                  "echo 'the real reason' >&2\nexit 3");
  auto built = Build(MakeHook({script}));
  HookTarget& target = *built;
  Outcome o = target.Deliver(Row(), Never());
  EXPECT_EQ(o.kind, OutcomeKind::kPermanent);
  EXPECT_NE(o.error.find("the real reason"), std::string::npos);
  EXPECT_EQ(o.error.find("line 0 of noise"), std::string::npos);
  EXPECT_EQ(o.error.find('\n'), std::string::npos) << "one line for the logs";
  EXPECT_LT(o.error.size(), HookTarget::kStderrTail + 200);
}

TEST(HookTargetTest, DeathBySignalIsPermanent) {
  HookDir dir;
  std::string script = dir.Script("segv.sh", "kill -SEGV $$");
  auto built = Build(MakeHook({script}));
  HookTarget& target = *built;
  Outcome o = target.Deliver(Row(), Never());
  EXPECT_EQ(o.kind, OutcomeKind::kPermanent);
  EXPECT_NE(o.error.find("SIGSEGV"), std::string::npos) << o.error;
}

TEST(HookTargetTest, HangIsKilledAtTimeoutWithItsGrandchildren) {
  HookDir dir;
  // The grandchild (a background sleep) holds no pipe of ours, so only the
  // group kill can end it.
  std::string script = dir.Script("hang.sh",
                                  "sleep 1000 </dev/null >/dev/null 2>&1 &\n"
                                  "echo $! > \"$1/grandchild\"\n"
                                  "echo 'started' >&2\n"
                                  "sleep 1000");
  auto built = Build(MakeHook({script, dir / ""}, 500ms));
  HookTarget& target = *built;
  auto start = std::chrono::steady_clock::now();
  Outcome o = target.Deliver(Row(), Never());
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(o.kind, OutcomeKind::kRetry);
  EXPECT_FALSE(o.cancelled);
  EXPECT_NE(o.error.find("timeout of 500 ms"), std::string::npos) << o.error;
  EXPECT_LT(took, 5s);
  std::string pid_text = ReadFile(dir / "grandchild");
  ASSERT_FALSE(pid_text.empty());
  pid_t grandchild = std::stoi(pid_text);
  EXPECT_TRUE(Eventually([&] { return Dead(grandchild); })) << "grandchild " << grandchild << " survived the timeout";
}

TEST(HookTargetTest, MissingExecutableIsPermanentAndNamesPathAndFix) {
  auto built = Build(MakeHook({"/nonexistent/mailhook-hook.sh", "x"}));
  HookTarget& target = *built;
  Outcome o = target.Deliver(Row(), Never());
  EXPECT_EQ(o.kind, OutcomeKind::kPermanent);
  EXPECT_NE(o.error.find("/nonexistent/mailhook-hook.sh"), std::string::npos) << o.error;
  EXPECT_NE(o.error.find("fix hooks.archive.command"), std::string::npos) << o.error;
}

TEST(HookTargetTest, NonExecutableFileIsPermanent) {
  HookDir dir;
  std::string path = dir / "plain.txt";
  std::ofstream(path) << "not a program\n";
  fs::permissions(path, fs::perms::owner_read | fs::perms::owner_write);
  auto built = Build(MakeHook({path}));
  HookTarget& target = *built;
  Outcome o = target.Deliver(Row(), Never());
  EXPECT_EQ(o.kind, OutcomeKind::kPermanent);
  EXPECT_NE(o.error.find(path), std::string::npos) << o.error;
}

TEST(HookTargetTest, CancelEndsARunningHookPromptly) {
  HookDir dir;
  std::string script = dir.Script("slow.sh",
                                  "sleep 1000 </dev/null >/dev/null 2>&1 &\n"
                                  "echo $! > \"$1/grandchild.tmp\"\n"
                                  "mv \"$1/grandchild.tmp\" \"$1/grandchild\"\n"
                                  "sleep 1000");
  auto built = Build(MakeHook({script, dir / ""}, 60s));
  HookTarget& target = *built;
  util::CancelToken stop;
  auto future = std::async(std::launch::async, [&] { return target.Deliver(Row(), stop); });
  ASSERT_TRUE(Eventually([&] { return fs::exists(dir / "grandchild"); }));
  auto start = std::chrono::steady_clock::now();
  stop.Cancel();
  ASSERT_EQ(future.wait_for(kWait), std::future_status::ready);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  Outcome o = future.get();
  EXPECT_TRUE(o.cancelled);
  pid_t grandchild = std::stoi(ReadFile(dir / "grandchild"));
  EXPECT_TRUE(Eventually([&] { return Dead(grandchild); }));

  // A token is per call: another call's token is untouched.
  auto quick_built = Build(MakeHook({dir.Script("ok.sh", "exit 0")}));
  HookTarget& quick = *quick_built;
  EXPECT_EQ(quick.Deliver(Row(), Never()).kind, OutcomeKind::kSuccess);
}

TEST(HookTargetTest, TokenThatFiredBeforeTheCallRunsNothing) {
  // A shutdown landing between the dispatcher's last check and Deliver: the
  // call sees it and the command never starts (it would leave a file).
  HookDir dir;
  auto built = Build(MakeHook({dir.Script("touch.sh", "touch \"$1/ran\"; sleep 1000"), dir / ""}, 60s));
  HookTarget& target = *built;
  util::CancelToken stop;
  stop.Cancel();
  auto start = std::chrono::steady_clock::now();
  Outcome o = target.Deliver(Row(), stop);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  EXPECT_TRUE(o.cancelled);
  EXPECT_FALSE(fs::exists(dir / "ran"));
}

TEST(HookTargetTest, ConcurrentDeliveriesEachGetTheirOwnChild) {
  HookDir dir;
  std::string script = dir.Script("id.sh", "cat > \"$1/$MAILHOOK_UID\"");
  auto built = Build(MakeHook({script, dir / ""}));
  HookTarget& target = *built;
  std::vector<std::future<Outcome>> runs;
  for (uint32_t uid = 1; uid <= 8; ++uid) {
    runs.push_back(std::async(std::launch::async, [&, uid] {
      store::Delivery row = Row();
      row.item.uid = uid;
      row.item.payload = "{\"uid\":" + std::to_string(uid) + "}";
      return target.Deliver(row, Never());
    }));
  }
  for (auto& r : runs) EXPECT_EQ(r.get().kind, OutcomeKind::kSuccess);
  for (uint32_t uid = 1; uid <= 8; ++uid) {
    EXPECT_EQ(ReadFile(dir / std::to_string(uid)), "{\"uid\":" + std::to_string(uid) + "}");
  }
}

TEST(HookTargetTest, DispatcherRunsConfiguredHooksAndRetriesExit75) {
  HookDir dir;
  // First run: exit 75; second run: success. The counter file survives between runs.
  std::string script = dir.Script("flaky.sh",
                                  "cat > \"$1/last\"\n"
                                  "if [ ! -e \"$1/failed_once\" ]; then touch \"$1/failed_once\"; "
                                  "echo 'try later' >&2; exit 75; fi\n"
                                  "exit 0");
  fs::create_directory(dir / "state");
  config::Config cfg;
  cfg.state_dir = dir / "state";
  cfg.hooks.push_back(MakeHook({script, dir / ""}));
  {
    auto store = store::OpenStore({.state_dir = cfg.state_dir});
    ASSERT_TRUE(store.ok()) << store.error().ToString();
    store::OutboxItem item = Row().item;
    ASSERT_TRUE((*store)->CommitMessages("support", "Support/Urgent", {99, 4711}, {item}).ok());
  }
  std::mutex mu;
  std::condition_variable cv;
  std::vector<Report> reports;
  util::MetricsCatalog metrics;
  Dispatcher dispatcher(cfg, "test", metrics);
  dispatcher.SetOnOutcome([&](const Report& r) {
    std::lock_guard lock(mu);
    reports.push_back(r);
    cv.notify_all();
  });
  ASSERT_TRUE(dispatcher.Start().ok());
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(
        cv.wait_for(lock, kWait, [&] { return !reports.empty() && reports.back().result == OutcomeKind::kSuccess; }));
  }
  dispatcher.Stop();
  ASSERT_EQ(reports.size(), 2u);
  EXPECT_EQ(reports[0].target, "hook:archive");
  EXPECT_EQ(reports[0].result, OutcomeKind::kRetry);
  EXPECT_NE(reports[0].outcome.error.find("try later"), std::string::npos);
  EXPECT_EQ(reports[1].result, OutcomeKind::kSuccess);
  EXPECT_EQ(reports[1].attempts, 2);
  EXPECT_EQ(ReadFile(dir / "last"), kPayload);
}

}  // namespace
}  // namespace mailhook::delivery
