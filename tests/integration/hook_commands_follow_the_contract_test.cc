// Hook commands in the running daemon: exit 75 is retried, a hook that hangs
// is killed (with its children) at its timeout, and kill -9 during delivery
// loses nothing for any target — repeats carry the same id.

#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "pipeline_fixture.h"

namespace mailhook::testsupport {
namespace {

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string WriteScript(const std::string& path, const std::string& body) {
  std::ofstream(path) << "#!/bin/sh\n" << body;
  chmod(path.c_str(), 0755);
  return path;
}

class HookTest : public PipelineTest {
 protected:
  void StartWithHook(const std::string& hook_flow_map, const std::string& webhook_extra = "") {
    ConfigSpec cfg;
    cfg.state_dir = daemon_.state_dir();
    cfg.accounts.push_back(AccountYaml(dovecot_, {}));
    cfg.webhooks.push_back(WebhookYaml({"hook", receiver_.url(), kTestWebhookSecret, webhook_extra}));
    cfg.hooks.push_back(hook_flow_map);
    MH_ASSERT_OK(daemon_.WriteConfig(RenderConfig(cfg)));
    MH_ASSERT_OK(daemon_.Start());
    WaitIdle();
  }
  std::string Path(const std::string& name) const { return daemon_.dir() + "/" + name; }
};

TEST_F(HookTest, TempFailIsRetriedAndTheHookSeesTheContractEnvironment) {
  // First run: exit 75 (EX_TEMPFAIL). Second: record stdin and the environment.
  std::string script = WriteScript(Path("flaky.sh"), R"(
dir=$(dirname "$0")
if [ ! -e "$dir/tried" ]; then touch "$dir/tried"; exit 75; fi
cat > "$dir/event.json"
env | grep '^MAILHOOK_' | sort > "$dir/env.txt"
)");
  StartWithHook("{name: flaky, command: [" + Quote(script) + "], timeout: 10s, retry_schedule: [1s, 1s, 1s]}");
  ImapClient imap(dovecot_);
  MH_ASSERT_OK_AND_ASSIGN(uint32_t uid, imap.Append("alice", "INBOX", SampleMessage("plain_utf8.eml")));
  ASSERT_TRUE(daemon_.WaitForLog("delivery.ok hook=flaky", seconds(30))) << daemon_.Log();
  EXPECT_NE(daemon_.Log().find("delivery.retry hook=flaky"), std::string::npos) << daemon_.Log();

  nlohmann::json e = nlohmann::json::parse(ReadAll(Path("event.json")), nullptr, false);
  ASSERT_FALSE(e.is_discarded());
  EXPECT_EQ(e["uid"], uid);
  std::string env = ReadAll(Path("env.txt"));
  EXPECT_NE(env.find("MAILHOOK_ACCOUNT=test"), std::string::npos) << env;
  EXPECT_NE(env.find("MAILHOOK_MAILBOX=INBOX"), std::string::npos) << env;
  EXPECT_NE(env.find("MAILHOOK_UID=" + std::to_string(uid)), std::string::npos) << env;
  EXPECT_NE(env.find("MAILHOOK_EVENT_ID=" + e["id"].get<std::string>()), std::string::npos) << env;
}

TEST_F(HookTest, HangingHookIsKilledWithItsChildrenAtTheTimeout) {
  std::string marker = "mailhook-hang-" + std::to_string(getpid());
  // Durations unique to this test process, so another run's sleeps never match.
  const std::string d1 = std::to_string(300 + getpid() % 600), d2 = std::to_string(901 + getpid() % 600);
  std::string script = WriteScript(Path("hang.sh"), "sleep " + d1 + " & sleep " + d2 + "\n");
  StartWithHook("{name: hang, command: [" + Quote(script) + ", " + Quote(marker) +
                "], timeout: 1s, retry_schedule: [1h]}");
  ImapClient imap(dovecot_);
  MH_ASSERT_OK(imap.Append("alice", "INBOX", SampleMessage("plain_utf8.eml")));
  ASSERT_TRUE(daemon_.WaitForLog("delivery.retry hook=hang", seconds(30))) << daemon_.Log();
  EXPECT_NE(daemon_.Log().find("killed with its whole process group"), std::string::npos) << daemon_.Log();
  // No sleep of the hook survives (its process group was killed). SIGKILL
  // is asynchronous: the background sleep may take a moment to disappear,
  // while a survivor would stay for minutes.
  const std::string pattern = "^sleep (" + d1 + "|" + d2 + ")$";
  CommandResult ps;
  for (auto deadline = std::chrono::steady_clock::now() + seconds(10);;) {
    MH_ASSERT_OK_AND_ASSIGN(ps, RunCommand({"pgrep", "-f", pattern}, seconds(5)));
    if (ps.exit_code != 0 || std::chrono::steady_clock::now() > deadline) break;
    std::this_thread::sleep_for(milliseconds(50));
  }
  EXPECT_NE(ps.exit_code, 0) << "left-over processes: " << ps.out;
}

TEST_F(HookTest, Kill9DuringDeliveryReachesEveryTargetWithStableIds) {
  // The webhook answers slowly, so the kill lands mid-delivery.
  receiver_.SetDefaultResponse({200, {}, "ok", milliseconds(3000)});
  std::string jsonl = Path("events.jsonl");
  std::string hook = std::string(MAILHOOK_SOURCE_DIR) + "/hooks/append-jsonl.sh";
  StartWithHook("{name: log, command: [" + Quote(hook) + ", " + Quote(jsonl) + "], timeout: 10s}",
                "timeout: 10s, retry_schedule: [1s, 1s, 1s, 1s]");
  ImapClient imap(dovecot_);
  std::set<uint32_t> uids;
  for (const char* s : {"plain_utf8.eml", "latin1_qp.eml", "alternative.eml"}) {
    MH_ASSERT_OK_AND_ASSIGN(uint32_t uid, imap.Append("alice", "INBOX", SampleMessage(s)));
    uids.insert(uid);
  }
  ASSERT_TRUE(receiver_.WaitFor(1, seconds(20))) << daemon_.Log();  // one request in flight
  daemon_.Kill9();
  // The kill landed mid-delivery (the window this test is about): no webhook
  // delivery had finished, the first answer was still 3 s away. Else the
  // test proved nothing about a kill during delivery.
  ASSERT_EQ(daemon_.Log().find("delivery.ok webhook="), std::string::npos) << "the kill missed the window\n"
                                                                           << daemon_.Log();

  receiver_.SetDefaultResponse({200, {}, "ok", milliseconds(0)});
  MH_ASSERT_OK(daemon_.Restart());
  std::set<uint32_t> webhook_ok;
  for (size_t n = 2; webhook_ok.size() < uids.size(); ++n) {
    ASSERT_TRUE(receiver_.WaitFor(n, seconds(30))) << daemon_.Log();
    webhook_ok.clear();
    for (const auto& r : receiver_.Requests())
      if (r.answered_status == 200) webhook_ok.insert(r.Json()["uid"].get<uint32_t>());
  }
  EXPECT_EQ(webhook_ok, uids);

  // The hook target got every event too (it may have run twice for one).
  std::map<uint32_t, std::set<std::string>> hook_ids;
  for (int tries = 0; tries < 300; ++tries) {
    hook_ids.clear();
    std::istringstream lines(ReadAll(jsonl));
    for (std::string line; std::getline(lines, line);) {
      auto e = nlohmann::json::parse(line, nullptr, false);
      if (!e.is_discarded()) hook_ids[e["uid"].get<uint32_t>()].insert(e["id"].get<std::string>());
    }
    if (hook_ids.size() == uids.size()) break;
    daemon_.WaitForLog("delivery.ok hook=log", milliseconds(100), daemon_.LogMark());
  }
  ASSERT_EQ(hook_ids.size(), uids.size()) << ReadAll(jsonl) << daemon_.Log();

  // Repeats carry the same id, and the webhook and the hook agree on it.
  std::map<uint32_t, std::set<std::string>> webhook_ids;
  for (const auto& r : receiver_.Requests())
    webhook_ids[r.Json()["uid"].get<uint32_t>()].insert(r.Header("webhook-id"));
  for (uint32_t uid : uids) {
    EXPECT_EQ(webhook_ids[uid].size(), 1u) << uid;
    EXPECT_EQ(hook_ids[uid], webhook_ids[uid]) << uid;
  }
}

}  // namespace
}  // namespace mailhook::testsupport
