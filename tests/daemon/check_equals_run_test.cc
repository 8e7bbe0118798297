// `mailhook check` accepts exactly what `mailhook run` accepts. `run` loads
// the config with the same LoadConfig/PrintCheck as `check` (main.cc), then
// starts up: the dispatcher builds every target (resolving secrets, decoding
// signing keys), the router routes, the HTTP listener binds. Each config here
// goes through both, and they must agree. The "was accepted by check" cases
// are the disagreements found in issue 13: each passed `check` and failed
// `run` before the config layer produced the values `run` consumes.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>

#include <gtest/gtest.h>

#include "config/check.h"
#include "config/config.h"
#include "daemon/router.h"
#include "delivery/dispatcher.h"
#include "http/server.h"
#include "util/metrics_catalog.h"

namespace mailhook::daemon {
namespace {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "mh-checkrun-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// The start-up `run` goes through after loading, up to connecting to IMAP.
// Port 0 keeps the test off fixed ports (binding the host is what is checked).
util::Status StartUp(config::Config cfg, const fs::path& state_dir) {
  cfg.state_dir = state_dir.string();
  util::MetricsCatalog metrics;
  delivery::Dispatcher dispatcher(cfg, "test", metrics);
  if (auto s = dispatcher.Start(); !s.ok()) return s;
  dispatcher.Stop();
  for (const auto& a : cfg.accounts) {
    for (const auto& f : a.folders) (void)RoutesFor(cfg, a.name, f, nullptr);
  }
  if (cfg.http_listen) {
    http::HealthServer server(
        config::HostPort(cfg.http_listen->host(), 0),
        [] {
          return http::Readiness{true, {}};
        },
        metrics);
    if (auto s = server.Start(); !s.ok()) return s;
    server.Stop();
  }
  return util::Ok();
}

struct Verdicts {
  bool check = false;
  bool run = false;
  std::string why;
};

Verdicts BothPaths(const std::string& path, const fs::path& state_dir) {
  Verdicts v;
  std::ostringstream out;
  v.check = config::PrintCheck(config::LoadConfig(path), out) == config::kCheckOk;
  v.why = out.str();
  auto loaded = config::LoadConfig(path);  // what main.cc's Run does first
  if (!loaded.config || !loaded.errors.empty()) return v;
  auto started = StartUp(*loaded.config, state_dir);
  v.run = started.ok();
  if (!started.ok()) v.why += "run: " + started.error().message();
  return v;
}

class CheckEqualsRunTest : public ::testing::Test {
 protected:
  std::string Write(const std::string& name, const std::string& text) {
    fs::path p = dir_.path() / name;
    std::ofstream(p) << text;
    return p.string();
  }
  void ExpectAgree(const std::string& path, bool expect_ok) {
    TempDir state;
    Verdicts v = BothPaths(path, state.path() / "state");
    EXPECT_EQ(v.check, v.run) << path << ": check " << (v.check ? "accepts" : "refuses") << ", run "
                              << (v.run ? "accepts" : "refuses") << "\n"
                              << v.why;
    EXPECT_EQ(v.check, expect_ok) << path << "\n" << v.why;
  }
  TempDir dir_;
};

constexpr const char* kAccount = R"(accounts:
  - name: support
    host: imap.example.com
    username: support@example.com
    password: hunter2
    folders: [INBOX, Support/Tier1]
)";

std::string Webhook(const std::string& extra) {
  return "webhooks:\n  - name: tickets\n    url: https://tickets.internal/hooks/email\n" + extra;
}

TEST_F(CheckEqualsRunTest, EveryExampleConfig) {
  // The variables and secret files the examples reference (as examples_test).
  Write("imap_password", "imap-pw\n");
  Write("webhook_secret", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n");
  Write("tickets_token", "tok\n");
  ::setenv("SECRETS_DIR", dir_.path().c_str(), 1);
  ::setenv("IMAP_PASSWORD", "imap-pw", 1);
  ::setenv("WEBHOOK_SECRET", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", 1);
  ::setenv("TICKETS_TOKEN", "tok", 1);
  ::setenv("SMTP_PASSWORD", "smtp-pw", 1);
  ::setenv("MAILHOOK_HOOKS", (fs::path(MAILHOOK_SOURCE_DIR) / "hooks").c_str(), 1);  // the ready-made hooks
  int examples = 0;
  for (const auto& entry : fs::directory_iterator(fs::path(MAILHOOK_SOURCE_DIR) / "config")) {
    if (entry.path().extension() != ".yml") continue;
    std::string path = entry.path().string();
    if (entry.path().filename() == "docker.yml") {
      // It names compose's mounts (/run/secrets/...): the same text with the secrets here.
      std::ifstream in(path);
      std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      for (size_t at = 0; (at = text.find("/run/secrets/", at)) != std::string::npos;) {
        text.replace(at, 13, dir_.path().string() + "/");
      }
      path = Write("docker.yml", text);
    }
    ExpectAgree(path, true);
    ++examples;
  }
  EXPECT_GE(examples, 3);
  for (const char* name :
       {"SECRETS_DIR", "IMAP_PASSWORD", "WEBHOOK_SECRET", "TICKETS_TOKEN", "SMTP_PASSWORD", "MAILHOOK_HOOKS"}) {
    ::unsetenv(name);
  }
}

TEST_F(CheckEqualsRunTest, ValuesRunOnceRefusedNowFailCheck) {
  const std::string base = kAccount;
  // Each passed `check` and failed `run` before.
  ExpectAgree(Write("userinfo.yml", base + "webhooks:\n  - name: t\n    url: https://u:p@tickets.internal/x\n"), false);
  ExpectAgree(Write("listen.yml", "http: { listen: \"::1:8025\" }\n" + base + Webhook("")), false);
  ExpectAgree(Write("bare-secret.yml", base + Webhook("    secret: my-webhook-secret\n")), false);
  ExpectAgree(Write("secret-file.yml", base + Webhook("    secret_file: " + Write("s", "not base64!\n") + "\n")),
              false);
}

TEST_F(CheckEqualsRunTest, ValidConfigsStartUp) {
  const std::string base = kAccount;
  ExpectAgree(Write("min.yml", base + Webhook("")), true);
  ExpectAgree(Write("upper.yml", base + "webhooks:\n  - name: t\n    url: HTTP://LOCALHOST:9/x\n"), true);
  ExpectAgree(Write("v6.yml", base + "webhooks:\n  - name: t\n    url: http://[::1]:9/x\n"), true);
  ExpectAgree(Write("unpadded.yml", base + Webhook("    secret: whsec_b2s\n")), true);
  ExpectAgree(Write("glob.yml", base + Webhook("    match: { folders: [\"Support/*\", inbox] }\n")), true);
  ExpectAgree(Write("listen.yml", "http: { listen: \"127.0.0.1:8025\" }\n" + base + Webhook("")), true);
  ExpectAgree(Write("hook.yml", base +
                                    "hooks:\n  - name: h\n    command: [/bin/true]\n"
                                    "    env: { A: x, B: { file: " +
                                    Write("b", "y\n") + " } }\n"),
              true);
}

TEST_F(CheckEqualsRunTest, InvalidConfigsFailBoth) {
  const std::string base = kAccount;
  for (const std::string& yaml :
       {std::string("state_dir: /tmp/x\n"), base, base + Webhook("    timeout: 11m\n"),
        base + Webhook("    headers: { User-Agent: x }\n"), base + Webhook("    headers: { Connection: close }\n"),
        base + Webhook("    match: { folders: [\"Sales/*\"] }\n"), base + Webhook("    url2: x\n"),
        "http: { listen: \"8025\" }\n" + base + Webhook(""),
        base + "webhooks:\n  - name: t\n    url: http://tickets.internal/x\n",
        base + Webhook("    tls_verify: false\n"), base + Webhook("    concurrency: 65\n")}) {
    ExpectAgree(Write("bad.yml", yaml), false);
  }
}

}  // namespace
}  // namespace mailhook::daemon
