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

#include "util/subprocess.h"

namespace mailhook::hooks {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using namespace std::chrono_literals;

const std::string kHooks = MAILHOOK_HOOKS_DIR;

/// A private temp dir, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "mh_hooks_XXXXXX").string();
    path_ = mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

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

// ---- save-attachments.sh ----

const std::string kSave = kHooks + "/save-attachments.sh";

TEST(SaveAttachmentsTest, WritesExactBytesAndTheEventBesideThem) {
  TempDir dir;
  std::string binary;
  for (int i = 0; i < 256; ++i) binary += static_cast<char>(i);
  binary += std::string("\r\n\0\xff tail", 9);
  json event = Event("evt_0123abcd", {Attachment("2", "invoice.pdf", binary),
                                      Attachment("3", "notes.txt", "plain\n")});
  event["message"]["attachments"][1]["sha256"] = nullptr;
  auto r = RunHook({kSave, dir / "out"}, event.dump());
  ASSERT_EQ(r.exit_code, 0) << r.stderr_data;
  EXPECT_EQ(Listing(dir / "out"), std::set<std::string>{"evt_0123abcd"});
  EXPECT_EQ(Listing(dir / "out/evt_0123abcd"),
            (std::set<std::string>{"invoice.pdf", "notes.txt", "event.json"}));
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
            (std::set<std::string>{"escape.sh", "passwd", "win.ini", "bashrc", "attachment-6",
                                   "attachment-7", "report.pdf", "REPORT-1.pdf", "report-2.pdf",
                                   "event-1.json", "badname______.txt", "Prüfbericht März.pdf",
                                   "event.json"}));
  for (const auto& name : Listing(base)) EXPECT_NE(name[0], '.') << name;
  EXPECT_EQ(ReadFile(base + "escape.sh"), "a");
  EXPECT_EQ(ReadFile(base + "report-2.pdf"), "i");
  EXPECT_EQ(ReadFile(base + "event-1.json"), "j");
  EXPECT_EQ(ReadFile(base + "Prüfbericht März.pdf"), "l");
}

TEST(SaveAttachmentsTest, RedeliveryOverwritesInsteadOfAddingCopies) {
  TempDir dir;
  json event = Event("evt_again", {Attachment("2", "a.txt", "1"), Attachment("3", "a.txt", "2")});
  ASSERT_EQ(RunHook({kSave, dir / "out"}, event.dump()).exit_code, 0);
  ASSERT_EQ(RunHook({kSave, dir / "out"}, event.dump()).exit_code, 0);
  EXPECT_EQ(Listing(dir / "out/evt_again"),
            (std::set<std::string>{"a.txt", "a-1.txt", "event.json"}));
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
    event["message"]["text"] = std::string(static_cast<size_t>(i) * 65536 + 100, 'a' + i % 26) +
                               "\nend of " + std::to_string(i);
    runs.push_back(std::async(std::launch::async, [event, file] {
      return RunHook({kAppend, file}, event.dump(2));
    }));
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
  EXPECT_EQ(RunHook({kAppend, dir / "missing/dir/events.jsonl"}, "{}").exit_code, 75);
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
      res.set_content(status == 201 ? R"({"id":42,"number":"31042","title":"x"})"
                                    : R"({"error":"scripted failure"})",
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

std::vector<std::pair<std::string, std::string>> TicketEnv(const std::string& url) {
  return {{"TICKET_API_URL", url},
          {"TICKET_API_TOKEN", "s3cr3t-token"},
          {"TICKET_GROUP", "Support"},
          {"TICKET_TIMEOUT", "10"}};
}

TEST(CreateTicketTest, PostsAZammadTicketWithArticleAndAttachments) {
  FakeZammad zammad;
  json event = Event("evt_ticket", {Attachment("2", "log.txt", "boom\n")});
  auto r = RunHook({kTicket}, event.dump(), TicketEnv(zammad.url() + "/"));
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
  FakeZammad zammad;
  json event = Event("evt_html");
  event["message"]["text"] = nullptr;
  event["message"]["html"] = "<p>hi</p>";
  event["message"]["subject"] = "";
  auto env = TicketEnv(zammad.url());
  env.erase(env.begin() + 2);  // no TICKET_GROUP: Zammad's default group
  ASSERT_EQ(RunHook({kTicket}, event.dump(), env).exit_code, 0);
  json body = json::parse(zammad.seen().at(0).body);
  EXPECT_EQ(body["title"], "(no subject)");
  EXPECT_EQ(body["group"], "Users");
  EXPECT_EQ(body["article"]["body"], "<p>hi</p>");
  EXPECT_EQ(body["article"]["content_type"], "text/html");
}

TEST(CreateTicketTest, ServerErrorsRetryClientErrorsArePermanent) {
  FakeZammad zammad;
  zammad.Script({503, 422, 429, 401});
  std::string event = Event("evt_status").dump();
  auto r = RunHook({kTicket}, event, TicketEnv(zammad.url()));
  EXPECT_EQ(r.exit_code, 75) << r.stderr_data;
  EXPECT_NE(r.stderr_data.find("503"), std::string::npos);
  r = RunHook({kTicket}, event, TicketEnv(zammad.url()));
  EXPECT_EQ(r.exit_code, 1) << r.stderr_data;
  EXPECT_NE(r.stderr_data.find("422"), std::string::npos);
  EXPECT_EQ(RunHook({kTicket}, event, TicketEnv(zammad.url())).exit_code, 75);  // 429
  EXPECT_EQ(RunHook({kTicket}, event, TicketEnv(zammad.url())).exit_code, 1);   // 401
  EXPECT_EQ(zammad.seen().size(), 4u);
}

TEST(CreateTicketTest, ConnectionRefusedRetriesAndTheTokenIsNeverPrinted) {
  std::string url;
  {
    FakeZammad gone;  // bind a port, then free it: nothing listens there now
    url = gone.url();
  }
  auto r = RunHook({kTicket}, Event("evt_down").dump(), TicketEnv(url));
  EXPECT_EQ(r.exit_code, 75) << r.stderr_data;
  EXPECT_EQ(r.stderr_data.find("s3cr3t-token"), std::string::npos);
  EXPECT_EQ(r.stdout_data.find("s3cr3t-token"), std::string::npos);
}

TEST(CreateTicketTest, MissingSettingsAreUsageErrors) {
  auto r = RunHook({kTicket}, Event("evt_cfg").dump(),
                   {{"TICKET_API_URL", ""}, {"TICKET_API_TOKEN", "x"}});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.stderr_data.find("TICKET_API_URL"), std::string::npos);
  json no_from = Event("evt_nofrom");
  no_from["message"]["from"] = json::array();
  EXPECT_EQ(RunHook({kTicket}, no_from.dump(), TicketEnv("http://127.0.0.1:9")).exit_code, 1);
}

}  // namespace
}  // namespace mailhook::hooks
