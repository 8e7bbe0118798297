// Session against a scripted server: BODYSTRUCTURE conversion for every
// Dovecot answer in the shared corpus, and hostile responses that must give an
// error, never a crash. The real-server behaviour is in tests/integration.

#include <dirent.h>

#include <fstream>
#include <regex>
#include <sstream>

#include <gtest/gtest.h>

#include "fake_imap_server.h"
#include "imap/session.h"
#include "log_capture.h"

namespace mailhook::imap {
namespace {

using fake::FakeImapServer;

SessionOptions Plain(int port) { return fake::FakeSessionOptions(port); }

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// "{N}" outside a literal starts one: insert CRLF and skip its N bytes.
std::string RestoreLiterals(const std::string& in) {
  std::string out;
  std::smatch m;
  static const std::regex kLiteral(R"(^\{(\d+)\})");
  for (size_t i = 0; i < in.size();) {
    std::string rest = in.substr(i, 24);
    if (in[i] == '{' && std::regex_search(rest, m, kLiteral)) {
      size_t n = std::stoul(m[1]);
      out += m[0].str() + "\r\n" + in.substr(i + m[0].length(), n);
      i += m[0].length() + n;
    } else {
      out += in[i++];
    }
  }
  return out;
}

void CheckSections(const mime::Part& p) {
  // Dovecot's ("" "") (a Content-Type it cannot parse, only in
  // stalwart-malformed__017) stays untyped: the Extractor re-parses it.
  EXPECT_EQ(p.type.empty(), p.subtype.empty());
  for (char c : p.type + p.subtype) EXPECT_FALSE(c >= 'A' && c <= 'Z') << p.type << "/" << p.subtype;
  for (size_t i = 0; i < p.children.size(); ++i) {
    std::string expected = (p.section.empty() ? "" : p.section + ".") + std::to_string(i + 1);
    EXPECT_EQ(p.children[i].section, expected);
    CheckSections(p.children[i]);
  }
}

TEST(SessionFakeTest, ConvertsEveryCorpusBodyStructure) {
  std::string dir = std::string(MAILHOOK_CORPUS_DIR) + "/bodystructure";
  DIR* d = opendir(dir.c_str());
  ASSERT_NE(d, nullptr) << dir;
  int files = 0;
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name.size() < 5 || name.substr(name.size() - 4) != ".txt") continue;
    std::string line = ReadFile(dir + "/" + name);
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
    // The corpus stores each answer on one line; put back the CRLF that
    // follows every literal's {N} on the wire (RFC 3501 §4.3).
    line = RestoreLiterals(line);
    // "* 98 FETCH (UID 98 BODYSTRUCTURE (...))"
    uint32_t uid = static_cast<uint32_t>(std::stoul(line.substr(line.find("UID ") + 4)));
    SCOPED_TRACE(name);
    FakeImapServer server([&](const std::string&) { return line + "\r\n"; });
    auto s = Session::Open(Plain(server.port()));
    ASSERT_TRUE(s.ok()) << s.error().message();
    ASSERT_TRUE((*s)->Select("INBOX").ok());
    auto metas = (*s)->FetchMeta({uid});
    ASSERT_TRUE(metas.ok()) << name << ": " << metas.error().message();
    ASSERT_EQ(metas->size(), 1u) << name;
    const mime::Part& root = (*metas)[0].structure;
    if (root.IsMultipart()) {
      EXPECT_EQ(root.section, "") << name;
      EXPECT_FALSE(root.children.empty()) << name;
    } else {
      EXPECT_EQ(root.section, "1") << name;
    }
    CheckSections(root);
    ++files;
  }
  closedir(d);
  EXPECT_GE(files, 100);
}

TEST(SessionFakeTest, MixedMessageStructureDetails) {
  const std::string line =
      "* 98 FETCH (UID 98 BODYSTRUCTURE ((\"text\" \"plain\" (\"charset\" \"ISO-8859-1\") NIL NIL "
      "\"quoted-printable\" 25 1 NIL NIL NIL NIL)(\"TEXT\" \"X-Ruby-Script\" (\"name\" \"hello.rb\") "
      "\"<id1@x>\" NIL \"7bit\" 28 2 NIL (\"ATTACHMENT\" (\"filename\" \"api.rb\")) NIL NIL) \"mixed\" "
      "(\"boundary\" \"b1\") NIL NIL NIL))\r\n";
  FakeImapServer server([&](const std::string&) { return line; });
  auto s = Session::Open(Plain(server.port()));
  ASSERT_TRUE(s.ok());
  ASSERT_TRUE((*s)->Select("INBOX").ok());
  auto metas = (*s)->FetchMeta({98});
  ASSERT_TRUE(metas.ok());
  ASSERT_EQ(metas->size(), 1u);
  const mime::Part& root = (*metas)[0].structure;
  EXPECT_EQ(root.subtype, "mixed");
  ASSERT_EQ(root.children.size(), 2u);
  const mime::Part& att = root.children[1];
  EXPECT_EQ(att.section, "2");
  EXPECT_EQ(att.subtype, "x-ruby-script");  // Cyrus-style upper case is folded
  EXPECT_EQ(att.disposition.value_or(""), "attachment");
  ASSERT_EQ(att.disposition_params.size(), 1u);
  EXPECT_EQ(att.disposition_params[0].name, "filename");
  EXPECT_EQ(att.disposition_params[0].value, "api.rb");
  EXPECT_EQ(att.id.value_or(""), "<id1@x>");
  EXPECT_EQ(att.size, 28u);
  EXPECT_EQ(root.children[0].encoding, "quoted-printable");
}

TEST(SessionFakeTest, UidFetchStarFilterIgnoresUnrequestedMessages) {
  // `UID FETCH n:*` returns the last message even when n > max UID; an
  // unsolicited FETCH for another UID must not be taken as ours.
  FakeImapServer server([&](const std::string&) {
    return std::string(
        "* 3 FETCH (UID 50 BODYSTRUCTURE (\"text\" \"plain\" NIL NIL NIL \"7bit\" 1 1 NIL NIL NIL NIL))\r\n");
  });
  auto s = Session::Open(Plain(server.port()));
  ASSERT_TRUE(s.ok());
  ASSERT_TRUE((*s)->Select("INBOX").ok());
  auto metas = (*s)->FetchMeta({60});
  ASSERT_TRUE(metas.ok());
  EXPECT_TRUE(metas->empty());
}

TEST(SessionFakeTest, EmptyFlagListIsNoFlags) {
  // libetpan hands `FLAGS ()` over as a NULL list; it used to crash FetchMeta.
  FakeImapServer server([&](const std::string&) {
    return std::string(
        "* 1 FETCH (UID 1 FLAGS () BODYSTRUCTURE (\"text\" \"plain\" NIL NIL NIL \"7bit\" 1 1 NIL NIL NIL NIL))\r\n");
  });
  auto s = Session::Open(Plain(server.port()));
  ASSERT_TRUE(s.ok());
  ASSERT_TRUE((*s)->Select("INBOX").ok());
  auto metas = (*s)->FetchMeta({1});
  ASSERT_TRUE(metas.ok()) << metas.error().message();
  ASSERT_EQ(metas->size(), 1u);
  EXPECT_TRUE((*metas)[0].flags.empty());
}

TEST(SessionFakeTest, HostileResponsesAreErrorsNotCrashes) {
  const std::vector<std::string> hostile = {
      "* 1 FETCH (UID 1 BODYSTRUCTURE (((((((\r\n",
      "* 1 FETCH (UID 1 BODY[HEADER] {999999999}\r\nshort\r\n",
      "* 1 FETCH (UID 4294967296 FLAGS (\\Seen))\r\n",
      "* garbage \x01\x02\xff\r\n",
      std::string(70000, 'A') + "\r\n",
  };
  for (const auto& h : hostile) {
    FakeImapServer server([&](const std::string&) { return h; });
    SessionOptions o = Plain(server.port());
    o.timeout = std::chrono::milliseconds(1000);
    auto s = Session::Open(o);
    ASSERT_TRUE(s.ok());
    ASSERT_TRUE((*s)->Select("INBOX").ok());
    auto metas = (*s)->FetchMeta({1});
    // Either a clean error or a result without the broken message: never a crash.
    if (metas.ok()) {
      for (const auto& m : *metas) EXPECT_EQ(m.uid, 1u);
    } else {
      EXPECT_FALSE(metas.error().message().empty());
    }
  }
}

TEST(SessionFakeTest, LoginIsMaskedInNothingWeLog) {
  // The password travels only in the LOGIN command itself: with every area
  // at trace (the protocol is logged), it is in no log line, while the LOGIN
  // line is logged with its password withheld. The server also echoes the
  // command back in its NO, which must not leak it either.
  const std::string password = "pw-Zq7!secret";
  FakeImapServer server([&](const std::string&) { return std::string(); }, "* OK [CAPABILITY IMAP4rev1 IDLE] fake\r\n",
                        "IMAP4rev1 IDLE UIDPLUS");
  testsupport::LogCapture logs({"imap", "daemon", "config"});
  SessionOptions o = Plain(server.port());
  o.password = util::Secret(password);
  auto s = Session::Open(o);
  ASSERT_TRUE(s.ok()) << s.error().message();
  (*s)->Logout();
  s->reset();
  server.Join();
  ASSERT_NE(server.transcript().find(password), std::string::npos) << "the password was never sent: nothing to mask";
  const std::string text = logs.Text();
  EXPECT_EQ(text.find(password), std::string::npos) << text;
  // The LOGIN went by at trace, with the user name and without the password.
  EXPECT_NE(text.find("imap.sent"), std::string::npos) << text;
  EXPECT_NE(text.find("folder=- line=\"1 LOGIN <redacted>\""), std::string::npos) << text;
  EXPECT_NE(text.find("imap.received"), std::string::npos) << text;
}

TEST(SessionFakeTest, LoginRejectedWithTheCommandEchoedLogsNoPassword) {
  const std::string password = "pw-Zq7!secret";
  FakeImapServer server([&](const std::string&) { return std::string(); }, "* OK [CAPABILITY IMAP4rev1 IDLE] fake\r\n",
                        "IMAP4rev1 IDLE UIDPLUS", {{"LOGIN", "$TAG NO [AUTHENTICATIONFAILED] rejected: $LINE\r\n"}});
  testsupport::LogCapture logs({"imap"});
  SessionOptions o = Plain(server.port());
  o.password = util::Secret(password);
  auto s = Session::Open(o);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().message().find(password), std::string::npos) << s.error().message();
  server.Join();
  ASSERT_NE(server.transcript().find(password), std::string::npos);
  const std::string text = logs.Text();
  EXPECT_NE(text.find("imap.received"), std::string::npos) << text;
  EXPECT_EQ(text.find(password), std::string::npos) << text;
}

TEST(SessionFakeTest, BinarySizeIsReadFromTheRawResponse) {
  std::string seen;
  FakeImapServer server(
      [&](const std::string& cmd) {
        seen = cmd;
        // An unsolicited EXISTS in between must not confuse the reader.
        return std::string("* 4 EXISTS\r\n* 3 FETCH (UID 7 BINARY.SIZE[2] 142)\r\n");
      },
      "* OK [CAPABILITY IMAP4rev1] fake\r\n", "IMAP4rev1 IDLE BINARY");
  auto s = Session::Open(Plain(server.port()));
  ASSERT_TRUE(s.ok());
  ASSERT_TRUE((*s)->Select("INBOX").ok());
  auto size = (*s)->FetchBinarySize(7, "2");
  ASSERT_TRUE(size.ok()) << size.error().message();
  ASSERT_TRUE(size->has_value());
  EXPECT_EQ(**size, 142u);
  EXPECT_EQ(seen, "UID FETCH 7 (BINARY.SIZE[2])");
  // The session is still in step afterwards.
  EXPECT_TRUE((*s)->Noop().ok());
}

TEST(SessionFakeTest, BinaryBodyKeepsNulOctetsAndTheSessionInStep) {
  std::string seen;
  const std::string utf16(std::string("h\0i\0\r\0\n\0", 8));
  FakeImapServer server(
      [&](const std::string& cmd) {
        seen = cmd;
        // literal8 (RFC 3516 §4.2), with an unsolicited EXISTS before it.
        return "* 4 EXISTS\r\n* 3 FETCH (UID 7 BINARY[1] ~{8}\r\n" + utf16 + ")\r\n";
      },
      "* OK [CAPABILITY IMAP4rev1] fake\r\n", "IMAP4rev1 IDLE BINARY");
  auto s = Session::Open(Plain(server.port()));
  ASSERT_TRUE(s.ok());
  ASSERT_TRUE((*s)->Select("INBOX").ok());
  auto body = (*s)->FetchBinary(7, "1");
  ASSERT_TRUE(body.ok()) << body.error().message();
  ASSERT_TRUE(body->has_value());
  EXPECT_EQ(**body, utf16);
  EXPECT_EQ(seen, "UID FETCH 7 (BINARY.PEEK[1])");
  EXPECT_TRUE((*s)->Noop().ok());
}

TEST(SessionFakeTest, BinaryBodyEdgeCases) {
  std::string reply;
  FakeImapServer server([&](const std::string&) { return reply; }, "* OK [CAPABILITY IMAP4rev1] fake\r\n",
                        "IMAP4rev1 IDLE BINARY");
  auto s = Session::Open(Plain(server.port()));
  ASSERT_TRUE(s.ok());
  ASSERT_TRUE((*s)->Select("INBOX").ok());
  // A plain literal and the UID after it.
  reply = "* 3 FETCH (BINARY[2] {3}\r\nabc UID 7)\r\n";
  auto plain = (*s)->FetchBinary(7, "2");
  ASSERT_TRUE(plain.ok() && plain->has_value());
  EXPECT_EQ(**plain, "abc");
  // An empty body as a quoted string.
  reply = "* 3 FETCH (UID 7 BINARY[2] \"\")\r\n";
  auto empty = (*s)->FetchBinary(7, "2");
  ASSERT_TRUE(empty.ok() && empty->has_value());
  EXPECT_EQ(**empty, "");
  // The server cannot decode the part (NO [UNKNOWN-CTE], here BAD): unknown, BODY[] is used instead.
  reply = "BAD";
  auto refused = (*s)->FetchBinary(7, "2");
  ASSERT_TRUE(refused.ok());
  EXPECT_FALSE(refused->has_value());
  EXPECT_TRUE((*s)->Noop().ok());
  // A hostile size is refused, not allocated.
  reply = "* 3 FETCH (UID 7 BINARY[2] ~{99999999999}\r\n";
  auto hostile = (*s)->FetchBinary(7, "2");
  ASSERT_FALSE(hostile.ok());
  EXPECT_NE(hostile.error().message().find("refusing"), std::string::npos) << hostile.error().message();
}

TEST(SessionFakeTest, BinaryBodyWithoutCapabilityIsUnknown) {
  FakeImapServer server([&](const std::string&) { return std::string(); });
  auto s = Session::Open(Plain(server.port()));
  ASSERT_TRUE(s.ok());
  auto body = (*s)->FetchBinary(7, "1");
  ASSERT_TRUE(body.ok());
  EXPECT_FALSE(body->has_value());
}

TEST(SessionFakeTest, BinarySizeWithoutCapabilityIsUnknown) {
  FakeImapServer server([&](const std::string&) { return std::string(); });
  auto s = Session::Open(Plain(server.port()));
  ASSERT_TRUE(s.ok());
  auto size = (*s)->FetchBinarySize(7, "2");
  ASSERT_TRUE(size.ok());
  EXPECT_FALSE(size->has_value());
}

TEST(SessionFakeTest, ConnectionRefusedNamesTheFix) {
  FakeImapServer server([&](const std::string&) { return std::string(); });
  SessionOptions o = Plain(1);  // nothing listens on port 1
  auto s = Session::Open(o);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().retry(), util::RetryClass::kBackoff);
  EXPECT_NE(s.error().message().find("cannot connect"), std::string::npos) << s.error().message();
  EXPECT_NE(s.error().message().find("993 for tls: implicit, 143 for starttls"), std::string::npos)
      << s.error().message();
}

}  // namespace
}  // namespace mailhook::imap
