#include "mime/extractor.h"

#include <gtest/gtest.h>

#include "mime/decode.h"
#include "mime/mime_parser.h"
#include "util/base64.h"

namespace mailhook::mime {
namespace {

MessageContent ExtractText(const std::string& msg, bool fetch = true, uint64_t max = 10 << 20) {
  ParsedMessage m = ParseMessage(msg);
  FileSectionSource src(m);
  ExtractOptions opts;
  opts.fetch_content = fetch;
  opts.max_content_bytes = max;
  auto r = Extract(m.header_block, m.root, src, opts);
  EXPECT_TRUE(r.ok());
  return r.ok() ? *r : MessageContent{};
}

constexpr char kMessage[] =
    "From: =?UTF-8?Q?Ann_M=C3=BCller?= <ann@example.com>\n"
    "To: support@example.com, \"Bob\" <bob@example.com>\n"
    "To: third@example.com\n"
    "Cc: undisclosed-recipients:;\n"
    "Subject: =?ISO-8859-1?Q?Caf=E9?= =?ISO-8859-1?Q?_menu?=\n"
    "Date: Thu, 26 Nov 2026 07:59:58 +0100\n"
    "Message-ID: <abc@example.com>\n"
    "In-Reply-To: <prev@example.com>\n"
    "References: <root@example.com>\n <prev@example.com>\n"
    "Content-Type: multipart/mixed; boundary=b\n"
    "\n"
    "--b\n"
    "Content-Type: multipart/related; boundary=r\n"
    "\n"
    "--r\n"
    "Content-Type: multipart/alternative; boundary=a\n"
    "\n"
    "--a\n"
    "Content-Type: text/plain; charset=iso-8859-1\n"
    "Content-Transfer-Encoding: quoted-printable\n"
    "\n"
    "Caf=E9 cr=E8me=\n"
    " br=FBl=E9e\n"
    "--a\n"
    "Content-Type: text/html; charset=utf-8\n"
    "Content-Transfer-Encoding: base64\n"
    "\n"
    "PHA+Q2Fmw6k8L3A+\n"
    "--a--\n"
    "--r\n"
    "Content-Type: image/png\n"
    "Content-ID: <img1@x>\n"
    "Content-Disposition: inline\n"
    "Content-Transfer-Encoding: base64\n"
    "\n"
    "iVBORw0K\n"
    "--r--\n"
    "--b\n"
    "Content-Type: text/plain; name=\"notes.txt\"\n"
    "\n"
    "attached text\n"
    "--b\n"
    "Content-Type: application/octet-stream\n"
    "Content-Disposition: attachment; filename*=utf-8''%E2%82%AC.bin\n"
    "Content-Transfer-Encoding: base64\n"
    "\n"
    "AAECAwQ=\n"
    "--b\n"
    "Content-Type: message/rfc822\n"
    "\n"
    "Subject: forwarded\n"
    "\n"
    "inner\n"
    "--b--\n";

TEST(Extractor, HeadersDecoded) {
  MessageContent c = ExtractText(kMessage);
  EXPECT_EQ(c.subject.value_or(""), "Caf\xC3\xA9 menu");
  ASSERT_EQ(c.from.size(), 1u);
  EXPECT_EQ(c.from[0].name, "Ann M\xC3\xBCller");
  ASSERT_EQ(c.to.size(), 3u);  // all To headers
  EXPECT_EQ(c.to[1].name, "Bob");
  EXPECT_TRUE(c.cc.empty());
  EXPECT_EQ(c.date.value_or(""), "2026-11-26T06:59:58Z");
  EXPECT_EQ(c.message_id.value_or(""), "<abc@example.com>");
  ASSERT_EQ(c.references.size(), 2u);
  EXPECT_EQ(c.in_reply_to, std::vector<std::string>{"<prev@example.com>"});
}

TEST(Extractor, BodiesFromAlternativeInsideRelated) {
  MessageContent c = ExtractText(kMessage);
  EXPECT_EQ(c.text.value_or(""),
            "Caf\xC3\xA9 cr\xC3\xA8me br\xC3\xBBl\xC3\xA9"
            "e");
  EXPECT_EQ(c.html.value_or(""), "<p>Caf\xC3\xA9</p>");
}

TEST(Extractor, Attachments) {
  MessageContent c = ExtractText(kMessage);
  ASSERT_EQ(c.attachments.size(), 4u);
  const Attachment& img = c.attachments[0];
  EXPECT_EQ(img.part, "1.2");
  EXPECT_EQ(img.content_type, "image/png");
  EXPECT_EQ(img.disposition.value_or(""), "inline");
  EXPECT_EQ(img.content_id.value_or(""), "<img1@x>");
  EXPECT_EQ(img.size, 6u);
  // A text part with a name is an attachment, not the body.
  EXPECT_EQ(c.attachments[1].filename.value_or(""), "notes.txt");
  EXPECT_FALSE(c.attachments[1].disposition);
  const Attachment& bin = c.attachments[2];
  EXPECT_EQ(bin.filename.value_or(""), "\xE2\x82\xAC.bin");
  EXPECT_EQ(bin.size, 5u);
  ASSERT_TRUE(bin.content_base64);
  EXPECT_EQ(*bin.content_base64, "AAECAwQ=");  // the bytes 0 1 2 3 4
  EXPECT_EQ(bin.sha256.value_or(""), "08bb5e5d6eaac1049ede0893d30ed022b1a4d9b5b48db414871f51c9cb35283d");
  // Forwarded mail is listed, never descended into.
  EXPECT_EQ(c.attachments[3].content_type, "message/rfc822");
  EXPECT_EQ(c.attachments[3].part, "4");
}

TEST(Extractor, WithoutFetchingSizesAreEstimated) {
  MessageContent c = ExtractText(kMessage, /*fetch=*/false);
  ASSERT_EQ(c.attachments.size(), 4u);
  EXPECT_FALSE(c.attachments[2].sha256);
  EXPECT_FALSE(c.attachments[2].content_base64);
  // 8 base64 octets (the line break before the boundary is not the part's):
  // 8*76/78 = 7, *3/4 = 5.
  EXPECT_EQ(c.attachments[2].size, 5u);
  EXPECT_TRUE(c.text);  // bodies are always fetched
}

TEST(Extractor, ContentOverTheLimitKeepsSizeAndHash) {
  MessageContent c = ExtractText(kMessage, true, 4);
  EXPECT_EQ(c.attachments[2].size, 5u);
  EXPECT_TRUE(c.attachments[2].sha256);
  EXPECT_FALSE(c.attachments[2].content_base64);
}

TEST(Extractor, Latin1BodyWithoutCharset) {
  MessageContent c = ExtractText("Subject: x\n\ncaf\xE9\n");
  EXPECT_EQ(c.text.value_or(""), "caf\xC3\xA9\n");
}

TEST(Extractor, UsAsciiDeclaredWith8BitUtf8) {
  MessageContent c = ExtractText("Content-Type: text/plain; charset=us-ascii\n\ncaf\xC3\xA9\n");
  EXPECT_EQ(c.text.value_or(""), "caf\xC3\xA9\n");
}

TEST(Extractor, HtmlOnlyMessageHasNullText) {
  MessageContent c = ExtractText("Content-Type: text/html\n\n<b>x</b>\n");
  EXPECT_FALSE(c.text);
  EXPECT_EQ(c.html.value_or(""), "<b>x</b>\n");
  EXPECT_TRUE(c.attachments.empty());
}

TEST(Extractor, AttachmentDispositionTextIsNotBody) {
  MessageContent c = ExtractText(
      "Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Disposition: attachment\n\nfile\n"
      "--b\n\nbody\n--b--\n");
  EXPECT_EQ(c.text.value_or(""), "body");
  ASSERT_EQ(c.attachments.size(), 1u);
  EXPECT_EQ(c.attachments[0].content_type, "text/plain");
}

TEST(Extractor, InlineTextAfterTheBodyIsListed) {
  // Deliberate difference from Python's oracle: a second inline text part
  // (a text/calendar beside text/plain, a list footer) is listed as an
  // attachment so no text is dropped; Python lists it in inline_text_parts.
  MessageContent c = ExtractText(
      "Content-Type: multipart/alternative; boundary=b\n\n--b\n\nbody\n"
      "--b\nContent-Type: text/calendar; method=REQUEST\n\nBEGIN:VCALENDAR\n--b--\n");
  ASSERT_EQ(c.attachments.size(), 1u);
  EXPECT_EQ(c.attachments[0].content_type, "text/calendar");
}

TEST(Extractor, MessagePartEndsBeforeTheBoundaryLineBreak) {
  // Deliberate difference from Python's oracle: Python re-serialises an
  // embedded message/* part with the line break that precedes the next
  // boundary, so its size is 1 (LF) or 2 (CRLF) bytes larger. RFC 2046
  // 5.1.1 gives that line break to the boundary, and IMAP BODY[n] (what the
  // daemon hashes) excludes it: `parse` and the daemon must agree.
  MessageContent c = ExtractText(
      "Content-Type: multipart/report; boundary=b\n\n--b\n\nbounce\n"
      "--b\nContent-Type: message/delivery-status\n\nAction: failed\n\n--b--\n");
  ASSERT_EQ(c.attachments.size(), 1u);
  EXPECT_EQ(c.attachments[0].size, std::string("Action: failed\n").size());
}

class FailingSource : public SectionSource {
 public:
  util::Result<std::string> Body(const std::string&) override {
    return util::Error("imap.fetch", util::RetryClass::kBackoff, "connection lost");
  }
  util::Result<std::string> MimeHeaders(const std::string&) override { return std::string(); }
};

TEST(Extractor, SourceFailureIsPassedThrough) {
  Part root;
  root.section = "1";
  FailingSource src;
  auto r = Extract("Subject: x\r\n", root, src, ExtractOptions{});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), "imap.fetch");
}

class MapSource : public SectionSource {
 public:
  util::Result<std::string> Body(const std::string& section) override { return "body of " + section; }
  util::Result<std::string> MimeHeaders(const std::string&) override { return std::string(); }
};

TEST(Extractor, UppercaseTypesFromTheServer) {
  // Cyrus answers BODYSTRUCTURE in upper case.
  Part root;
  root.type = "MULTIPART";
  root.subtype = "MIXED";
  Part text;
  text.section = "1";
  text.type = "TEXT";
  text.subtype = "PLAIN";
  Part pdf;
  pdf.section = "2";
  pdf.type = "APPLICATION";
  pdf.subtype = "PDF";
  pdf.size = 100;
  root.children = {text, pdf};
  MapSource src;
  auto r = Extract("", root, src, ExtractOptions{});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->text.value_or(""), "body of 1");
  ASSERT_EQ(r->attachments.size(), 1u);
  EXPECT_EQ(r->attachments[0].content_type, "application/pdf");
  // 7bit: the structure's size is the decoded size, no round trip for it.
  EXPECT_EQ(r->attachments[0].size, 100u);
  EXPECT_FALSE(r->attachments[0].sha256);
}

TEST(Extractor, SizeComesFromTheSourceWhenItKnows) {
  // IMAP BINARY.SIZE: the server's decoded size wins, and no body is fetched.
  struct SizedSource : MapSource {
    util::Result<std::optional<uint64_t>> DecodedSize(const std::string& section) override {
      if (section == "2") return std::optional<uint64_t>(142);
      return std::optional<uint64_t>();
    }
  };
  Part root;
  root.type = "multipart";
  root.subtype = "mixed";
  Part text;
  text.section = "1";
  Part pdf;
  pdf.section = "2";
  pdf.type = "application";
  pdf.subtype = "pdf";
  pdf.encoding = "base64";
  pdf.size = 196;
  root.children = {text, pdf};
  SizedSource src;
  auto r = Extract("", root, src, ExtractOptions{});
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->attachments.size(), 1u);
  EXPECT_EQ(r->attachments[0].size, 142u);
}

// A server-like source: serves sections of the real bytes by the LOCAL
// parse (what a good server would), counts what is asked for.
class CountingSource : public SectionSource {
 public:
  explicit CountingSource(const std::string& raw) : parsed_(ParseMessage(raw)), file_(parsed_) {}
  util::Result<std::string> Body(const std::string& section) override {
    if (section.empty()) ++whole_;
    return file_.Body(section);
  }
  util::Result<std::string> MimeHeaders(const std::string& section) override {
    ++mime_headers_;
    return file_.MimeHeaders(section);
  }
  ParsedMessage parsed_;
  FileSectionSource file_;
  int whole_ = 0;
  int mime_headers_ = 0;
};

// Hands bodies over a few bytes at a time (as the daemon's partial FETCHes
// do, only smaller); Body() is counted: attachment content must not use it.
class TinyPieceSource : public SectionSource {
 public:
  explicit TinyPieceSource(const std::string& raw) : parsed_(ParseMessage(raw)), file_(parsed_) {}
  util::Result<std::string> Body(const std::string& section) override {
    ++whole_bodies_;
    return file_.Body(section);
  }
  util::Result<std::string> MimeHeaders(const std::string& section) override { return file_.MimeHeaders(section); }
  util::Status StreamBody(const std::string& section,
                          const std::function<util::Status(std::string_view)>& sink) override {
    auto body = file_.Body(section);
    if (!body.ok()) return body.error();
    for (size_t i = 0; i < body->size(); i += 3) {
      if (auto s = sink(std::string_view(*body).substr(i, 3)); !s.ok()) return s;
    }
    return util::Ok();
  }
  ParsedMessage parsed_;
  FileSectionSource file_;
  int whole_bodies_ = 0;
};

TEST(Extractor, StreamedContentMatchesTheWholeBody) {
  TinyPieceSource src(kMessage);
  ExtractOptions opts;
  opts.fetch_content = true;
  auto r = Extract(src.parsed_.header_block, src.parsed_.root, src, opts);
  ASSERT_TRUE(r.ok());
  MessageContent whole = ExtractText(kMessage);
  ASSERT_EQ(r->attachments.size(), whole.attachments.size());
  for (size_t i = 0; i < whole.attachments.size(); ++i) {
    EXPECT_EQ(r->attachments[i].size, whole.attachments[i].size) << i;
    EXPECT_EQ(r->attachments[i].sha256, whole.attachments[i].sha256) << i;
    ASSERT_EQ(!r->attachments[i].content_base64, !whole.attachments[i].content_base64) << i;
    if (whole.attachments[i].content_base64) {
      EXPECT_EQ(*r->attachments[i].content_base64, *whole.attachments[i].content_base64) << i;
    }
  }
  ASSERT_TRUE(r->attachments[2].content_base64);
  EXPECT_EQ(*r->attachments[2].content_base64, "AAECAwQ=");
  // Only the text and html bodies were read whole; no attachment was.
  EXPECT_EQ(src.whole_bodies_, int{whole.text.has_value()} + int{whole.html.has_value()});
}

Part UsAsciiEmptyText(const std::string& section) {
  // What Dovecot makes up for a multipart without parts.
  Part p;
  p.section = section;
  p.params = {{"charset", "us-ascii"}};
  return p;
}

TEST(Extractor, OrdinaryMessageCostsNoExtraFetch) {
  CountingSource src(kMessage);
  auto r = Extract(src.parsed_.header_block, src.parsed_.root, src, ExtractOptions{});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(src.whole_, 0);
  EXPECT_EQ(src.mime_headers_, 0);
}

TEST(Extractor, UntypedPartFromTheServerIsParsedFromTheBytes) {
  // stalwart-malformed__017: "multipart/mixed" and "boundary=" without ';'
  // between; Dovecot answers ("" "" NIL NIL NIL "7bit" 197 ...).
  const std::string raw =
      "Content-Type: multipart/mixed\r\n\tboundary=\"b\"\r\n\r\n--b\r\nContent-Type: image/png\r\n"
      "Content-Transfer-Encoding: base64\r\n\r\naGVsbG8K\r\n--b--\r\n";
  Part server;
  server.section = "1";
  server.type = "";
  server.subtype = "";
  server.size = 100;
  CountingSource src(raw);
  auto r = Extract(src.parsed_.header_block, server, src, ExtractOptions{});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(src.whole_, 1);
  EXPECT_FALSE(r->text);
  ASSERT_EQ(r->attachments.size(), 1u);
  EXPECT_EQ(r->attachments[0].part, "1");
  EXPECT_EQ(r->attachments[0].content_type, "image/png");
  EXPECT_EQ(r->attachments[0].size, 6u);
}

TEST(Extractor, MadeUpEmptyPartIsNotABody) {
  // mailgem-error__missing_body.eml: no delimiter at all. Dovecot reports one
  // empty text/plain child; Python, and the message, have no body.
  const std::string raw = "Content-Type: multipart/mixed; boundary=\"x\"\r\n\r\nno delimiter\r\n";
  Part server;
  server.type = "multipart";
  server.subtype = "mixed";
  server.params = {{"boundary", "x"}};
  server.children = {UsAsciiEmptyText("1")};
  CountingSource src(raw);
  auto r = Extract(src.parsed_.header_block, server, src, ExtractOptions{});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(src.whole_, 1);
  EXPECT_FALSE(r->text);
  EXPECT_TRUE(r->attachments.empty());
}

TEST(Extractor, BoundaryStartingWithAnEnclosingOneIsParsedFromTheBytes) {
  // stalwart-malformed__005: "a----" inside "a--". Dovecot matches
  // delimiters by prefix and nests; the result must be what `parse` says.
  const std::string raw =
      "Content-Type: multipart/mixed; boundary=\"a--\"\r\n\r\n--a--\r\n"
      "Content-Type: multipart/mixed; boundary=\"a----\"\r\n\r\n--a----\r\nContent-Type: text/plain\r\n\r\n"
      "body\r\n--a------\r\n";
  Part text;
  text.section = "1.1";
  text.size = 4;
  text.params = {{"charset", "us-ascii"}};
  Part inner;
  inner.section = "1";
  inner.type = "multipart";
  inner.subtype = "mixed";
  inner.params = {{"boundary", "a----"}};
  inner.children = {text};
  Part server;
  server.type = "multipart";
  server.subtype = "mixed";
  server.params = {{"boundary", "a--"}};
  server.children = {inner};
  CountingSource src(raw);
  auto r = Extract(src.parsed_.header_block, server, src, ExtractOptions{});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(src.whole_, 1);
  MessageContent local = ExtractText(raw);
  EXPECT_EQ(r->text, local.text);
  EXPECT_EQ(r->attachments.size(), local.attachments.size());
}

TEST(Extractor, EstimateDecodedSize) {
  Part p;
  p.encoding = "base64";
  p.size = 78 * 100;  // 100 lines of 76 chars + CRLF
  EXPECT_EQ(EstimateDecodedSize(p), 76u * 100 * 3 / 4);
  p.encoding = "7bit";
  EXPECT_EQ(EstimateDecodedSize(p), 7800u);
}

TEST(Extractor, SmallEncodedPartIsMeasuredWhenTheSourceCannotTell) {
  // No BINARY.SIZE: a small base64 part is fetched and decoded, whatever
  // the structure claimed ("body of 2" decodes to 5 bytes).
  Part root;
  root.type = "multipart";
  root.subtype = "mixed";
  Part text;
  text.section = "1";
  Part pdf;
  pdf.section = "2";
  pdf.type = "application";
  pdf.subtype = "pdf";
  pdf.encoding = "base64";
  pdf.size = 100;
  root.children = {text, pdf};
  MapSource src;
  auto r = Extract("", root, src, ExtractOptions{});
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->attachments.size(), 1u);
  EXPECT_EQ(r->attachments[0].size, 5u);
}

// A multipart/mixed with a text body and `n` base64 attachments of 30 bytes.
std::string ManyAttachments(int n, const std::string& body_first = "the body\r\n") {
  std::string m = "Subject: many\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\n" + body_first;
  for (int i = 0; i < n; ++i) {
    m += "--b\r\nContent-Type: application/octet-stream; name=\"f" + std::to_string(i) +
         ".bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n" + util::Base64Encode(std::string(30, 'x')) + "\r\n";
  }
  return m + "--b--\r\n";
}

// A server-like source that counts every call by kind.
class ServerLikeSource : public SectionSource {
 public:
  explicit ServerLikeSource(const std::string& raw, uint32_t max_parts = kDefaultMaxParts)
      : parsed_(ParseMessage(raw, max_parts)), file_(parsed_) {}
  util::Result<std::string> Body(const std::string& section) override {
    ++(section.empty() ? whole_ : bodies_);
    return file_.Body(section);
  }
  util::Result<std::string> MimeHeaders(const std::string& section) override { return file_.MimeHeaders(section); }
  util::Result<Prefix> BodyPrefix(const std::string& section, uint64_t max_bytes, bool raw) override {
    ++prefixes_;
    asked_ = std::max(asked_, max_bytes);
    return file_.BodyPrefix(section, max_bytes, raw);
  }
  util::Result<std::optional<uint64_t>> DecodedSize(const std::string&) override {
    ++sizes_;
    return std::optional<uint64_t>();  // a server without BINARY: Body() is the fallback
  }
  ParsedMessage parsed_;
  FileSectionSource file_;
  int whole_ = 0, bodies_ = 0, prefixes_ = 0, sizes_ = 0;
  uint64_t asked_ = 0;
};

TEST(Extractor, ManyPartsAreSizedFromOneWholeFetch) {
  ServerLikeSource src(ManyAttachments(40));
  ExtractOptions opts;
  opts.message_size = src.parsed_.imap_size;
  auto r = Extract(src.parsed_.header_block, src.parsed_.root, src, opts);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->attachments.size(), 40u);
  for (const Attachment& a : r->attachments) EXPECT_EQ(a.size, 30u) << a.part;  // exact, from the local bytes
  EXPECT_EQ(src.whole_, 1);
  EXPECT_EQ(src.sizes_, 0);
  EXPECT_EQ(src.bodies_, 0);
  EXPECT_EQ(src.prefixes_, 1);  // the text body
  EXPECT_FALSE(r->truncated);
}

TEST(Extractor, LargeMessageAsksForAFewSizesAndEstimatesTheRest) {
  ServerLikeSource src(ManyAttachments(40));
  ExtractOptions opts;
  opts.message_size = 64 << 20;  // over max_whole_fetch_bytes
  auto r = Extract(src.parsed_.header_block, src.parsed_.root, src, opts);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->attachments.size(), 40u);
  EXPECT_EQ(src.whole_, 0);
  EXPECT_EQ(src.sizes_, 8);
  EXPECT_EQ(src.bodies_, 8);  // measured: the source could not tell
  EXPECT_EQ(r->attachments[0].size, 30u);
  EXPECT_EQ(r->attachments[39].size, EstimateDecodedSize(src.parsed_.root.children[40]));
}

TEST(Extractor, FewPartsAreAskedForOneByOne) {
  ServerLikeSource src(ManyAttachments(8));
  ExtractOptions opts;
  opts.message_size = src.parsed_.imap_size;
  auto r = Extract(src.parsed_.header_block, src.parsed_.root, src, opts);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(src.whole_, 0);
  EXPECT_EQ(src.sizes_, 8);
}

TEST(Extractor, DoubtfulTreeOfALargeMessageIsReadAsTheServerSentIt) {
  const std::string raw = "Content-Type: multipart/mixed; boundary=\"x\"\r\n\r\nno delimiter\r\n";
  Part server;
  server.type = "multipart";
  server.subtype = "mixed";
  server.params = {{"boundary", "x"}};
  server.children = {UsAsciiEmptyText("1")};
  CountingSource src(raw);
  ExtractOptions opts;
  opts.message_size = opts.max_whole_fetch_bytes + 1;
  auto r = Extract(src.parsed_.header_block, server, src, opts);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(src.whole_, 0);
  EXPECT_TRUE(r->text);  // the server's made-up part, as sent
}

TEST(Extractor, MaxPartsListsTheFirstLeavesAndCountsTheRest) {
  ServerLikeSource src(ManyAttachments(50), /*max_parts=*/100'000);  // the server's tree is complete
  ExtractOptions opts;
  opts.max_parts = 10;
  opts.message_size = src.parsed_.imap_size;
  auto r = Extract(src.parsed_.header_block, src.parsed_.root, src, opts);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->text.value_or(""), "the body");
  ASSERT_EQ(r->attachments.size(), 9u);  // 10 leaves: the body and 9 attachments
  EXPECT_EQ(r->attachments.back().part, "10");
  ASSERT_TRUE(r->truncated);
  EXPECT_EQ(r->truncated->attachments_omitted, 41u);
  EXPECT_FALSE(r->truncated->text);
  EXPECT_FALSE(r->truncated->html);
  EXPECT_EQ(src.sizes_ + src.bodies_ + src.whole_, 1);  // the 9 sized from one whole fetch
}

TEST(Extractor, BodyBeyondMaxPartsIsStillChosen) {
  std::string m = "Content-Type: multipart/mixed; boundary=b\r\n\r\n";
  for (int i = 0; i < 20; ++i) m += "--b\r\nContent-Type: image/png\r\n\r\npng\r\n";
  m += "--b\r\nContent-Type: text/html\r\n\r\n<p>late</p>\r\n--b--\r\n";
  ExtractOptions opts;
  opts.max_parts = 5;
  ParsedMessage parsed = ParseMessage(m, 100);
  FileSectionSource src(parsed);
  auto r = Extract(parsed.header_block, parsed.root, src, opts);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->html.value_or(""), "<p>late</p>");
  EXPECT_EQ(r->attachments.size(), 5u);
  ASSERT_TRUE(r->truncated);
  EXPECT_EQ(r->truncated->attachments_omitted, 15u);
}

TEST(Extractor, PartsTheParserDidNotBuildAreCounted) {
  ExtractOptions opts;
  opts.max_parts = 10;
  auto r = ExtractWhole(ManyAttachments(50), opts);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->attachments.size(), 9u);
  ASSERT_TRUE(r->truncated);
  EXPECT_EQ(r->truncated->attachments_omitted, 41u);
}

TEST(Extractor, ExtractWholeIsWhatParseGives) {
  ExtractOptions opts;
  opts.fetch_content = true;
  auto whole = ExtractWhole(kMessage, opts);
  ASSERT_TRUE(whole.ok());
  MessageContent local = ExtractText(kMessage);
  EXPECT_EQ(whole->text, local.text);
  EXPECT_EQ(whole->html, local.html);
  ASSERT_EQ(whole->attachments.size(), local.attachments.size());
  for (size_t i = 0; i < local.attachments.size(); ++i)
    EXPECT_EQ(whole->attachments[i].sha256, local.attachments[i].sha256);
  EXPECT_FALSE(whole->truncated);
}

TEST(Extractor, HeadersAnAutoReplyLooksAtAreKeptAsSent) {
  const std::string m =
      "Return-Path: <>\r\nFrom: Robot <mailer-daemon@example.com>\r\nAuto-Submitted: auto-replied\r\n"
      "Precedence:  bulk\r\nList-Id: Team\r\n <team.example.com>\r\nSubject: away\r\n\r\nbody\r\n";
  auto r = ExtractWhole(m, ExtractOptions{});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->auto_reply.return_path, "<>");
  EXPECT_EQ(r->auto_reply.auto_submitted, "auto-replied");
  EXPECT_EQ(r->auto_reply.precedence, "bulk");
  EXPECT_EQ(r->auto_reply.list_id, "Team <team.example.com>");  // unfolded
  EXPECT_EQ(r->auto_reply.list_unsubscribe, std::nullopt);
  EXPECT_EQ(r->auto_reply.sender, std::nullopt);
}

bool ValidUtf8(const std::optional<std::string>& s) { return s && IsValidUtf8(*s); }

TEST(Extractor, LongTextIsFetchedOnlyAsFarAsTheLimitNeedsAndCut) {
  // 200,000 "é" (400,000 bytes of UTF-8) in quoted-printable: "=C3=A9" each.
  std::string qp;
  for (int i = 0; i < 200'000; ++i) {
    qp += "=C3=A9";
    if (i % 12 == 11) qp += "=\r\n";
  }
  const std::string raw =
      "Content-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\n"
      "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: "
      "quoted-printable\r\n\r\n" +
      qp +
      "\r\n--b\r\nContent-Type: text/html; "
      "charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
      util::Base64Encode(std::string(300'000, 'h')) + "\r\n--b--\r\n";
  ServerLikeSource src(raw);
  ExtractOptions opts;
  opts.max_text_bytes = 1001;  // odd: a cut inside the two-byte "é" must back off to 1000
  auto r = Extract(src.parsed_.header_block, src.parsed_.root, src, opts);
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(ValidUtf8(r->text));
  EXPECT_EQ(r->text->size(), 1000u);
  EXPECT_EQ(r->html.value_or(""), std::string(1001, 'h'));
  ASSERT_TRUE(r->truncated);
  EXPECT_TRUE(r->truncated->text);
  EXPECT_TRUE(r->truncated->html);
  EXPECT_EQ(r->truncated->attachments_omitted, 0u);
  EXPECT_EQ(src.bodies_ + src.whole_, 0);  // only prefixes were fetched
  EXPECT_EQ(src.prefixes_, 2);
  EXPECT_LE(src.asked_, 3u * 1001 + 1001 / 4 + 256);  // QP's allowance, the larger of the two
}

TEST(Extractor, TextWithinTheLimitIsWholeAndNotFlagged) {
  ExtractOptions opts;
  opts.max_text_bytes = 8;
  auto r = ExtractWhole("Content-Type: text/plain; charset=utf-8\r\n\r\n12345678", opts);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->text.value_or(""), "12345678");
  EXPECT_FALSE(r->truncated);
}

TEST(Extractor, Latin1TextLongerOnceConvertedIsCut) {
  // 8 bytes of latin1 are 16 of UTF-8: the limit is on the UTF-8.
  ExtractOptions opts;
  opts.max_text_bytes = 9;
  auto r = ExtractWhole(
      "Content-Type: text/plain; "
      "charset=iso-8859-1\r\n\r\n\xE9\xE9\xE9\xE9\xE9\xE9\xE9\xE9",
      opts);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->text.value_or(""), "\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9");
  ASSERT_TRUE(r->truncated);
  EXPECT_TRUE(r->truncated->text);
}

// --- the fetch pipeline (issue 8): size queries planned in one round trip ---

// ServerLikeSource that answers sizes from a plan made up front, and
// records what was planned and what was asked for.
class PlanningSource : public ServerLikeSource {
 public:
  using ServerLikeSource::ServerLikeSource;
  util::Status PlanDecodedSizes(const std::vector<std::string>& sections) override {
    plans_.push_back(sections);
    return util::Ok();
  }
  util::Result<std::optional<uint64_t>> DecodedSize(const std::string& section) override {
    asked_sections_.push_back(section);
    return std::optional<uint64_t>(30);
  }
  std::vector<std::vector<std::string>> plans_;
  std::vector<std::string> asked_sections_;
};

TEST(Extractor, SizeQueriesArePlannedInOneCallInTheOrderTheyAreAsked) {
  PlanningSource src(ManyAttachments(6));
  ExtractOptions opts;
  opts.message_size = src.parsed_.imap_size;
  auto r = Extract(src.parsed_.header_block, src.parsed_.root, src, opts);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(src.plans_.size(), 1u);
  EXPECT_EQ(src.plans_[0], (std::vector<std::string>{"2", "3", "4", "5", "6", "7"}));
  EXPECT_EQ(src.asked_sections_, src.plans_[0]) << "exactly the planned sections are asked for";
}

TEST(Extractor, ALargeMessagePlansOnlyTheSizesItMayAskFor) {
  PlanningSource src(ManyAttachments(40));
  ExtractOptions opts;
  opts.message_size = 64 << 20;  // over max_whole_fetch_bytes: 8 queries, the rest estimated
  auto r = Extract(src.parsed_.header_block, src.parsed_.root, src, opts);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(src.plans_.size(), 1u);
  ASSERT_EQ(src.plans_[0].size(), opts.max_size_queries);
  EXPECT_EQ(src.asked_sections_, src.plans_[0]);
}

TEST(Extractor, ContentFetchesAndLocalSourcesPlanNoSizes) {
  PlanningSource fetched(ManyAttachments(6));
  ExtractOptions opts;
  opts.message_size = fetched.parsed_.imap_size;
  opts.fetch_content = true;  // sizes measured from the content: nothing to ask
  ASSERT_TRUE(Extract(fetched.parsed_.header_block, fetched.parsed_.root, fetched, opts).ok());
  EXPECT_TRUE(fetched.plans_.empty());
  EXPECT_TRUE(fetched.asked_sections_.empty());
}

}  // namespace
}  // namespace mailhook::mime
