// The fetch pipeline (issue 8): small messages are fetched whole with their
// batch (one `UID FETCH <set> BODY.PEEK[]`) and parsed locally. For every
// message of the shared MIME corpus, APPENDed to Dovecot, the event that
// path sends is byte for byte the one the server path (BODYSTRUCTURE, one
// FETCH per section; forced with MAILHOOK_TEST_WHOLE_FETCH_MAX_BYTES=0)
// sends, but for created_at. Also counts the IMAP commands each path sends
// (the daemon's trace log), which the pipeline exists to cut.

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <regex>
#include <sstream>

#include "pipeline_fixture.h"

#ifndef MAILHOOK_CORPUS_DIR
#error "MAILHOOK_CORPUS_DIR must point at ../shared/corpus (tests/integration/CMakeLists.txt)"
#endif

namespace mailhook::testsupport {
namespace {

namespace fs = std::filesystem;

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

/// The corpus files, each the CRLF copy where one exists (what the server stores).
std::vector<fs::path> CorpusFiles() {
  const fs::path root = MAILHOOK_CORPUS_DIR;
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(root / "messages")) {
    if (e.is_regular_file()) names.push_back(e.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  std::vector<fs::path> out;
  for (const std::string& n : names) {
    fs::path crlf = root / "messages-crlf" / n;
    out.push_back(fs::exists(crlf) ? crlf : root / "messages" / n);
  }
  return out;
}

/// The payload with its created_at value blanked (the one field that
/// depends on when the event was made).
std::string MaskCreatedAt(const std::string& payload) {
  static const std::regex kCreatedAt(R"re("created_at":"[^"]*")re");
  return std::regex_replace(payload, kCreatedAt, R"("created_at":"-")", std::regex_constants::format_first_only);
}

/// How many lines of `log` say the daemon sent a command containing `verb`.
size_t CountSent(const std::string& log, const std::string& verb) {
  size_t n = 0;
  std::istringstream in(log);
  for (std::string line; std::getline(in, line);) {
    if (line.find("imap.sent") != std::string::npos && line.find(verb) != std::string::npos) ++n;
  }
  return n;
}

class FetchPipelineTest : public PipelineTest {
 protected:
  /// Runs `daemon` (start_from: all, content attachments, trace log) until
  /// `n` events reached `path`; returns them by UID.
  std::map<uint32_t, std::string> RunUntil(MailhookProcess& daemon, const std::string& path, size_t n) {
    ConfigSpec cfg;
    cfg.state_dir = daemon.state_dir();
    cfg.log_level = "trace";
    cfg.accounts.push_back(AccountYaml(dovecot_, AccountSpec{}));
    cfg.webhooks.push_back(WebhookYaml(
        {"hook", receiver_.url(path), kTestWebhookSecret, "attachments: content, max_attachment_bytes: 10485760"}));
    EXPECT_TRUE(daemon.WriteConfig(RenderConfig(cfg)).ok());
    EXPECT_TRUE(daemon.Start().ok());
    const size_t before = receiver_.count();
    EXPECT_TRUE(receiver_.WaitFor(before + n, seconds(90))) << daemon.Log();
    EXPECT_TRUE(daemon.Terminate().ok());
    std::map<uint32_t, std::string> out;
    for (const RecordedRequest& r : receiver_.Requests()) {
      if (r.path != path) continue;
      const uint32_t uid = r.Json()["uid"].get<uint32_t>();
      EXPECT_TRUE(out.emplace(uid, r.body).second) << "two events for UID " << uid << " at " << path;
    }
    return out;
  }
};

TEST_F(FetchPipelineTest, EveryCorpusMessageGivesAByteIdenticalEventOnBothPaths) {
  ASSERT_TRUE(fs::is_directory(fs::path(MAILHOOK_CORPUS_DIR) / "messages"))
      << "MIME corpus not found at " << MAILHOOK_CORPUS_DIR << " (expected ../shared/corpus beside the repo)";
  const auto files = CorpusFiles();
  ASSERT_GE(files.size(), 100u) << "corpus at " << MAILHOOK_CORPUS_DIR << " looks incomplete";
  ImapClient imap(dovecot_);
  std::map<uint32_t, std::string> file_of_uid;
  for (const fs::path& f : files) {
    auto uid = imap.Append("alice", "INBOX", ReadFile(f));
    ASSERT_TRUE(uid.ok()) << "Dovecot refused " << f << ": " << uid.error().message();
    file_of_uid[*uid] = f.filename().string();
  }

  MailhookProcess old_path;
  old_path.SetEnv("MAILHOOK_TEST_WHOLE_FETCH_MAX_BYTES", "0");
  const auto old_events = RunUntil(old_path, "/old", files.size());
  MailhookProcess pipeline;  // the default: whole messages under 256 KiB
  const auto new_events = RunUntil(pipeline, "/new", files.size());
  ASSERT_EQ(old_events.size(), files.size());
  ASSERT_EQ(new_events.size(), files.size());

  size_t differing = 0;
  for (const auto& [uid, old_payload] : old_events) {
    auto it = new_events.find(uid);
    ASSERT_NE(it, new_events.end()) << "no event for UID " << uid << " on the pipeline path";
    if (MaskCreatedAt(old_payload) == MaskCreatedAt(it->second)) continue;
    ++differing;
    ADD_FAILURE() << file_of_uid[uid] << " (UID " << uid
                  << "): the events differ\n  old: " << old_payload.substr(0, 600)
                  << "\n  new: " << it->second.substr(0, 600);
  }
  EXPECT_EQ(differing, 0u);

  // The pipeline really took the whole-message path, and saved commands.
  const std::string old_log = old_path.Log();
  const std::string new_log = pipeline.Log();
  const size_t old_fetches = CountSent(old_log, "FETCH");
  const size_t new_fetches = CountSent(new_log, "FETCH");
  EXPECT_EQ(CountSent(old_log, "BODY.PEEK[])"), 0u) << "the old path fetched whole messages";
  EXPECT_GT(CountSent(new_log, "BODY.PEEK[])"), 0u) << "the pipeline fetched no message whole";
  EXPECT_LT(new_fetches * 4, old_fetches) << "old " << old_fetches << ", new " << new_fetches;
  std::cout << "fetch_pipeline corpus messages=" << files.size() << " fetch_commands old=" << old_fetches
            << " new=" << new_fetches << " all_commands old=" << CountSent(old_log, " ")
            << " new=" << CountSent(new_log, " ") << "\n";
}

}  // namespace
}  // namespace mailhook::testsupport
