// Tests for the ready-made hook commands in hooks/: each runs as mailhook
// runs it (util::RunProcess: argv, event on stdin, MAILHOOK_* env) on sample
// events, and the test checks what it wrote or sent and its exit code.

#include <gtest/gtest.h>
#include <httplib.h>

#include <condition_variable>
#include <deque>
#include <filesystem>
#include <fstream>
#include <future>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "temp_dir.h"
#include "util/subprocess.h"

namespace mailhook::hooks {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using namespace std::chrono_literals;

const std::string kHooks = MAILHOOK_HOOKS_DIR;

/// A private temp dir (tests/support), removed with everything in it.
using testsupport::TempDir;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string Base64(const std::string& in) {
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    for (int s : {18, 12, 6, 0}) out += kAlphabet[(v >> s) & 63];
  }
  if (i + 1 == in.size()) {
    uint32_t v = uint8_t(in[i]) << 16;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == in.size()) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8);
    for (int s : {18, 12, 6}) out += kAlphabet[(v >> s) & 63];
    out += '=';
  }
  return out;
}

/// A contract-shaped event (CONTRACT.md, "Event").
json Event(const std::string& id, json attachments = json::array()) {
  return {{"type", "message.received"},
          {"schema", 1},
          {"id", id},
          {"created_at", "2026-11-26T07:00:00Z"},
          {"account", "support"},
          {"mailbox", "INBOX"},
          {"uidvalidity", 1732600000},
          {"uid", 4711},
          {"message",
           {{"message_id", "<abc@example.com>"},
            {"in_reply_to", json::array()},
            {"references", json::array()},
            {"date", "2026-11-26T06:59:58Z"},
            {"subject", "Printer on fire"},
            {"from", {{{"name", "Ann"}, {"address", "ann@example.com"}}}},
            {"to", {{{"name", ""}, {"address", "support@example.com"}}}},
            {"cc", json::array()},
            {"reply_to", json::array()},
            {"flags", json::array()},
            {"size", 1234},
            {"text", "Line one\nLine two: \"quoted\" and ünïcödé"},
            {"html", nullptr},
            {"attachments", std::move(attachments)}}}};
}

json Attachment(const std::string& part, json filename, const std::string& content) {
  return {{"part", part},
          {"filename", std::move(filename)},
          {"content_type", "application/octet-stream"},
          {"disposition", "attachment"},
          {"content_id", nullptr},
          {"size", content.size()},
          {"content_base64", Base64(content)}};
}

util::ProcessResult Failed() {
  util::ProcessResult r;
  r.exit_code = -1;
  return r;
}

/// Runs a hook as mailhook does; returns the result (asserting it started).
util::ProcessResult RunHook(std::vector<std::string> argv, const std::string& stdin_data,
                            std::vector<std::pair<std::string, std::string>> env = {}) {
  util::ProcessSpec spec;
  spec.argv = std::move(argv);
  spec.stdin_data = stdin_data;
  spec.env = {{"MAILHOOK_EVENT_ID", ""},
              {"MAILHOOK_ACCOUNT", "support"},
              {"MAILHOOK_MAILBOX", "INBOX"},
              {"MAILHOOK_UID", "4711"}};
  if (auto id = json::parse(stdin_data, nullptr, false); id.is_object() && id.contains("id")) {
    spec.env[0].second = id["id"].get<std::string>();
  }
  for (auto& kv : env) spec.env.push_back(std::move(kv));
  spec.timeout = 60s;
  auto r = util::RunProcess(spec);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().ToString());
  return r.ok() ? *r : Failed();
}

std::set<std::string> Listing(const std::string& dir) {
  std::set<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.insert(e.path().filename().string());
  return names;
}

/// Writes an executable sh script.
void WriteScript(const std::string& path, const std::string& body) {
  std::ofstream(path) << "#!/bin/sh\n" << body;
  fs::permissions(path, fs::perms::owner_all);
}

/// A directory put first in PATH whose `tool` logs each call (its arguments
/// and environment, one file per call) to `log_dir` and then runs the real one.
std::vector<std::pair<std::string, std::string>> SpyOn(const TempDir& dir, const std::string& tool) {
  fs::create_directories(dir / "spy");
  fs::create_directories(dir / "spy-log");
  WriteScript(dir / ("spy/" + tool), "log=$(mktemp \"$SPY_LOG/" + tool +
                                         ".XXXXXX\")\n"
                                         "env > \"$log\"\n"
                                         "PATH=$SPY_REAL_PATH exec " +
                                         tool + " \"$@\"\n");
  const char* path = ::getenv("PATH");
  std::string real = path ? path : "/usr/bin:/bin";
  return {{"PATH", (dir / "spy") + ":" + real}, {"SPY_REAL_PATH", real}, {"SPY_LOG", dir / "spy-log"}};
}

/// The environments `tool` was called with under SpyOn, one per call.
std::vector<std::string> SpiedCalls(const TempDir& dir, const std::string& tool) {
  std::vector<std::string> calls;
  for (const auto& e : fs::directory_iterator(dir / "spy-log")) {
    if (e.path().filename().string().starts_with(tool + ".")) calls.push_back(ReadFile(e.path().string()));
  }
  return calls;
}

// ---- save-attachments.sh ----

const std::string kSave = kHooks + "/save-attachments.sh";

TEST(SaveAttachmentsTest, WritesExactBytesAndTheEventBesideThem) {
  TempDir dir;
  std::string binary;
  for (int i = 0; i < 256; ++i) binary += static_cast<char>(i);
  binary += std::string("\r\n\0\xff tail", 9);
  json event = Event("evt_0123abcd", {Attachment("2", "invoice.pdf", binary), Attachment("3", "notes.txt", "plain\n")});
  event["message"]["attachments"][1]["sha256"] = nullptr;
  auto r = RunHook({kSave, dir / "out"}, event.dump());
  ASSERT_EQ(r.exit_code, 0) << r.stderr_data;
  EXPECT_EQ(Listing(dir / "out"), std::set<std::string>{"evt_0123abcd"});
  EXPECT_EQ(Listing(dir / "out/evt_0123abcd"), (std::set<std::string>{"invoice.pdf", "notes.txt", "event.json"}));
  EXPECT_EQ(ReadFile(dir / "out/evt_0123abcd/invoice.pdf"), binary);
  EXPECT_EQ(ReadFile(dir / "out/evt_0123abcd/notes.txt"), "plain\n");
  EXPECT_EQ(json::parse(ReadFile(dir / "out/evt_0123abcd/event.json")), event);
}

TEST(SaveAttachmentsTest, NeutralisesTraversalHiddenAndCollidingNames) {
  TempDir dir;
  json event = Event("evt_names", {
                                      Attachment("2", "../../escape.sh", "a"),
                                      Attachment("3", "/etc/passwd", "b"),
                                      Attachment("4", "..\\..\\windows\\win.ini", "c"),
                                      Attachment("5", ".bashrc", "d"),
                                      Attachment("6", "..", "e"),
                                      Attachment("7", nullptr, "f"),
                                      Attachment("8", "report.pdf", "g"),
                                      Attachment("9", "REPORT.pdf", "h"),
                                      Attachment("10", "report.pdf", "i"),
                                      Attachment("11", "event.json", "j"),
                                      Attachment("12", "bad\x01name\x7f?*:<>|.txt", "k"),
                                      Attachment("13", "Prüfbericht März.pdf", "l"),
                                  });
  auto r = RunHook({kSave, dir / "out"}, event.dump());
  ASSERT_EQ(r.exit_code, 0) << r.stderr_data;
  // Nothing escaped: the temp dir holds only out/, out/ only the event's folder.
  EXPECT_EQ(Listing(dir.path()), std::set<std::string>{"out"});
  EXPECT_EQ(Listing(dir / "out"), std::set<std::string>{"evt_names"});
  std::string base = dir / "out/evt_names/";
  EXPECT_EQ(Listing(base),
            (std::set<std::string>{"escape.sh", "passwd", "win.ini", "bashrc", "attachment-6", "attachment-7",
                                   "report.pdf", "REPORT-1.pdf", "report-2.pdf", "event-1.json", "badname______.txt",
                                   "Prüfbericht März.pdf", "event.json"}));
  for (const auto& name : Listing(base)) EXPECT_NE(name[0], '.') << name;
  EXPECT_EQ(ReadFile(base + "escape.sh"), "a");
  EXPECT_EQ(ReadFile(base + "report-2.pdf"), "i");
  EXPECT_EQ(ReadFile(base + "event-1.json"), "j");
  EXPECT_EQ(ReadFile(base + "Prüfbericht März.pdf"), "l");
}

TEST(SaveAttachmentsTest, LongCjkNamesAreCutByBytesBetweenCharacters) {
  // Each name is under 100 characters but over 255 bytes (NAME_MAX), which
  // used to fail the rename on every delivery (exit 75 forever).
  std::string cjk, ext_b, latin;
  for (int i = 0; i < 99; ++i) cjk += "報";    // 3 bytes each
  for (int i = 0; i < 80; ++i) ext_b += "𠀀";  // 4 bytes each (CJK extension B)
  for (int i = 0; i < 95; ++i) latin += "é";   // 2 bytes each
  TempDir dir;
  json event = Event("evt_cjk", {Attachment("2", cjk + ".pdf", "a"), Attachment("3", ext_b, "b"),
                                 Attachment("4", latin + ".tar.gz", "c"), Attachment("5", cjk + ".pdf", "d")});
  auto r = RunHook({kSave, dir / "out"}, event.dump());
  ASSERT_EQ(r.exit_code, 0) << r.stderr_data;
  std::string base = dir / "out/evt_cjk/";
  // 120 bytes at most, whole characters only, the extension kept.
  std::string cjk_cut, ext_b_cut, latin_cut;
  for (int i = 0; i < 38; ++i) cjk_cut += "報";    // 114 + ".pdf" = 118 bytes
  for (int i = 0; i < 30; ++i) ext_b_cut += "𠀀";  // 120 bytes, no extension
  for (int i = 0; i < 58; ++i) latin_cut += "é";   // 116 + ".gz" = 119 bytes
  EXPECT_EQ(Listing(base),
            (std::set<std::string>{cjk_cut + ".pdf", ext_b_cut, latin_cut + ".gz", cjk_cut + "-1.pdf", "event.json"}));
  EXPECT_EQ(ReadFile(base + cjk_cut + ".pdf"), "a");
  EXPECT_EQ(ReadFile(base + ext_b_cut), "b");
  EXPECT_EQ(ReadFile(base + cjk_cut + "-1.pdf"), "d");
}

TEST(SaveAttachmentsTest, ParsesTheEventOnceHoweverManyAttachmentsItHas) {
  auto jq_calls = [](size_t attachments) {
    TempDir dir;
    json list = json::array();
    for (size_t i = 0; i < attachments; ++i) list.push_back(Attachment(std::to_string(i + 2), "f.txt", "x"));
    auto r = RunHook({kSave, dir / "out"}, Event("evt_many", list).dump(), SpyOn(dir, "jq"));
    EXPECT_EQ(r.exit_code, 0) << r.stderr_data;
    EXPECT_EQ(Listing(dir / "out/evt_many").size(), attachments + 1);
    return SpiedCalls(dir, "jq").size();
  };
  size_t one = jq_calls(1);
  EXPECT_LE(one, 3u);
  EXPECT_EQ(jq_calls(40), one);
}

TEST(SaveAttachmentsTest, SavedFilesAndFoldersArePrivate) {
  TempDir dir;
  auto r = RunHook({kSave, dir / "out"}, Event("evt_private", {Attachment("2", "a.txt", "secret mail")}).dump());
  ASSERT_EQ(r.exit_code, 0) << r.stderr_data;
  auto mode = [](const std::string& path) { return fs::status(path).permissions() & fs::perms::mask; };
  EXPECT_EQ(mode(dir / "out"), fs::perms::owner_all);
  EXPECT_EQ(mode(dir / "out/evt_private"), fs::perms::owner_all);
  for (const char* f : {"a.txt", "event.json"}) {
    EXPECT_EQ(mode(dir / ("out/evt_private/" + std::string(f))), fs::perms::owner_read | fs::perms::owner_write) << f;
  }
}

TEST(SaveAttachmentsTest, RedeliveryOverwritesInsteadOfAddingCopies) {
  TempDir dir;
  json event = Event("evt_again", {Attachment("2", "a.txt", "1"), Attachment("3", "a.txt", "2")});
  ASSERT_EQ(RunHook({kSave, dir / "out"}, event.dump()).exit_code, 0);
  ASSERT_EQ(RunHook({kSave, dir / "out"}, event.dump()).exit_code, 0);
  EXPECT_EQ(Listing(dir / "out/evt_again"), (std::set<std::string>{"a.txt", "a-1.txt", "event.json"}));
}

TEST(SaveAttachmentsTest, NoContentWritesNothingAndSucceeds) {
  TempDir dir;
  json metadata_only = Attachment("2", "a.pdf", "x");
  metadata_only.erase("content_base64");
  json null_content = Attachment("3", "b.pdf", "x");
  null_content["content_base64"] = nullptr;
  for (const json& event : {Event("evt_none"), Event("evt_meta", {metadata_only, null_content})}) {
    auto r = RunHook({kSave, dir / "out"}, event.dump());
    EXPECT_EQ(r.exit_code, 0) << r.stderr_data;
  }
  EXPECT_FALSE(fs::exists(dir / "out"));
}

TEST(SaveAttachmentsTest, CorruptContentIsPermanentAndUnwritableFolderIsTemporary) {
  TempDir dir;
  json bad_hash = Attachment("2", "a.bin", "abc");
  bad_hash["sha256"] = std::string(64, '0');
  auto r = RunHook({kSave, dir / "out"}, Event("evt_hash", {bad_hash}).dump());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.stderr_data.find("sha256 mismatch"), std::string::npos) << r.stderr_data;

  EXPECT_EQ(RunHook({kSave, dir / "out"}, "not json").exit_code, 1);
  EXPECT_EQ(RunHook({kSave}, Event("evt_x").dump()).exit_code, 2);

  // A regular file where the folder should be: mkdir fails even for root.
  std::ofstream(dir / "file") << "x";
  r = RunHook({kSave, dir / "file/sub"}, Event("evt_io", {Attachment("2", "a", "b")}).dump());
  EXPECT_EQ(r.exit_code, 75) << r.stderr_data;
}

// ---- append-jsonl.sh ----

const std::string kAppend = kHooks + "/append-jsonl.sh";

TEST(AppendJsonlTest, TwentyConcurrentHooksWriteTwentyIntactLines) {
  TempDir dir;
  std::string file = dir / "events.jsonl";
  std::vector<std::future<util::ProcessResult>> runs;
  for (int i = 0; i < 20; ++i) {
    // Large events (up to ~1.3 MB) need many write(2) calls: without the
    // lock, lines would interleave.
    json event = Event("evt_" + std::to_string(i));
    event["message"]["text"] =
        std::string(static_cast<size_t>(i) * 65536 + 100, 'a' + i % 26) + "\nend of " + std::to_string(i);
    runs.push_back(std::async(std::launch::async, [event, file] { return RunHook({kAppend, file}, event.dump(2)); }));
  }
  for (auto& r : runs) {
    auto result = r.get();
    EXPECT_EQ(result.exit_code, 0) << result.stderr_data;
  }
  std::ifstream in(file);
  std::string line;
  std::set<std::string> ids;
  int lines = 0;
  while (std::getline(in, line)) {
    ++lines;
    json j = json::parse(line, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << "line " << lines << " is not one JSON value";
    std::string id = j["id"];
    int i = std::stoi(id.substr(4));
    EXPECT_EQ(j["message"]["text"].get<std::string>().size(),
              static_cast<size_t>(i) * 65536 + 100 + 8 + std::to_string(i).size());
    ids.insert(id);
  }
  EXPECT_EQ(lines, 20);
  EXPECT_EQ(ids.size(), 20u);
}

TEST(AppendJsonlTest, CompactLineAfterAPartialOne) {
  TempDir dir;
  std::string file = dir / "events.jsonl";
  std::ofstream(file) << "{\"torn\":";  // a writer died mid-line
  auto r = RunHook({kAppend, file}, Event("evt_1").dump(4));
  ASSERT_EQ(r.exit_code, 0) << r.stderr_data;
  std::string content = ReadFile(file);
  auto nl = content.find('\n');
  ASSERT_NE(nl, std::string::npos);
  EXPECT_EQ(content.substr(0, nl), "{\"torn\":");
  EXPECT_EQ(content.substr(nl + 1), Event("evt_1").dump() + "\n");
}

TEST(AppendJsonlTest, RejectsNonJsonAndTwoValues) {
  TempDir dir;
  std::string file = dir / "events.jsonl";
  EXPECT_EQ(RunHook({kAppend, file}, "{oops").exit_code, 1);
  EXPECT_EQ(RunHook({kAppend, file}, "{} {}").exit_code, 1);
  EXPECT_EQ(RunHook({kAppend}, "{}").exit_code, 2);
  EXPECT_EQ(ReadFile(file), "");
  // A folder that cannot be made (here: under a regular file) is retried later.
  std::ofstream(dir / "a-file") << "x";
  EXPECT_EQ(RunHook({kAppend, dir / "a-file/dir/events.jsonl"}, "{}").exit_code, 75);
}

// An empty volume (a new PersistentVolumeClaim) has no output folder yet: the
// hook makes it instead of retrying forever.
TEST(AppendJsonlTest, MakesAMissingOutputFolder) {
  TempDir dir;
  std::string file = dir / "output/events/events.jsonl";
  auto r = RunHook({kAppend, file}, Event("evt_1").dump());
  ASSERT_EQ(r.exit_code, 0) << r.stderr_data;
  EXPECT_EQ(ReadFile(file), Event("evt_1").dump() + "\n");
}

// ---- create-ticket.sh ----

const std::string kTicket = kHooks + "/create-ticket.sh";

/// A stand-in for Zammad on 127.0.0.1: records requests, answers as scripted.
class FakeZammad {
 public:
  struct Seen {
    std::string method, path, body;
    httplib::Headers headers;
    std::string Header(const std::string& name) const {
      auto it = headers.find(name);
      return it == headers.end() ? "" : it->second;
    }
  };
  FakeZammad() {
    auto handler = [this](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard lock(mu_);
      seen_.push_back({req.method, req.path, req.body, req.headers});
      int status = 201;
      if (!statuses_.empty()) {
        status = statuses_.front();
        statuses_.pop_front();
      }
      res.status = status;
      res.set_content(status == 201 ? R"({"id":42,"number":"31042","title":"x"})" : R"({"error":"scripted failure"})",
                      "application/json");
    };
    server_.Post(".*", handler);
    server_.Get(".*", handler);
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::yield();  // httplib 0.11: no ready signal
  }
  ~FakeZammad() {
    server_.stop();
    thread_.join();
  }
  void Script(std::deque<int> statuses) {
    std::lock_guard lock(mu_);
    statuses_ = std::move(statuses);
  }
  std::vector<Seen> seen() {
    std::lock_guard lock(mu_);
    return seen_;
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

 private:
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  std::mutex mu_;
  std::vector<Seen> seen_;
  std::deque<int> statuses_;
};

/// The settings for create-ticket.sh, the token in a file (kept in `dir`).
std::vector<std::pair<std::string, std::string>> TicketEnv(const std::string& url, const TempDir& dir) {
  std::ofstream(dir / "token") << "s3cr3t-token\n";
  return {{"TICKET_API_URL", url},
          {"TICKET_API_TOKEN_FILE", dir / "token"},
          {"TICKET_GROUP", "Support"},
          {"TICKET_TIMEOUT", "10"}};
}

TEST(CreateTicketTest, PostsAZammadTicketWithArticleAndAttachments) {
  TempDir dir;
  FakeZammad zammad;
  json event = Event("evt_ticket", {Attachment("2", "log.txt", "boom\n")});
  auto r = RunHook({kTicket}, event.dump(), TicketEnv(zammad.url() + "/", dir));
  ASSERT_EQ(r.exit_code, 0) << r.stderr_data;
  EXPECT_NE(r.stdout_data.find("number=31042"), std::string::npos) << r.stdout_data;

  auto seen = zammad.seen();
  ASSERT_EQ(seen.size(), 1u);
  const auto& req = seen[0];
  EXPECT_EQ(req.method, "POST");
  EXPECT_EQ(req.path, "/api/v1/tickets");
  EXPECT_EQ(req.Header("Authorization"), "Token token=s3cr3t-token");
  EXPECT_EQ(req.Header("Content-Type"), "application/json");
  json body = json::parse(req.body);
  EXPECT_EQ(body["title"], "Printer on fire");
  EXPECT_EQ(body["group"], "Support");
  EXPECT_EQ(body["customer_id"], "guess:ann@example.com");
  const json& article = body["article"];
  EXPECT_EQ(article["subject"], "Printer on fire");
  EXPECT_EQ(article["body"], event["message"]["text"]);
  EXPECT_EQ(article["content_type"], "text/plain");
  EXPECT_EQ(article["type"], "note");
  EXPECT_EQ(article["internal"], false);
  ASSERT_EQ(article["attachments"].size(), 1u);
  EXPECT_EQ(article["attachments"][0]["filename"], "log.txt");
  EXPECT_EQ(article["attachments"][0]["data"], Base64("boom\n"));
  EXPECT_EQ(article["attachments"][0]["mime-type"], "application/octet-stream");
}

TEST(CreateTicketTest, HtmlOnlyMailAndEmptySubject) {
  TempDir dir;
  FakeZammad zammad;
  json event = Event("evt_html");
  event["message"]["text"] = nullptr;
  event["message"]["html"] = "<p>hi</p>";
  event["message"]["subject"] = "";
  auto env = TicketEnv(zammad.url(), dir);
  env.erase(env.begin() + 2);  // no TICKET_GROUP: Zammad's default group
  ASSERT_EQ(RunHook({kTicket}, event.dump(), env).exit_code, 0);
  json body = json::parse(zammad.seen().at(0).body);
  EXPECT_EQ(body["title"], "(no subject)");
  EXPECT_EQ(body["group"], "Users");
  EXPECT_EQ(body["article"]["body"], "<p>hi</p>");
  EXPECT_EQ(body["article"]["content_type"], "text/html");
}

TEST(CreateTicketTest, ServerErrorsRetryClientErrorsArePermanent) {
  TempDir dir;
  FakeZammad zammad;
  zammad.Script({503, 422, 429, 401});
  std::string event = Event("evt_status").dump();
  auto r = RunHook({kTicket}, event, TicketEnv(zammad.url(), dir));
  EXPECT_EQ(r.exit_code, 75) << r.stderr_data;
  EXPECT_NE(r.stderr_data.find("503"), std::string::npos);
  r = RunHook({kTicket}, event, TicketEnv(zammad.url(), dir));
  EXPECT_EQ(r.exit_code, 1) << r.stderr_data;
  EXPECT_NE(r.stderr_data.find("422"), std::string::npos);
  EXPECT_EQ(RunHook({kTicket}, event, TicketEnv(zammad.url(), dir)).exit_code, 75);  // 429
  EXPECT_EQ(RunHook({kTicket}, event, TicketEnv(zammad.url(), dir)).exit_code, 1);   // 401
  EXPECT_EQ(zammad.seen().size(), 4u);
}

TEST(CreateTicketTest, ConnectionRefusedRetriesAndTheTokenIsNeverPrinted) {
  TempDir dir;
  std::string url;
  {
    FakeZammad gone;  // bind a port, then free it: nothing listens there now
    url = gone.url();
  }
  auto r = RunHook({kTicket}, Event("evt_down").dump(), TicketEnv(url, dir));
  EXPECT_EQ(r.exit_code, 75) << r.stderr_data;
  EXPECT_EQ(r.stderr_data.find("s3cr3t-token"), std::string::npos);
  EXPECT_EQ(r.stdout_data.find("s3cr3t-token"), std::string::npos);
}

TEST(CreateTicketTest, TheTokenComesFromAFileAndStaysOutOfCurlsEnvironment) {
  TempDir dir;
  FakeZammad zammad;
  auto env = TicketEnv(zammad.url(), dir);
  for (auto& kv : SpyOn(dir, "curl")) env.push_back(kv);
  auto r = RunHook({kTicket}, Event("evt_file").dump(), env);
  ASSERT_EQ(r.exit_code, 0) << r.stderr_data;
  ASSERT_EQ(zammad.seen().size(), 1u);
  EXPECT_EQ(zammad.seen()[0].Header("Authorization"), "Token token=s3cr3t-token");
  auto calls = SpiedCalls(dir, "curl");
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].find("s3cr3t-token"), std::string::npos) << calls[0];

  // The token given directly still works, and is not passed on either.
  env = {{"TICKET_API_URL", zammad.url()}, {"TICKET_API_TOKEN", "direct-token"}};
  for (auto& kv : SpyOn(dir, "curl")) env.push_back(kv);
  r = RunHook({kTicket}, Event("evt_direct").dump(), env);
  ASSERT_EQ(r.exit_code, 0) << r.stderr_data;
  EXPECT_EQ(zammad.seen().at(1).Header("Authorization"), "Token token=direct-token");
  for (const auto& call : SpiedCalls(dir, "curl")) EXPECT_EQ(call.find("direct-token"), std::string::npos) << call;
}

TEST(CreateTicketTest, AMissingEmptyOrDoubleTokenIsAUsageError) {
  TempDir dir;
  std::string event = Event("evt_token").dump();
  auto env = TicketEnv("http://127.0.0.1:9", dir);
  env[1].second = dir / "missing";
  auto r = RunHook({kTicket}, event, env);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.stderr_data.find("TICKET_API_TOKEN_FILE"), std::string::npos) << r.stderr_data;
  std::ofstream(dir / "empty") << "\n";
  env[1].second = dir / "empty";
  EXPECT_EQ(RunHook({kTicket}, event, env).exit_code, 2);
  env = TicketEnv("http://127.0.0.1:9", dir);
  env.emplace_back("TICKET_API_TOKEN", "x");
  r = RunHook({kTicket}, event, env);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.stderr_data.find("both"), std::string::npos) << r.stderr_data;
}

TEST(CreateTicketTest, MissingSettingsAreUsageErrors) {
  TempDir dir;
  auto r = RunHook({kTicket}, Event("evt_cfg").dump(), {{"TICKET_API_URL", ""}, {"TICKET_API_TOKEN", "x"}});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.stderr_data.find("TICKET_API_URL"), std::string::npos);
  json no_from = Event("evt_nofrom");
  no_from["message"]["from"] = json::array();
  EXPECT_EQ(RunHook({kTicket}, no_from.dump(), TicketEnv("http://127.0.0.1:9", dir)).exit_code, 1);
}

}  // namespace
}  // namespace mailhook::hooks
