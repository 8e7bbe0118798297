// The example configs under config/ are documentation users copy: each one
// must load without a single error.
#include <filesystem>

#include <gtest/gtest.h>

#include "config/check.h"
#include "config/config.h"
#include "test_util.h"

namespace mailhook::config {
namespace {

using testing::Dump;
using testing::Reveal;
using testing::ScopedEnv;
using testing::TempDir;

const std::filesystem::path kExamples = std::filesystem::path(MAILHOOK_SOURCE_DIR) / "config";

TEST(ExamplesTest, EveryExampleConfigLoadsWithoutErrors) {
  // The variables and secret files the examples reference.
  TempDir secrets;
  secrets.Write("imap_password", "imap-pw\n");
  secrets.Write("webhook_secret", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n");
  secrets.Write("tickets_token", "tok\n");
  ScopedEnv dir("SECRETS_DIR", secrets.path().string());
  ScopedEnv pw("IMAP_PASSWORD", "imap-pw");
  ScopedEnv secret("WEBHOOK_SECRET", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
  ScopedEnv token("TICKETS_TOKEN", "tok");
  // The ready-made hooks the examples run, from this checkout.
  ScopedEnv hooks("MAILHOOK_HOOKS", (std::filesystem::path(MAILHOOK_SOURCE_DIR) / "hooks").string());

  int loaded = 0;
  for (const auto& entry : std::filesystem::directory_iterator(kExamples)) {
    if (entry.path().extension() != ".yml") continue;
    SCOPED_TRACE(entry.path().string());
    auto r = LoadConfig(entry.path().string());
    EXPECT_TRUE(r.errors.empty()) << Dump(r);
    EXPECT_TRUE(r.config.has_value());
    ++loaded;
  }
  EXPECT_GE(loaded, 3);
}

TEST(ExamplesTest, DockerExampleReadsSecretsFromFiles) {
  TempDir secrets;
  secrets.Write("imap_password", "imap-pw\n");
  secrets.Write("webhook_secret", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n");
  secrets.Write("tickets_token", "tok\n");
  ScopedEnv dir("SECRETS_DIR", secrets.path().string());
  auto r = LoadConfig((kExamples / "docker.yml").string());
  ASSERT_TRUE(r.config) << Dump(r);
  EXPECT_EQ(r.config->state_dir, "/var/lib/mailhook");
  EXPECT_EQ(Reveal(r.config->accounts[0].password), "imap-pw");
  EXPECT_EQ(Reveal(r.config->webhooks[0].secrets.at(0)), "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
  EXPECT_EQ(Reveal(r.config->webhooks[0].headers.at("Authorization")), "Bearer tok");
}

TEST(ExamplesTest, MinimalExampleFailsClearlyWithoutItsVariables) {
  ::unsetenv("IMAP_PASSWORD");
  ::unsetenv("WEBHOOK_SECRET");
  auto r = LoadConfig((kExamples / "minimal.yml").string());
  EXPECT_EQ(r.errors.size(), 2u) << Dump(r);
  std::ostringstream out;
  EXPECT_EQ(PrintCheck(r, out), 2);
  EXPECT_NE(out.str().find("\"IMAP_PASSWORD\" is not set"), std::string::npos) << out.str();
}

}  // namespace
}  // namespace mailhook::config
