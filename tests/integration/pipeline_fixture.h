#pragma once
/// PipelineTest: a fixture with the three real parts every end-to-end test
/// needs — a private Dovecot, a webhook receiver and a mailhook process —
/// plus helpers to start the daemon on a config built from them.

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "testsupport.h"

namespace mailhook::testsupport {

using std::chrono::milliseconds;
using std::chrono::seconds;

class PipelineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    MH_ASSERT_OK(dovecot_.Start());
    MH_ASSERT_OK(receiver_.Start());
  }

  /// Starts mailhook with one account (AccountSpec) and one signed webhook.
  void StartDaemon(const AccountSpec& account = {}, const std::string& webhook_extra = "",
                   const std::string& extra = "") {
    ConfigSpec cfg;
    cfg.state_dir = daemon_.state_dir();
    cfg.accounts.push_back(AccountYaml(dovecot_, account));
    cfg.webhooks.push_back(WebhookYaml({"hook", receiver_.url(), kTestWebhookSecret, webhook_extra}));
    cfg.extra = extra;
    MH_ASSERT_OK(daemon_.WriteConfig(RenderConfig(cfg)));
    MH_ASSERT_OK(daemon_.Start());
  }

  /// Waits until every watched folder has logged in and is idling.
  void WaitIdle(size_t folders = 1, size_t from = 0) {
    for (size_t i = 0; i < folders; ++i) {
      ASSERT_TRUE(daemon_.WaitForLog("imap.connected", seconds(20), from)) << daemon_.Log();
    }
    ASSERT_TRUE(dovecot_.WaitForSessions(folders, seconds(20)));
  }

  /// The events the receiver got, parsed.
  std::vector<nlohmann::json> Events() const {
    std::vector<nlohmann::json> out;
    for (const auto& r : receiver_.Requests()) out.push_back(r.Json());
    return out;
  }

  DovecotServer dovecot_;
  WebhookReceiver receiver_;
  MailhookProcess daemon_;
};

}  // namespace mailhook::testsupport
