// A proxy black-holes mailhook's IMAP sessions (TCP stays up, nothing is
// forwarded either way): with DEFAULT settings (no liveness_interval,
// idle_refresh or timeout in the config) the liveness round trip finds it
// within 3 minutes (60 s interval + 30 s deadline), the sessions are
// replaced, and every message appended meanwhile is delivered exactly once.
// The one slow test of the liveness work (~90 s); the IDLE path with a short
// interval takes seconds, and the timer logic is unit-tested
// (account_watcher_test.cc, tests/imap/session_liveness_test.cc).

#include <set>

#include "pipeline_fixture.h"
#include "tcp_proxy.h"

namespace mailhook::testsupport {
namespace {

using SteadyClock = std::chrono::steady_clock;

// The account's YAML with the port of `proxy` instead of Dovecot's.
std::string ViaProxy(const DovecotServer& dovecot, const TcpProxy& proxy, const AccountSpec& spec = {}) {
  std::string yaml = AccountYaml(dovecot, spec);
  const std::string direct = "port: " + std::to_string(dovecot.imaps_port());
  const size_t at = yaml.find(direct);
  if (at == std::string::npos) return "";
  return yaml.replace(at, direct.size(), "port: " + std::to_string(proxy.port()));
}

std::multiset<uint32_t> Uids(const std::vector<nlohmann::json>& events) {
  std::multiset<uint32_t> uids;
  for (const auto& e : events) uids.insert(e["uid"].get<uint32_t>());
  return uids;
}

TEST_F(PipelineTest, BlackHoledSessionIsReplacedWithinThreeMinutesWithDefaultSettings) {
  TcpProxy proxy(dovecot_.imaps_port());
  ConfigSpec cfg;
  cfg.state_dir = daemon_.state_dir();
  cfg.accounts.push_back(ViaProxy(dovecot_, proxy));
  ASSERT_FALSE(cfg.accounts.back().empty()) << AccountYaml(dovecot_, AccountSpec{});
  ASSERT_EQ(cfg.accounts.back().find("liveness"), std::string::npos) << "defaults only";
  ASSERT_EQ(cfg.accounts.back().find("idle_refresh"), std::string::npos) << "defaults only";
  cfg.webhooks.push_back(WebhookYaml({"hook", receiver_.url(), kTestWebhookSecret, ""}));
  MH_ASSERT_OK(daemon_.WriteConfig(RenderConfig(cfg)));
  MH_ASSERT_OK(daemon_.Start());
  // NOTIFY (Dovecot offers it): the worker and the NOTIFY connection, both through the proxy.
  ASSERT_TRUE(daemon_.WaitForLog("mode=notify", seconds(20))) << daemon_.Log();
  ASSERT_TRUE(dovecot_.WaitForSessions(2, seconds(20)));
  ImapClient imap(dovecot_);
  MH_ASSERT_OK(imap.Append("alice", "INBOX", SampleMessage("plain_utf8.eml")));
  ASSERT_TRUE(receiver_.WaitFor(1, seconds(20))) << daemon_.Log();
  ASSERT_EQ(proxy.forwarding(), 2);
  const int accepted_before = proxy.accepted();

  const size_t mark = daemon_.LogMark();
  const auto holed_at = SteadyClock::now();
  ASSERT_EQ(proxy.BlackHole(), 2);
  // Appended straight to Dovecot while every session of mailhook's is black-holed.
  MH_ASSERT_OK(imap.Append("alice", "INBOX", SampleMessage("latin1_qp.eml")));
  MH_ASSERT_OK(imap.Append("alice", "INBOX", SampleMessage("alternative.eml")));

  const auto deadline = holed_at + std::chrono::minutes(3);
  auto left = [&] { return std::chrono::duration_cast<milliseconds>(deadline - SteadyClock::now()); };
  ASSERT_TRUE(daemon_.WaitForLog("imap.liveness_failed", left(), mark)) << daemon_.Log();
  ASSERT_TRUE(receiver_.WaitFor(3, left())) << daemon_.Log();
  const auto replaced_after = std::chrono::duration_cast<seconds>(SteadyClock::now() - holed_at);
  EXPECT_LT(replaced_after, std::chrono::minutes(3));
  // The hole was hit: the round trip's bytes were swallowed, and the
  // messages came over new connections.
  EXPECT_GT(proxy.swallowed(), 0u);
  EXPECT_GT(proxy.accepted(), accepted_before);
  EXPECT_TRUE(daemon_.WaitForLog("imap.reconnect", seconds(1), mark)) << daemon_.Log();
  std::cerr << "black hole found and replaced after " << replaced_after.count() << " s, " << proxy.swallowed()
            << " bytes swallowed\n";

  // Exactly once each: one more message gives a duplicate the chance to show.
  MH_ASSERT_OK(imap.Append("alice", "INBOX", SampleMessage("mixed_attachment.eml")));
  ASSERT_TRUE(receiver_.WaitFor(4, seconds(20))) << daemon_.Log();
  EXPECT_EQ(Uids(Events()), (std::multiset<uint32_t>{1, 2, 3, 4}));
}

TEST_F(PipelineTest, BlackHoledIdleConnectionsAreReplacedWithinTheConfiguredLiveness) {
  // Without NOTIFY (an IDLE connection per folder: Session::Idle's DONE) and a
  // short interval, so this path costs seconds: detection within 2 s + 3 s.
  TcpProxy proxy(dovecot_.imaps_port());
  AccountSpec spec;
  spec.extra = "notify: \"off\", liveness_interval: 2s, timeout: 3s";
  ConfigSpec cfg;
  cfg.state_dir = daemon_.state_dir();
  cfg.accounts.push_back(ViaProxy(dovecot_, proxy, spec));
  cfg.webhooks.push_back(WebhookYaml({"hook", receiver_.url(), kTestWebhookSecret, ""}));
  MH_ASSERT_OK(daemon_.WriteConfig(RenderConfig(cfg)));
  MH_ASSERT_OK(daemon_.Start());
  ASSERT_TRUE(daemon_.WaitForLog("mode=idle", seconds(20))) << daemon_.Log();
  ASSERT_TRUE(dovecot_.WaitForSessions(2, seconds(20)));
  ASSERT_TRUE(daemon_.WaitForLog("imap.idle account=test folder=INBOX", seconds(20))) << daemon_.Log();

  const size_t mark = daemon_.LogMark();
  ASSERT_EQ(proxy.BlackHole(), 2);
  ImapClient imap(dovecot_);
  MH_ASSERT_OK(imap.Append("alice", "INBOX", SampleMessage("plain_utf8.eml")));
  MH_ASSERT_OK(imap.Append("alice", "INBOX", SampleMessage("latin1_qp.eml")));
  ASSERT_TRUE(
      daemon_.WaitForLog("imap.liveness_failed account=test connection=idle:INBOX deadline_s=3", seconds(20), mark))
      << daemon_.Log();
  ASSERT_TRUE(receiver_.WaitFor(2, seconds(20))) << daemon_.Log();
  EXPECT_GT(proxy.swallowed(), 0u);
  MH_ASSERT_OK(imap.Append("alice", "INBOX", SampleMessage("alternative.eml")));
  ASSERT_TRUE(receiver_.WaitFor(3, seconds(20))) << daemon_.Log();
  EXPECT_EQ(Uids(Events()), (std::multiset<uint32_t>{1, 2, 3}));
}

}  // namespace
}  // namespace mailhook::testsupport
