// The example configs under config/ are documentation users copy: each one
// must load without a single error.
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <sstream>

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

/// docker.yml names the paths compose mounts (/run/secrets/...) and no
/// variables; outside a container, the same text with the secrets in `dir`.
LoadResult LoadExample(const std::filesystem::path& path, const TempDir& dir) {
  if (path.filename() != "docker.yml") return LoadConfig(path.string());
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  for (size_t at = 0; (at = text.find("/run/secrets/", at)) != std::string::npos;) {
    text.replace(at, 13, dir.path().string() + "/");
  }
  return LoadConfigFromString(text, path.string());
}

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
  ScopedEnv smtp_pw("SMTP_PASSWORD", "smtp-pw");
  // The ready-made hooks the examples run, from this checkout.
  ScopedEnv hooks("MAILHOOK_HOOKS", (std::filesystem::path(MAILHOOK_SOURCE_DIR) / "hooks").string());

  int loaded = 0;
  for (const auto& entry : std::filesystem::directory_iterator(kExamples)) {
    if (entry.path().extension() != ".yml") continue;
    SCOPED_TRACE(entry.path().string());
    auto r = LoadExample(entry.path(), secrets);
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
  auto r = LoadExample(kExamples / "docker.yml", secrets);
  ASSERT_TRUE(r.config) << Dump(r);
  EXPECT_EQ(r.config->state_dir, "/var/lib/mailhook");
  EXPECT_EQ(Reveal(r.config->accounts[0].password), "imap-pw");
  EXPECT_EQ(Reveal(r.config->webhooks[0].secrets.at(0)), "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
}

TEST(ExamplesTest, DockerExampleMatchesCompose) {
  // The secrets the config names are exactly those compose.yml declares, under
  // /run/secrets; it uses no ${VARIABLE} (compose sets none); it listens on
  // all addresses inside the container (compose publishes the port).
  std::ifstream c(std::filesystem::path(MAILHOOK_SOURCE_DIR) / "docker" / "compose.yml");
  std::string compose((std::istreambuf_iterator<char>(c)), std::istreambuf_iterator<char>());
  std::ifstream d(kExamples / "docker.yml");
  std::string docker((std::istreambuf_iterator<char>(d)), std::istreambuf_iterator<char>());
  std::string body = docker.substr(docker.find("\nstate_dir:"));
  EXPECT_EQ(body.find("${"), std::string::npos);
  EXPECT_NE(body.find("listen: \"0.0.0.0:8025\""), std::string::npos);
  std::set<std::string> named;
  for (size_t at = 0; (at = body.find("/run/secrets/", at)) != std::string::npos; at += 13) {
    size_t end = body.find_first_of(" \n\"", at + 13);
    named.insert(body.substr(at + 13, end - at - 13));
  }
  std::set<std::string> declared;
  size_t top = compose.find("\nsecrets:\n");
  ASSERT_NE(top, std::string::npos);
  std::istringstream lines(compose.substr(top + 10));
  for (std::string line; std::getline(lines, line) && (line.empty() || line[0] == ' ');) {
    if (line.size() > 2 && line[2] != ' ' && line.back() == ':') declared.insert(line.substr(2, line.size() - 3));
  }
  EXPECT_EQ(named, declared);
  EXPECT_EQ(declared, (std::set<std::string>{"imap_password", "webhook_secret"}));
  EXPECT_NE(compose.find(":/etc/mailhook:ro"), std::string::npos);
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
