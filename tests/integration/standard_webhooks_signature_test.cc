// mailhook's webhook signatures verify with an independent implementation:
// the `standardwebhooks` package from the npm registry (the spec's reference
// JavaScript library), for a single secret and for a rotated secret list
// where the consumer knows only the new secret, or only the old one.
//
// The verifier lives in support/verify_standardwebhooks/ (package.json and
// package-lock.json pin the version; scripts/deps installs node_modules, and
// this test installs it itself when it is missing).

#include <openssl/evp.h>

#include <algorithm>
#include <filesystem>

#include "pipeline_fixture.h"

namespace mailhook::testsupport {
namespace {

// From the configured source dir, not __FILE__: ccache (CCACHE_BASEDIR)
// makes __FILE__ relative to the build directory.
const std::string kVerifierDir =
    std::string(MAILHOOK_SOURCE_DIR) + "/tests/integration/support/verify_standardwebhooks";

// Two more valid secrets: base64 of bytes 0x40..0x5f and 0x80..0x9f.
constexpr const char* kNewSecret = "whsec_QEFCQ0RFRkdISUpLTE1OT1BRUlNUVVZXWFlaW1xdXl8=";
constexpr const char* kUnrelatedSecret = "whsec_gIGCg4SFhoeIiYqLjI2Oj5CRkpOUlZaXmJmam5ydnp8=";

std::string Base64(const std::string& in) {
  std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()), static_cast<int>(in.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

class StandardWebhooksSignatureTest : public PipelineTest {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(InstallVerifier());
    PipelineTest::SetUp();
  }

  /// npm install into the verifier's folder unless it is there; flock keeps
  /// parallel test processes (plain and ASan builds) from installing at once.
  static void InstallVerifier() {
    if (std::filesystem::exists(kVerifierDir + "/node_modules/standardwebhooks/package.json")) return;
    ChildOptions options;
    options.working_dir = kVerifierDir;
    MH_ASSERT_OK_AND_ASSIGN(CommandResult r, RunCommand({"flock", kVerifierDir + "/.npm-install.lock", "sh", "-c",
                                                         "test -e node_modules/standardwebhooks/package.json || "
                                                         "npm install --no-audit --no-fund --loglevel=error"},
                                                        std::chrono::minutes(3), options));
    ASSERT_EQ(r.exit_code, 0) << "npm install of the standardwebhooks verifier failed (run "
                                 "scripts/deps, which needs nodejs, npm and the npm registry):\n"
                              << r.err;
  }

  /// Runs verify.js on a recorded request with one secret; returns its result.
  CommandResult Verify(const std::string& secret, const RecordedRequest& req) {
    nlohmann::json input = {{"secret", secret},
                            {"headers",
                             {{"webhook-id", req.Header("webhook-id")},
                              {"webhook-timestamp", req.Header("webhook-timestamp")},
                              {"webhook-signature", req.Header("webhook-signature")}}},
                            {"body_base64", Base64(req.body)}};
    std::string path = scratch_.Sub("verify-input-" + std::to_string(++inputs_) + ".json");
    EXPECT_TRUE(WriteFile(path, input.dump()));
    ChildOptions options;
    options.stdin_path = path;
    auto r = RunCommand({"node", kVerifierDir + "/verify.js"}, seconds(60), options);
    EXPECT_TRUE(r.ok()) << "cannot run node (install nodejs: scripts/deps)";
    return r.ok() ? *r : CommandResult{};
  }

  /// Appends one message and returns the request the receiver recorded.
  RecordedRequest DeliverOne() {
    ImapClient imap(dovecot_);
    auto uid = imap.Append("alice", "INBOX", SampleMessage("plain_utf8.eml"));
    EXPECT_TRUE(uid.ok());
    EXPECT_TRUE(receiver_.WaitFor(1, seconds(20))) << daemon_.Log();
    auto requests = receiver_.Requests();
    return requests.empty() ? RecordedRequest{} : requests[0];
  }

  TempDir scratch_{"mailhook-swh-"};
  int inputs_ = 0;
};

TEST_F(StandardWebhooksSignatureTest, SingleSecretVerifies) {
  StartDaemon();
  WaitIdle();
  RecordedRequest req = DeliverOne();
  ASSERT_FALSE(req.body.empty());
  ASSERT_FALSE(req.Header("webhook-signature").empty());

  CommandResult ok = Verify(kTestWebhookSecret, req);
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_EQ(ok.out, "verified " + req.Header("webhook-id") + "\n");

  // The verifier really checks: a wrong secret and a changed body fail.
  CommandResult wrong = Verify(kUnrelatedSecret, req);
  EXPECT_EQ(wrong.exit_code, 1) << wrong.out;
  EXPECT_NE(wrong.err.find("No matching signature"), std::string::npos) << wrong.err;
  RecordedRequest tampered = req;
  tampered.body.back() = tampered.body.back() == '}' ? ' ' : '}';
  EXPECT_EQ(Verify(kTestWebhookSecret, tampered).exit_code, 1);
}

TEST_F(StandardWebhooksSignatureTest, RotatedSecretsVerifyWithEitherTheNewOrTheOld) {
  ConfigSpec cfg;
  cfg.state_dir = daemon_.state_dir();
  cfg.accounts.push_back(AccountYaml(dovecot_, {}));
  cfg.webhooks.push_back(WebhookYaml(
      {"hook", receiver_.url(), "", "secret: [" + Quote(kTestWebhookSecret) + ", " + Quote(kNewSecret) + "]"}));
  MH_ASSERT_OK(daemon_.WriteConfig(RenderConfig(cfg)));
  MH_ASSERT_OK(daemon_.Start());
  WaitIdle();
  RecordedRequest req = DeliverOne();
  ASSERT_FALSE(req.body.empty());

  // One "v1,<sig>" per secret, space-separated (Standard Webhooks, rotation).
  std::string signatures = req.Header("webhook-signature");
  EXPECT_EQ(std::count(signatures.begin(), signatures.end(), ' '), 1) << signatures;

  CommandResult with_new = Verify(kNewSecret, req);
  EXPECT_EQ(with_new.exit_code, 0) << "consumer that already switched to the new secret: " << with_new.err;
  CommandResult with_old = Verify(kTestWebhookSecret, req);
  EXPECT_EQ(with_old.exit_code, 0) << "consumer still on the old secret: " << with_old.err;
  EXPECT_EQ(Verify(kUnrelatedSecret, req).exit_code, 1);
}

}  // namespace
}  // namespace mailhook::testsupport
