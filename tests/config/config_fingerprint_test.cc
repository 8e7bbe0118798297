// The comparison a SIGHUP reload makes: which accounts and targets changed,
// and which keys need a restart. Nodes, not structs: a key the loader learns
// later is compared without an edit (the "unknown key" case below).

#include "config/config_fingerprint.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "test_util.h"

namespace mailhook::config {
namespace {

using Names = std::vector<std::string>;

const char* kBase = R"(state_dir: /tmp/s
log: { level: info }
limits: { max_parts: 100 }
accounts:
  - name: a
    host: imap.example.com
    username: u
    password_file: /run/secrets/a
    folders: [INBOX, Sent]
  - { name: b, host: imap.example.com, username: v, password: x }
webhooks:
  - { name: w, url: "https://example.com/h", secret: whsec_x, match: { accounts: [a] } }
hooks:
  - { name: h, command: [/bin/true] }
)";

ConfigFingerprint Fp(const std::string& text) {
  auto fp = FingerprintConfig(text);
  EXPECT_TRUE(fp.ok());
  return fp.ok() ? *fp : ConfigFingerprint{};
}

ConfigChanges Changes(const std::string& before, const std::string& after) {
  return CompareConfigs(Fp(before), Fp(after));
}

std::string Replace(std::string text, const std::string& from, const std::string& to) {
  auto at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) text.replace(at, from.size(), to);
  return text;
}

TEST(ConfigFingerprint, SameTextIsNoChange) { EXPECT_TRUE(Changes(kBase, kBase).empty()); }

TEST(ConfigFingerprint, KeyOrderLayoutAndCommentsAreNoChange) {
  std::string moved = Replace(kBase, "  - { name: b, host: imap.example.com, username: v, password: x }",
                              "  # b moved to block style, keys reordered\n"
                              "  - password: x\n    username: v\n    name: b\n    host: \"imap.example.com\"");
  moved = Replace(moved, "state_dir: /tmp/s\n", "");
  moved += "state_dir: /tmp/s\n";
  EXPECT_TRUE(Changes(kBase, moved).empty());
}

TEST(ConfigFingerprint, OneAccountsFoldersChangeOnlyThatAccount) {
  auto c = Changes(kBase, Replace(kBase, "folders: [INBOX, Sent]", "folders: [INBOX]"));
  EXPECT_EQ(c.accounts_changed, Names{"a"});
  EXPECT_TRUE(c.accounts_added.empty() && c.accounts_removed.empty());
  EXPECT_TRUE(c.targets_changed.empty() && c.targets_added.empty() && c.targets_removed.empty());
  EXPECT_TRUE(c.restart_needed.empty());
}

TEST(ConfigFingerprint, SecretsCompareByTheirSource) {
  // Another file is another source; the same file is the same (its content
  // is read at each login).
  auto c = Changes(kBase, Replace(kBase, "password_file: /run/secrets/a", "password_file: /run/secrets/a2"));
  EXPECT_EQ(c.accounts_changed, Names{"a"});
  c = Changes(kBase, Replace(kBase, "password_file: /run/secrets/a", "password_command: [cat, /run/secrets/a]"));
  EXPECT_EQ(c.accounts_changed, Names{"a"});
  c = Changes(kBase, Replace(kBase, "secret: whsec_x", "secret: whsec_y"));
  EXPECT_EQ(c.targets_changed, Names{"webhook:w"});
}

TEST(ConfigFingerprint, AddedAndRemovedEntries) {
  std::string after = Replace(kBase, "  - { name: b, host: imap.example.com, username: v, password: x }\n",
                              "  - { name: c, host: imap.example.com, username: v, password: x }\n");
  after = Replace(after, "hooks:\n  - { name: h, command: [/bin/true] }\n",
                  "hooks:\n  - { name: h2, command: [/bin/true] }\n");
  after += "  - { name: w2, command: [/bin/false] }\n";  // appended to hooks:
  auto c = Changes(kBase, after);
  EXPECT_EQ(c.accounts_added, Names{"c"});
  EXPECT_EQ(c.accounts_removed, Names{"b"});
  EXPECT_TRUE(c.accounts_changed.empty());
  EXPECT_EQ(c.targets_added, (Names{"hook:h2", "hook:w2"}));
  EXPECT_EQ(c.targets_removed, Names{"hook:h"});
  EXPECT_TRUE(c.targets_changed.empty());
}

TEST(ConfigFingerprint, AWebhookAndAHookOfOneNameAreTwoTargets) {
  auto fp = Fp("webhooks: [{ name: x, url: \"https://e/x\" }]\nhooks: [{ name: y, command: [a] }]\n");
  EXPECT_EQ(fp.targets.count("webhook:x"), 1u);
  EXPECT_EQ(fp.targets.count("hook:y"), 1u);
}

// smtp targets are targets of their own: an edit changes that target only,
// and a new one is added without touching the others or the accounts.
TEST(ConfigFingerprint, SmtpTargetsAreComparedOneByOne) {
  const std::string with_smtp = std::string(kBase) +
                                "smtp:\n"
                                "  - { name: ack, host: smtp.example.com, from: s@example.com, mode: reply }\n"
                                "  - { name: fwd, host: smtp.example.com, from: s@example.com, mode: forward }\n";
  auto fp = Fp(with_smtp);
  EXPECT_EQ(fp.targets.count("smtp:ack"), 1u);
  EXPECT_EQ(fp.targets.count("smtp:fwd"), 1u);
  auto added = Changes(kBase, with_smtp);
  EXPECT_EQ(added.targets_added, (Names{"smtp:ack", "smtp:fwd"}));
  EXPECT_TRUE(added.accounts_changed.empty() && added.targets_changed.empty()) << "smtp: is a list, not a shared key";
  auto changed =
      Changes(with_smtp, Replace(with_smtp, "from: s@example.com, mode: reply", "from: t@example.com, mode: reply"));
  EXPECT_EQ(changed.targets_changed, Names{"smtp:ack"});
  EXPECT_TRUE(changed.accounts_changed.empty());
}

TEST(ConfigFingerprint, TopLevelLimitsChangeEveryAccountButNoTarget) {
  auto c = Changes(kBase, Replace(kBase, "max_parts: 100", "max_parts: 200"));
  EXPECT_EQ(c.accounts_changed, (Names{"a", "b"}));
  EXPECT_TRUE(c.targets_changed.empty());
  EXPECT_TRUE(c.restart_needed.empty());
}

TEST(ConfigFingerprint, AnUnknownTopLevelKeyCountsForAccountsAndTargets) {
  // A section a later version adds is compared without an edit here.
  auto c = Changes(kBase, std::string(kBase) + "defaults: { timeout: 30s }\n");
  EXPECT_EQ(c.accounts_changed, (Names{"a", "b"}));
  EXPECT_EQ(c.targets_changed, (Names{"hook:h", "webhook:w"}));
}

TEST(ConfigFingerprint, AnUnknownAccountKeyChangesThatAccount) {
  auto c = Changes(kBase, Replace(kBase, "folders: [INBOX, Sent]", "folders: [INBOX, Sent]\n    liveness: 1m"));
  EXPECT_EQ(c.accounts_changed, Names{"a"});
}

TEST(ConfigFingerprint, TheStoreBlockNeedsARestartAndRestartsNothingElse) {
  // Where the state lives is opened once per process; as an ordinary
  // top-level key it would restart every account and target instead.
  auto c = Changes(kBase, std::string(kBase) + "store: { url_command: [url-helper], lease_ttl: 20s }\n");
  EXPECT_EQ(c.restart_needed, Names{"store"});
  EXPECT_TRUE(c.accounts_changed.empty());
  EXPECT_TRUE(c.targets_changed.empty());
  c = Changes(std::string(kBase) + "store: { lease_ttl: 20s }\n", std::string(kBase) + "store: { lease_ttl: 30s }\n");
  EXPECT_EQ(c.restart_needed, Names{"store"});
}

TEST(ConfigFingerprint, StateDirHttpAndLogNeedARestart) {
  std::string after = Replace(kBase, "state_dir: /tmp/s", "state_dir: /tmp/t");
  after = Replace(after, "log: { level: info }", "log: { level: debug }");
  after += "http: { listen: \"127.0.0.1:8025\" }\n";
  auto c = Changes(kBase, after);
  EXPECT_EQ(c.restart_needed, (Names{"http", "log", "state_dir"}));
  EXPECT_TRUE(c.accounts_changed.empty());
  EXPECT_TRUE(c.targets_changed.empty());
}

TEST(ConfigFingerprint, ALongScalarCannotImitateStructure) {
  // Length prefixes: "a,b" in one scalar is not the list [a, b].
  auto c = Changes("accounts: [{ name: a, folders: [\"x,1:y\"] }]\n", "accounts: [{ name: a, folders: [x, y] }]\n");
  EXPECT_EQ(c.accounts_changed, Names{"a"});
}

TEST(ConfigFingerprint, LoadWithFingerprintReadsTheFileOnce) {
  testing::TempDir dir;
  std::string path = dir.Write("c.yaml",
                               "state_dir: /tmp/s\naccounts:\n  - { name: a, host: h.example, username: u, "
                               "password: p }\nwebhooks:\n  - { name: w, url: \"https://example.com/h\" }\n");
  auto loaded = LoadConfigWithFingerprint(path);
  ASSERT_TRUE(loaded.result.config) << testing::Dump(loaded.result);
  ASSERT_TRUE(loaded.fingerprint);
  EXPECT_EQ(loaded.fingerprint->accounts.count("a"), 1u);
  EXPECT_EQ(loaded.fingerprint->targets.count("webhook:w"), 1u);

  auto bad = LoadConfigWithFingerprint(dir.Write("bad.yaml", "accounts:\n  - { name: a, host: [\n"));
  EXPECT_FALSE(bad.result.config);
  EXPECT_FALSE(bad.fingerprint);
  ASSERT_FALSE(bad.result.errors.empty());
  EXPECT_GT(bad.result.errors.front().line, 0);
}

}  // namespace
}  // namespace mailhook::config
