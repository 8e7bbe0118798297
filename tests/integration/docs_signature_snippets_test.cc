// The signature verification snippets of docs/signatures.md (docs/verify/
// verify.py, verify.js, verify.go: standard libraries only) accept a real
// webhook delivery from the real daemon and reject it when the body is
// changed, the secret is wrong, or the timestamp is outside the 5-minute
// tolerance (with a signature that is otherwise correct).
//
// Each snippet reads the secret and the three webhook-* headers from the
// environment and the raw body on stdin, as the doc shows. The Go snippet is
// built once with `go build`; without `go` (scripts/deps installs golang-go)
// only the Go case is skipped.

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <set>

#include "pipeline_fixture.h"

namespace mailhook::testsupport {
namespace {

// From the configured source dir, not __FILE__ (ccache's CCACHE_BASEDIR).
const std::string kVerifyDir = std::string(MAILHOOK_SOURCE_DIR) + "/docs/verify";
// Another valid secret: base64 of bytes 0x80..0x9f.
constexpr const char* kWrongSecret = "whsec_gIGCg4SFhoeIiYqLjI2Oj5CRkpOUlZaXmJmam5ydnp8=";

/// The key bytes of kTestWebhookSecret (0x01..0x20), to sign test inputs.
std::string TestKeyBytes() {
  std::string key;
  for (int i = 1; i <= 32; ++i) key.push_back(static_cast<char>(i));
  return key;
}

/// "v1,<base64 HMAC-SHA256(key, id.ts.body)>", computed here, independently of mailhook.
std::string SignV1(const std::string& key, const std::string& id, const std::string& ts, const std::string& body) {
  std::string data = id + "." + ts + "." + body;
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
       data.size(), mac, &len);
  std::string out(4 * ((len + 2) / 3) + 1, '\0');
  out.resize(
      static_cast<size_t>(EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), mac, static_cast<int>(len))));
  return "v1," + out;
}

/// The field paths documented in docs/events.md for `message.received`: the
/// rows "| `path` |" of its "Envelope" and "message.received" sections.
std::set<std::string> DocumentedReceivedFields() {
  std::ifstream in(std::string(MAILHOOK_SOURCE_DIR) + "/docs/events.md");
  static const std::regex kRow(R"(^\| `([a-z0-9_.\[\]]+)` \|)");
  std::set<std::string> fields;
  std::string line, section;
  while (std::getline(in, line)) {
    if (line.starts_with("## ")) section = line.substr(3);
    std::smatch m;
    if ((section.starts_with("Envelope") || section == "message.received") && std::regex_search(line, m, kRow)) {
      fields.insert(m[1]);
    }
  }
  return fields;
}

/// Every field path of an event, lists as "[]" (their first element's fields).
void FieldPaths(const nlohmann::json& j, const std::string& prefix, std::set<std::string>& out) {
  for (const auto& [key, value] : j.items()) {
    const std::string path = prefix.empty() ? key : prefix + "." + key;
    out.insert(path);
    if (value.is_object()) FieldPaths(value, path, out);
    if (value.is_array() && !value.empty() && value[0].is_object()) FieldPaths(value[0], path + "[]", out);
  }
}

/// What a receiver got: the three signing headers and the raw body.
struct Delivery {
  std::string id, timestamp, signature, body;
};

class DocsSignatureSnippetsTest : public PipelineTest {
 protected:
  /// One real event, delivered by the daemon to the loopback receiver.
  Delivery RealDelivery() {
    StartDaemon();
    WaitIdle();
    ImapClient imap(dovecot_);
    EXPECT_TRUE(imap.Append("alice", "INBOX", SampleMessage("mixed_attachment.eml")).ok());
    EXPECT_TRUE(receiver_.WaitFor(1, seconds(20))) << daemon_.Log();
    auto requests = receiver_.Requests();
    if (requests.empty()) return {};
    const RecordedRequest& r = requests[0];
    return {r.Header("webhook-id"), r.Header("webhook-timestamp"), r.Header("webhook-signature"), r.body};
  }

  /// Runs one snippet (argv) on a delivery with `secret`; returns its result.
  CommandResult Run(const std::vector<std::string>& argv, const std::string& secret, const Delivery& d) {
    std::string body_path = scratch_.Sub("body-" + std::to_string(++runs_) + ".json");
    EXPECT_TRUE(WriteFile(body_path, d.body));
    ChildOptions options;
    options.stdin_path = body_path;
    options.env = {"WEBHOOK_SECRET=" + secret, "WEBHOOK_ID=" + d.id, "WEBHOOK_TIMESTAMP=" + d.timestamp,
                   "WEBHOOK_SIGNATURE=" + d.signature};
    auto r = RunCommand(argv, seconds(60), options);
    EXPECT_TRUE(r.ok()) << "cannot run " << argv[0];
    return r.ok() ? *r : CommandResult{};
  }

  /// Every case for one snippet: the real delivery verifies; a changed body,
  /// a wrong secret and a stale (but correctly signed) timestamp do not.
  void CheckSnippet(const std::vector<std::string>& argv, const Delivery& real) {
    SCOPED_TRACE(argv.back());
    CommandResult ok = Run(argv, kTestWebhookSecret, real);
    EXPECT_EQ(ok.exit_code, 0) << ok.err;
    EXPECT_EQ(ok.out, "verified " + real.id + "\n");

    Delivery tampered = real;
    tampered.body.replace(tampered.body.find("\"uid\":"), 6, "\"uid\": ");
    CommandResult changed = Run(argv, kTestWebhookSecret, tampered);
    EXPECT_EQ(changed.exit_code, 1) << "a changed body must not verify: " << changed.out;

    CommandResult wrong = Run(argv, kWrongSecret, real);
    EXPECT_EQ(wrong.exit_code, 1) << "a wrong secret must not verify: " << wrong.out;

    // Signed correctly, but 10 minutes old: only the timestamp check rejects it.
    Delivery stale = real;
    stale.timestamp = std::to_string(std::stoll(real.timestamp) - 600);
    stale.signature = SignV1(TestKeyBytes(), stale.id, stale.timestamp, stale.body);
    CommandResult old = Run(argv, kTestWebhookSecret, stale);
    EXPECT_EQ(old.exit_code, 1) << "a timestamp 10 minutes old must not verify: " << old.out;
    // The same independent signing with the real timestamp verifies, so the
    // stale case failed on its timestamp, not on the signing above.
    Delivery resigned = real;
    resigned.signature = SignV1(TestKeyBytes(), real.id, real.timestamp, real.body);
    EXPECT_EQ(Run(argv, kTestWebhookSecret, resigned).exit_code, 0);
  }

  TempDir scratch_{"mailhook-docs-verify-"};
  int runs_ = 0;
};

TEST_F(DocsSignatureSnippetsTest, PythonNodeAndGoVerifyARealEvent) {
  Delivery real = RealDelivery();
  ASSERT_FALSE(real.body.empty());
  ASSERT_EQ(real.signature.rfind("v1,", 0), 0u) << real.signature;
  ASSERT_NE(real.body.find("\"uid\":"), std::string::npos);

  CheckSnippet({"python3", kVerifyDir + "/verify.py"}, real);
  CheckSnippet({"node", kVerifyDir + "/verify.js"}, real);

  auto go = RunCommand({"sh", "-c", "command -v go"}, seconds(10));
  if (!go.ok() || go->exit_code != 0) {
    GTEST_SKIP() << "Python and Node checked; Go skipped: `go` is not installed (scripts/deps installs golang-go)";
  }
  std::string binary = scratch_.Sub("verify-go");
  ChildOptions build;
  build.env = {"GOCACHE=" + scratch_.Sub("gocache"), "GOPATH=" + scratch_.Sub("gopath"), "GO111MODULE=off"};
  auto built = RunCommand({"go", "build", "-o", binary, kVerifyDir + "/verify.go"}, std::chrono::minutes(3), build);
  ASSERT_TRUE(built.ok());
  ASSERT_EQ(built->exit_code, 0) << built->err;
  CheckSnippet({binary}, real);
}

// docs/events.md lists exactly the fields of a real message.received event
// (with an attachment, attachments: metadata; content_base64 appears only
// with attachments: content).
TEST_F(DocsSignatureSnippetsTest, EventReferenceListsTheFieldsOfARealEvent) {
  Delivery real = RealDelivery();
  ASSERT_FALSE(real.body.empty());
  auto event = nlohmann::json::parse(real.body);
  ASSERT_FALSE(event["message"]["attachments"].empty()) << real.body;
  std::set<std::string> sent;
  FieldPaths(event, "", sent);
  std::set<std::string> documented = DocumentedReceivedFields();
  ASSERT_GT(documented.size(), 20u) << "docs/events.md field rows not found";
  for (std::string path : sent) {
    // to, cc and reply_to entries are documented once, as from's.
    path = std::regex_replace(path, std::regex(R"(^message\.(to|cc|reply_to)\[\])"), "message.from[]");
    EXPECT_TRUE(documented.contains(path)) << "not documented: " << path;
  }
  documented.erase("message.attachments[].content_base64");
  for (const auto& path : documented) EXPECT_TRUE(sent.contains(path)) << "documented but not sent: " << path;
}

}  // namespace
}  // namespace mailhook::testsupport
