// Session against a hostile or broken scripted server: per-command response
// budgets, partial fetches, split FETCH responses, STARTTLS injection,
// credential redaction and the top of the UID space (issue #7).

#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <climits>
#include <fstream>
#include <functional>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>

#include "fake_imap_server.h"
#include "imap/bodystructure.h"
#include "imap/session.h"
#include "imap/tls_stream.h"
#include "util/log.h"

namespace mailhook::imap {
namespace {

using fake::FakeImapServer;

const char* kBinaryGreeting = "* OK [CAPABILITY IMAP4rev1] fake\r\n";
const char* kBinaryCaps = "IMAP4rev1 IDLE BINARY";

SessionOptions Plain(int port) { return fake::FakeSessionOptions(port); }

std::unique_ptr<Session> OpenSelected(const SessionOptions& o) {
  auto s = Session::Open(o);
  EXPECT_TRUE(s.ok()) << s.error().message();
  if (!s.ok()) return nullptr;
  EXPECT_TRUE((*s)->Select("INBOX").ok());
  return std::move(*s);
}

std::string Literal(const std::string& data) { return "{" + std::to_string(data.size()) + "}\r\n" + data; }

const std::string kTextPart = "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0 NIL NIL NIL NIL)";

// Dovecot's BODYSTRUCTURE of a multipart of `parts` empty text parts.
std::string PartBomb(size_t parts) {
  std::string out = "(";
  out.reserve(parts * kTextPart.size() + 64);
  for (size_t i = 0; i < parts; ++i) out += kTextPart;
  return out + " \"mixed\" (\"boundary\" \"b\") NIL NIL NIL)";
}

// Runs `fn` in a child process and returns how much its peak RSS grew (KiB),
// or -1 when the child failed. A child keeps other tests' peaks out of it.
long PeakRssGrowthKb(const std::function<bool()>& fn) {
  int pipefd[2];
  if (pipe(pipefd) != 0) return -1;
  pid_t pid = fork();
  if (pid == 0) {
    close(pipefd[0]);
    rusage before{};
    getrusage(RUSAGE_SELF, &before);
    bool ok = fn();
    rusage after{};
    getrusage(RUSAGE_SELF, &after);
    long growth = after.ru_maxrss - before.ru_maxrss;
    if (write(pipefd[1], &growth, sizeof growth) != sizeof growth) _exit(2);
    _exit(ok ? 0 : 1);
  }
  close(pipefd[1]);
  long growth = -1;
  if (read(pipefd[0], &growth, sizeof growth) != sizeof growth) growth = -1;
  close(pipefd[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? growth : -1;
}

// --- 1. the per-command response budget -------------------------------------

TEST(SessionLimitsTest, MetaResponsePastTheBudgetIsResponseTooLarge) {
  const std::string header(2 << 20, 'h');
  FakeImapServer server([&](const std::string&) {
    return "* 1 FETCH (UID 1 BODY[HEADER] " + Literal(header) + " BODYSTRUCTURE " + kTextPart + ")\r\n";
  });
  SessionOptions o = Plain(server.port());
  o.max_meta_response_bytes = 1 << 20;
  auto s = OpenSelected(o);
  ASSERT_TRUE(s);
  auto metas = s->FetchMeta({1});
  ASSERT_FALSE(metas.ok());
  EXPECT_EQ(metas.error().code(), "imap.response_too_large");
  EXPECT_EQ(metas.error().retry(), util::RetryClass::kBackoff);
  const std::string& m = metas.error().message();
  EXPECT_NE(m.find("UID FETCH"), std::string::npos) << m;
  EXPECT_NE(m.find("1048576"), std::string::npos) << m;
  EXPECT_NE(m.find("hostile or broken"), std::string::npos) << m;
}

TEST(SessionLimitsTest, BudgetIsPerCommand) {
  // Two responses of 60% of the budget each: neither alone passes it.
  const std::string header(600 << 10, 'h');
  FakeImapServer server([&](const std::string&) {
    return "* 1 FETCH (UID 1 BODY[HEADER] " + Literal(header) + " BODYSTRUCTURE " + kTextPart + ")\r\n";
  });
  SessionOptions o = Plain(server.port());
  o.max_meta_response_bytes = 1 << 20;
  auto s = OpenSelected(o);
  ASSERT_TRUE(s);
  for (int i = 0; i < 2; ++i) {
    auto metas = s->FetchMeta({1});
    ASSERT_TRUE(metas.ok()) << metas.error().message();
    ASSERT_EQ(metas->size(), 1u);
    EXPECT_EQ((*metas)[0].header.size(), header.size());
  }
}

TEST(SessionLimitsTest, PartBombBodyStructureIsRefusedByTheDefaultBudget) {
  // 300,000 empty parts: Dovecot's BODYSTRUCTURE of them is ~20 MB.
  const std::string bomb = PartBomb(300000);
  ASSERT_GT(bomb.size(), SessionOptions::kDefaultMaxMetaResponseBytes);
  FakeImapServer server([&](const std::string&) { return "* 1 FETCH (UID 1 BODYSTRUCTURE " + bomb + ")\r\n"; });
  auto s = OpenSelected(Plain(server.port()));
  ASSERT_TRUE(s);
  auto metas = s->FetchMeta({1});
  ASSERT_FALSE(metas.ok());
  EXPECT_EQ(metas.error().code(), "imap.response_too_large");
}

// The peak RSS growth (KiB) of fetching `structure` as a BODYSTRUCTURE; the
// server (and its copies of the response) runs in another process.
long PeakForStructure(const std::function<std::string()>& structure) {
  fake::FakeImapServerProcess server([&] { return "* 1 FETCH (UID 1 BODYSTRUCTURE " + structure() + ")\r\n"; });
  return PeakRssGrowthKb([&] {
    auto s = OpenSelected(Plain(server.port()));
    if (!s) return false;
    auto metas = s->FetchMeta({1});
    if (!metas.ok()) std::cerr << metas.error().message() << "\n";
    return metas.ok() && metas->size() == 1 && (*metas)[0].structure_cut;
  });
}

// As many `part`s as the default meta budget lets through, in one multipart
// (depth 1) or in chains of `depth` nested multiparts.
std::string BombAtTheBudget(const std::string& part, size_t depth) {
  const size_t per_chain = part.size() + depth * 6;  // `(` ... ` "m")` a level
  const size_t chains = (SessionOptions::kDefaultMaxMetaSyntaxBytes - 4096) / per_chain;
  std::string out = "(";
  for (size_t c = 0; c < chains; ++c) {
    out += std::string(depth - 1, '(') + part;
    for (size_t i = 1; i < depth; ++i) out += " \"m\")";
  }
  return out + " \"mixed\")";
}

TEST(SessionLimitsTest, StructuresAtTheDefaultMetaBudgetParseWithinMemoryBound) {
  const std::string smallest = "(\"a\" \"b\" NIL NIL NIL \"7bit\" 0)";
  const struct {
    const char* name;
    std::string part;
    size_t depth;
  } shapes[] = {{"Dovecot's empty text parts", kTextPart, 1},
                {"the smallest legal parts", smallest, 1},
                {"chains of 900 nested multiparts", smallest, 900}};
  for (const auto& shape : shapes) {
    const std::string structure = BombAtTheBudget(shape.part, shape.depth);
    ASSERT_LT(structure.size(), SessionOptions::kDefaultMaxMetaSyntaxBytes);
    long growth = PeakForStructure([&] { return structure; });
    std::cerr << "[ measured ] " << shape.name << ": " << structure.size()
              << " bytes of BODYSTRUCTURE, peak RSS growth " << growth << " KiB\n";
    EXPECT_GE(growth, 0) << shape.name << ": the fetch failed";
#ifdef __SANITIZE_ADDRESS__
    const long bound_kib = 300 * 1024;  // ASan's redzones and quarantine: ~2-3x the heap
#else
    const long bound_kib = 100 * 1024;
#endif
    EXPECT_LT(growth, bound_kib) << shape.name;
  }
}

TEST(SessionLimitsTest, HeaderLiteralsCountOnlyAgainstTheWholeBudget) {
  // 5 MiB of header blocks (literals, only copied by libetpan) pass the
  // 1.5 MiB bound on parsed bytes; the whole response stays under 8 MiB.
  const std::string header(1 << 20, 'h');
  FakeImapServer server([&](const std::string&) {
    std::string out;
    for (int uid = 1; uid <= 5; ++uid) {
      out += "* " + std::to_string(uid) + " FETCH (UID " + std::to_string(uid) + " BODY[HEADER] " + Literal(header) +
             " BODYSTRUCTURE " + kTextPart + ")\r\n";
    }
    return out;
  });
  auto s = OpenSelected(Plain(server.port()));
  ASSERT_TRUE(s);
  auto metas = s->FetchMeta({1, 2, 3, 4, 5});
  ASSERT_TRUE(metas.ok()) << metas.error().message();
  EXPECT_EQ(metas->size(), 5u);
}

TEST(SessionLimitsTest, ParsedBytesPastTheMetaSyntaxBoundAreResponseTooLarge) {
  // A part bomb under the whole-response bound but over the parsed-bytes one.
  const std::string bomb = PartBomb((SessionOptions::kDefaultMaxMetaSyntaxBytes + (256 << 10)) / kTextPart.size());
  ASSERT_LT(bomb.size(), SessionOptions::kDefaultMaxMetaResponseBytes);
  FakeImapServer server([&](const std::string&) { return "* 1 FETCH (UID 1 BODYSTRUCTURE " + bomb + ")\r\n"; });
  auto s = OpenSelected(Plain(server.port()));
  ASSERT_TRUE(s);
  auto metas = s->FetchMeta({1});
  ASSERT_FALSE(metas.ok());
  EXPECT_EQ(metas.error().code(), "imap.response_too_large");
  EXPECT_NE(metas.error().message().find("outside literals"), std::string::npos) << metas.error().message();
}

TEST(SessionLimitsTest, PartBombStructureIsCutAtThePartCap) {
  FakeImapServer server(
      [&](const std::string&) { return "* 1 FETCH (UID 1 BODYSTRUCTURE " + PartBomb(20000) + ")\r\n"; });
  auto s = OpenSelected(Plain(server.port()));
  ASSERT_TRUE(s);
  auto metas = s->FetchMeta({1});
  ASSERT_TRUE(metas.ok()) << metas.error().message();
  ASSERT_EQ(metas->size(), 1u);
  EXPECT_TRUE((*metas)[0].structure_cut);
  EXPECT_EQ((*metas)[0].structure.children.size(), kMaxBodyStructureParts - 1);
  EXPECT_EQ((*metas)[0].structure.subtype, "mixed");
}

TEST(SessionLimitsTest, FetchMetaLightAsksForNoBodyStructure) {
  std::string seen;
  FakeImapServer server([&](const std::string& cmd) {
    seen = cmd;
    return "* 1 FETCH (UID 9 RFC822.SIZE 1234 FLAGS (\\Seen) BODY[HEADER] " + Literal("Subject: x\r\n\r\n") + ")\r\n";
  });
  auto s = OpenSelected(Plain(server.port()));
  ASSERT_TRUE(s);
  auto metas = s->FetchMetaLight({9});
  ASSERT_TRUE(metas.ok()) << metas.error().message();
  ASSERT_EQ(metas->size(), 1u);
  EXPECT_EQ(seen.find("BODYSTRUCTURE"), std::string::npos) << seen;
  EXPECT_NE(seen.find("RFC822.SIZE"), std::string::npos) << seen;
  const MessageMeta& m = (*metas)[0];
  EXPECT_FALSE(m.has_structure);
  EXPECT_EQ(m.uid, 9u);
  EXPECT_EQ(m.size, 1234u);
  EXPECT_EQ(m.header, "Subject: x\r\n\r\n");
  ASSERT_EQ(m.flags.size(), 1u);
}

// --- FetchSectionPart: the whole message, its bound, longer answers ----------

TEST(SessionLimitsTest, PartialFetchOfTheWholeMessage) {
  std::string seen;
  FakeImapServer server([&](const std::string& cmd) {
    seen = cmd;
    return "* 1 FETCH (UID 7 BODY[]<100> " + Literal("hello") + ")\r\n";
  });
  auto s = OpenSelected(Plain(server.port()));
  ASSERT_TRUE(s);
  auto piece = s->FetchSectionPart(7, "", 100, 5);
  ASSERT_TRUE(piece.ok()) << piece.error().message();
  EXPECT_EQ(*piece, "hello");
  EXPECT_NE(seen.find("BODY.PEEK[]<100.5>"), std::string::npos) << seen;
}

TEST(SessionLimitsTest, PartialAnswerLongerThanAskedIsRefused) {
  FakeImapServer server(
      [&](const std::string&) { return "* 1 FETCH (UID 7 BODY[1]<0> " + Literal(std::string(2000, 'x')) + ")\r\n"; });
  auto s = OpenSelected(Plain(server.port()));
  ASSERT_TRUE(s);
  auto piece = s->FetchSectionPart(7, "1", 0, 1000);
  ASSERT_FALSE(piece.ok());
  EXPECT_EQ(piece.error().code(), "imap.partial_too_long") << piece.error().message();
}

TEST(SessionLimitsTest, PartialAnswerPastLengthPlusSlackIsResponseTooLarge) {
  const std::string big(SessionOptions::kPartialSlack + (1 << 20), 'x');
  FakeImapServer server([&](const std::string&) { return "* 1 FETCH (UID 7 BODY[1]<0> " + Literal(big) + ")\r\n"; });
  auto s = OpenSelected(Plain(server.port()));
  ASSERT_TRUE(s);
  auto piece = s->FetchSectionPart(7, "1", 0, 1000);
  ASSERT_FALSE(piece.ok());
  EXPECT_EQ(piece.error().code(), "imap.response_too_large") << piece.error().message();
}

// --- 3. BINARY grows as bytes arrive ----------------------------------------

// The peak virtual size (VmPeak, KiB) of this process: an allocation counts
// here even when its pages are never touched (fresh mmap'd zero pages would
// not show in RSS).
long VmPeakKb() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmPeak:", 0) == 0) return std::stol(line.substr(7));
  }
  return -1;
}

TEST(SessionLimitsTest, BinaryLiteralIsNotAllocatedBeforeItsBytesArrive) {
  // 64 MiB announced (under a 128 MiB budget), 100 bytes sent, then silence.
  fake::FakeImapServerProcess server(
      [] { return "* 1 FETCH (UID 7 BINARY[1] ~{67108864}\r\n" + std::string(100, 'x'); }, kBinaryGreeting,
      kBinaryCaps);
  long ok = PeakRssGrowthKb([&] {
    SessionOptions o = Plain(server.port());
    o.timeout = std::chrono::milliseconds(500);
    o.max_response_bytes = 128 << 20;
    auto s = OpenSelected(o);
    if (!s) return false;
    const long before = VmPeakKb();
    auto body = s->FetchBinary(7, "1");
    const long growth = VmPeakKb() - before;
    std::cerr << "[ measured ] peak virtual size grew by " << growth << " KiB\n";
    return !body.ok() && growth < 8 * 1024;  // the stream ends mid-literal
  });
  EXPECT_GE(ok, 0) << "the 64 MiB literal was allocated before its bytes arrived (see the measured growth)";
}

TEST(SessionLimitsTest, BinaryLiteralOverTheBudgetIsRefusedUnread) {
  FakeImapServer server([&](const std::string&) { return std::string("* 1 FETCH (UID 7 BINARY[1] ~{5000000}\r\n"); },
                        kBinaryGreeting, kBinaryCaps, {});
  SessionOptions o = Plain(server.port());
  o.max_response_bytes = 1 << 20;
  auto s = OpenSelected(o);
  ASSERT_TRUE(s);
  auto body = s->FetchBinary(7, "1");
  ASSERT_FALSE(body.ok());
  EXPECT_EQ(body.error().code(), "imap.response_too_large") << body.error().message();
}

// --- 5. split FETCH responses and whole UIDs --------------------------------

TEST(SessionLimitsTest, SplitFetchResponsesAreMergedPerMessage) {
  FakeImapServer server([&](const std::string&) {
    return "* 3 FETCH (UID 7 FLAGS (\\Seen))\r\n* 3 FETCH (RFC822.SIZE 10 BODYSTRUCTURE " + kTextPart +
           ")\r\n* 3 FETCH (BODY[HEADER] " + Literal("A: b\r\n\r\n") + ")\r\n";
  });
  auto s = OpenSelected(Plain(server.port()));
  ASSERT_TRUE(s);
  auto metas = s->FetchMeta({7});
  ASSERT_TRUE(metas.ok()) << metas.error().message();
  ASSERT_EQ(metas->size(), 1u);
  const MessageMeta& m = (*metas)[0];
  EXPECT_EQ(m.uid, 7u);
  EXPECT_EQ(m.size, 10u);
  EXPECT_EQ(m.header, "A: b\r\n\r\n");
  EXPECT_EQ(m.structure.section, "1");
  ASSERT_EQ(m.flags.size(), 1u);
  EXPECT_EQ(m.flags[0], "\\Seen");
}

TEST(SessionLimitsTest, SplitSectionResponseIsMerged) {
  FakeImapServer server(
      [&](const std::string&) { return "* 3 FETCH (UID 7)\r\n* 3 FETCH (BODY[1] " + Literal("hello") + ")\r\n"; });
  auto s = OpenSelected(Plain(server.port()));
  ASSERT_TRUE(s);
  auto body = s->FetchSection(7, "1");
  ASSERT_TRUE(body.ok()) << body.error().message();
  EXPECT_EQ(*body, "hello");
}

TEST(SessionLimitsTest, BinarySizeMatchesTheWholeUid) {
  std::string reply;
  FakeImapServer server([&](const std::string&) { return reply; }, kBinaryGreeting, kBinaryCaps, {});
  auto s = OpenSelected(Plain(server.port()));
  ASSERT_TRUE(s);
  reply = "* 4 FETCH (UID 7 BINARY.SIZE[2] 142)\r\n* 3 FETCH (UID 71 BINARY.SIZE[2] 999)\r\n";
  auto size = s->FetchBinarySize(7, "2");
  ASSERT_TRUE(size.ok()) << size.error().message();
  ASSERT_TRUE(size->has_value());
  EXPECT_EQ(**size, 142u);
  reply = "* 3 FETCH (UID 71 BINARY.SIZE[2] 999)\r\n";
  size = s->FetchBinarySize(7, "2");
  ASSERT_TRUE(size.ok());
  EXPECT_FALSE(size->has_value());
  // Split: the size first, the UID in a second response.
  reply = "* 3 FETCH (BINARY.SIZE[2] 55)\r\n* 3 FETCH (UID 7)\r\n";
  size = s->FetchBinarySize(7, "2");
  ASSERT_TRUE(size.ok());
  ASSERT_TRUE(size->has_value());
  EXPECT_EQ(**size, 55u);
  EXPECT_TRUE(s->Noop().ok());
}

TEST(SessionLimitsTest, SplitBinaryResponseIsMerged) {
  FakeImapServer server(
      [&](const std::string&) { return std::string("* 3 FETCH (BINARY[1] ~{3}\r\nabc)\r\n* 3 FETCH (UID 7)\r\n"); },
      kBinaryGreeting, kBinaryCaps, {});
  auto s = OpenSelected(Plain(server.port()));
  ASSERT_TRUE(s);
  auto body = s->FetchBinary(7, "1");
  ASSERT_TRUE(body.ok()) << body.error().message();
  ASSERT_TRUE(body->has_value());
  EXPECT_EQ(**body, "abc");
  EXPECT_TRUE(s->Noop().ok());
}

// --- 2. BODYSTRUCTURE depth --------------------------------------------------

int Depth(const mime::Part& p) {
  int d = 0;
  for (const auto& c : p.children) d = std::max(d, Depth(c));
  return d + 1;
}

TEST(SessionLimitsTest, DeepBodyStructureIsCutAtTheDepthCap) {
  std::string deep = kTextPart;
  for (int i = 0; i < 200; ++i) deep = "(" + deep + " \"mixed\")";
  FakeImapServer server([&](const std::string&) { return "* 1 FETCH (UID 1 BODYSTRUCTURE " + deep + ")\r\n"; });
  auto s = OpenSelected(Plain(server.port()));
  ASSERT_TRUE(s);
  auto metas = s->FetchMeta({1});
  ASSERT_TRUE(metas.ok()) << metas.error().message();
  ASSERT_EQ(metas->size(), 1u);
  const mime::Part& root = (*metas)[0].structure;
  EXPECT_EQ(Depth(root), kMaxBodyStructureDepth + 1);
  EXPECT_TRUE((*metas)[0].structure_cut);
  // The cut level is a multipart with nothing listed under it.
  const mime::Part* p = &root;
  while (!p->children.empty()) p = &p->children[0];
  EXPECT_TRUE(p->IsMultipart());
}

TEST(SessionLimitsTest, NestingThatWouldOverflowLibetpansStackIsRefused) {
  // 50,000 nested multiparts (~500 KB, well under the budget) crashed
  // libetpan's recursive parser on an 8 MB stack.
  const size_t levels = 50000;
  std::string deep = std::string(levels, '(') + kTextPart;
  for (size_t i = 0; i < levels; ++i) deep += " \"mixed\")";
  FakeImapServer server([&](const std::string&) { return "* 1 FETCH (UID 1 BODYSTRUCTURE " + deep + ")\r\n"; });
  auto s = OpenSelected(Plain(server.port()));
  ASSERT_TRUE(s);
  auto metas = s->FetchMeta({1});
  ASSERT_FALSE(metas.ok());
  EXPECT_EQ(metas.error().code(), "imap.response_too_large");
  EXPECT_NE(metas.error().message().find("nests lists deeper"), std::string::npos) << metas.error().message();
}

// --- 4. STARTTLS and host names ----------------------------------------------

TEST(SessionLimitsTest, StartTlsWithBytesAfterTheOkIsRefused) {
  FakeImapServer server([&](const std::string&) { return std::string(); },
                        "* OK [CAPABILITY IMAP4rev1 STARTTLS] fake\r\n", "IMAP4rev1 STARTTLS",
                        {{"STARTTLS", "$TAG OK Begin TLS negotiation now\r\n* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n"}});
  SessionOptions o = Plain(server.port());
  o.tls = config::TlsMode::kStartTls;
  o.timeout = std::chrono::milliseconds(1000);
  auto s = Session::Open(o);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code(), "imap.starttls_injection") << s.error().message();
}

TEST(SessionLimitsTest, StartTlsWithNothingAfterTheOkGoesOnToTheHandshake) {
  FakeImapServer server([&](const std::string&) { return std::string(); },
                        "* OK [CAPABILITY IMAP4rev1 STARTTLS] fake\r\n", "IMAP4rev1 STARTTLS",
                        {{"STARTTLS", "$TAG OK Begin TLS negotiation now\r\n"}});
  SessionOptions o = Plain(server.port());
  o.tls = config::TlsMode::kStartTls;
  o.timeout = std::chrono::milliseconds(500);
  auto s = Session::Open(o);
  ASSERT_FALSE(s.ok());  // the fake server speaks no TLS
  EXPECT_EQ(s.error().code(), "tls.handshake") << s.error().message();
}

TEST(SessionLimitsTest, HostNameOpenSslRefusesIsAnError) {
  FakeImapServer server([&](const std::string&) { return std::string(); });
  auto stream = OpenPlainStream("127.0.0.1", static_cast<uint16_t>(server.port()), std::chrono::milliseconds(500), -1);
  ASSERT_TRUE(stream.ok());
  // SNI names are at most 255 bytes (RFC 6066 §3).
  auto s = StartTls(stream->get(), TlsOptions{std::string(300, 'a'), std::nullopt, true});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code(), "tls.host_name") << s.error().message();
}

// A peer that starts a TLS record of 16 KiB and then trickles it a byte every
// 50 ms: each wait of the handshake is short, their sum is not.
TEST(SessionLimitsTest, AStreamDeadlineEndsAHandshakeTrickledAByteAtATime) {
  int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(listener, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(listen(listener, 1), 0);
  ASSERT_EQ(getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  std::atomic<int> trickled{0};
  std::atomic<bool> done{false};
  std::thread peer([&] {
    int c = accept(listener, nullptr, nullptr);
    if (c < 0) return;
    static constexpr char kHeader[] = {0x16, 0x03, 0x03, 0x40, 0x00};  // handshake record, 16 KiB
    (void)!send(c, kHeader, sizeof kHeader, MSG_NOSIGNAL);
    while (!done && trickled < 200) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      if (send(c, "x", 1, MSG_NOSIGNAL) != 1) break;
      ++trickled;
    }
    close(c);
  });
  auto stream = OpenPlainStream("127.0.0.1", ntohs(addr.sin_port), std::chrono::milliseconds(300), -1);
  ASSERT_TRUE(stream.ok()) << stream.error().message();
  const auto start = std::chrono::steady_clock::now();
  SetStreamDeadline(stream->get(), start + std::chrono::milliseconds(600));
  auto s = StartTls(stream->get(), TlsOptions{"localhost", std::nullopt, true});
  const auto took = std::chrono::steady_clock::now() - start;
  done = true;
  peer.join();
  close(listener);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code(), "tls.handshake") << s.error().message();
  // The window was hit: bytes kept coming, each well inside the 300 ms wait.
  EXPECT_GE(trickled.load(), 8);
  EXPECT_GE(took, std::chrono::milliseconds(550));
  EXPECT_LT(took, std::chrono::milliseconds(1500));  // 16 KiB at 20 bytes/s would take 13 minutes
}

// --- 6. credentials never come back through server text ---------------------

TEST(SessionLimitsTest, EchoedLoginLeavesNoPasswordInErrorOrLog) {
  const std::string password = "Tr0ub4dor-s3cret";
  std::ostringstream log;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(log);
  auto logger = util::Logger("imap");
  logger->sinks().push_back(sink);
  auto old_level = logger->level();
  logger->set_level(spdlog::level::trace);
  for (const std::string& reply : {std::string("$TAG NO [AUTHENTICATIONFAILED] rejected: $LINE\r\n"),
                                   "$TAG NO wrong password " + password + " for alice\r\n",
                                   std::string("$TAG NO [UNAVAILABLE] retry $LINE\r\n")}) {
    FakeImapServer server([&](const std::string&) { return std::string(); }, "* OK [CAPABILITY IMAP4rev1] fake\r\n",
                          "IMAP4rev1", {{"LOGIN", reply}});
    SessionOptions o = Plain(server.port());
    o.password = util::Secret(password);
    auto s = Session::Open(o);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.error().message().find(password), std::string::npos) << s.error().message();
    EXPECT_EQ(s.error().message().find("s3cret"), std::string::npos) << s.error().message();
    EXPECT_NE(s.error().message().find("server said"), std::string::npos) << s.error().message();
  }
  logger->sinks().pop_back();
  logger->set_level(old_level);
  EXPECT_EQ(log.str().find(password), std::string::npos) << log.str();
}

// --- 7. the top of the UID space ---------------------------------------------

TEST(SessionLimitsTest, SearchFromZeroIsPastTheTopUidNotEverything) {
  std::atomic<int> searches = 0;
  FakeImapServer server([&](const std::string&) {
    ++searches;
    return std::string("* SEARCH 5 6\r\n");
  });
  auto s = OpenSelected(Plain(server.port()));
  ASSERT_TRUE(s);
  auto uids = s->SearchUidsFrom(0);
  ASSERT_TRUE(uids.ok());
  EXPECT_TRUE(uids->empty());
  EXPECT_TRUE(s->Noop().ok());  // in step: the server thread has answered everything sent
  EXPECT_EQ(searches, 0);
}

TEST(SessionLimitsTest, SearchInAWindowAsksForExactlyThatRange) {
  std::string seen;
  FakeImapServer server([&](const std::string& cmd) {
    seen = cmd;
    return std::string("* SEARCH 100 150 250\r\n");  // 250: outside, as a broken server might say
  });
  auto s = OpenSelected(Plain(server.port()));
  ASSERT_TRUE(s);
  auto uids = s->SearchUidRange(100, 199);
  ASSERT_TRUE(uids.ok()) << uids.error().message();
  EXPECT_EQ(seen, "UID SEARCH UID 100:199");
  EXPECT_EQ(*uids, (std::vector<uint32_t>{100, 150}));
}

TEST(SessionLimitsTest, SearchFromTheTopUid) {
  std::string reply, seen;
  FakeImapServer server([&](const std::string& cmd) {
    seen = cmd;
    return reply;
  });
  auto s = OpenSelected(Plain(server.port()));
  ASSERT_TRUE(s);
  reply = "* SEARCH 4294967295\r\n";
  auto top = s->SearchUidsFrom(UINT32_MAX);
  ASSERT_TRUE(top.ok()) << top.error().message();
  ASSERT_EQ(top->size(), 1u);
  EXPECT_EQ((*top)[0], UINT32_MAX);
  EXPECT_EQ(seen, "UID SEARCH UID 4294967295:*");
  // `n:*` matches the last message even when n is above every UID.
  reply = "* SEARCH 17\r\n";
  auto none = s->SearchUidsFrom(UINT32_MAX);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
  reply = "* SEARCH 4294967294 4294967295\r\n";
  auto last_two = s->SearchUidsFrom(UINT32_MAX - 1);
  ASSERT_TRUE(last_two.ok());
  EXPECT_EQ(last_two->size(), 2u);
}

}  // namespace
}  // namespace mailhook::imap
