#include "mime/mail_builder.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "mime/decode.h"
#include "mime/extractor.h"
#include "mime/header.h"
#include "mime/mime_parser.h"
#include "util/base64.h"

namespace mailhook::mime {
namespace {

constexpr auto kDate = std::chrono::system_clock::time_point(std::chrono::seconds(1795935600));

OutgoingMail Reply() {
  OutgoingMail m;
  m.from = {"Support Team", "support@example.com"};
  m.to = {{"Ann", "ann@example.com"}};
  m.subject = "Re: Printer on floor 3";
  m.text = "We received your message.\r\nReference: evt_1\r\n";
  m.in_reply_to = "<abc@example.com>";
  m.references = {"<root@example.com>", "<abc@example.com>"};
  m.date = kDate;
  m.message_id = MakeMessageId("evt_1/ack", "example.com");
  return m;
}

std::string Build(const OutgoingMail& m) {
  auto r = BuildMessage(m);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().ToString());
  return r.ok() ? *r : std::string();
}

// What SMTP DATA needs: CRLF line ends only, no line over 998 octets.
void ExpectWireSafe(const std::string& msg) {
  ASSERT_GE(msg.size(), 2u);
  EXPECT_EQ(msg.substr(msg.size() - 2), "\r\n");
  size_t start = 0;
  for (size_t i = 0; i < msg.size(); ++i) {
    if (msg[i] == '\n') {
      ASSERT_TRUE(i > 0 && msg[i - 1] == '\r') << "bare LF at " << i;
      EXPECT_LE(i - 1 - start, 998u) << "long line at " << start;
      start = i + 1;
    } else if (msg[i] == '\r') {
      ASSERT_TRUE(i + 1 < msg.size() && msg[i + 1] == '\n') << "bare CR at " << i;
    }
  }
}

std::string HeaderBlock(const std::string& msg) { return msg.substr(0, msg.find("\r\n\r\n") + 2); }

void ExpectHeaderLinesFold(const std::string& msg) {
  std::istringstream in(HeaderBlock(msg));
  for (std::string line; std::getline(in, line);) EXPECT_LE(line.size(), 79u) << line;  // 78 + the CR
}

MessageContent Parse(const std::string& msg) {
  ExtractOptions opts;
  opts.fetch_content = true;
  opts.max_content_bytes = 64 << 20;
  auto r = ExtractWhole(msg, opts);
  EXPECT_TRUE(r.ok());
  return r.ok() ? *r : MessageContent{};
}

void ExpectAddresses(const std::vector<Address>& got, const std::vector<MailAddress>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].name, want[i].name);
    EXPECT_EQ(got[i].address, want[i].address);
  }
}

// The fields of the mail come back from `mailhook parse`'s extraction.
void ExpectRoundTrip(const OutgoingMail& m, const std::string& msg) {
  MessageContent c = Parse(msg);
  EXPECT_EQ(c.subject.value_or("<none>"), m.subject);
  ExpectAddresses(c.from, {m.from});
  ExpectAddresses(c.to, m.to);
  ExpectAddresses(c.cc, m.cc);
  EXPECT_EQ(c.text, m.text);
  EXPECT_EQ(c.html, m.html);
  EXPECT_EQ(c.message_id.value_or(""), m.message_id);
  EXPECT_EQ(c.in_reply_to, std::vector<std::string>{m.in_reply_to});
  EXPECT_EQ(c.references, m.references);
  EXPECT_EQ(c.date.value_or(""), "2026-11-29T07:00:00Z");
}

TEST(MailBuilder, AsciiReplyIsSevenBitWithTheRfc3834Headers) {
  const OutgoingMail m = Reply();
  const std::string msg = Build(m);
  ExpectWireSafe(msg);
  ExpectHeaderLinesFold(msg);
  const std::string head = HeaderBlock(msg);
  EXPECT_NE(head.find("Date: Sun, 29 Nov 2026 07:00:00 +0000\r\n"), std::string::npos) << head;
  EXPECT_NE(head.find("From: Support Team <support@example.com>\r\n"), std::string::npos) << head;
  EXPECT_NE(head.find("MIME-Version: 1.0\r\n"), std::string::npos);
  EXPECT_NE(head.find("Auto-Submitted: auto-replied\r\n"), std::string::npos);
  EXPECT_NE(head.find("In-Reply-To: <abc@example.com>\r\n"), std::string::npos);
  EXPECT_NE(head.find("Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n"),
            std::string::npos);
  EXPECT_EQ(head.find("Precedence"), std::string::npos);
  ExpectRoundTrip(m, msg);
  EXPECT_EQ(Build(m), msg) << "same mail, same bytes";
}

TEST(MailBuilder, NonAsciiSubjectNamesAndBodiesRoundTrip) {
  OutgoingMail m = Reply();
  m.subject =
      "Re: Ärger mit dem Drucker — 日本語のテキスト, которая не помещается в одну строку заголовка "
      "🙂 "
      "and some more words";
  m.from = {"Müller, Ann (Support)", "support@example.com"};
  m.to = {{"José \"Pepe\" Núñez", "jose@example.com"}, {"Smith, Bob", "bob@example.com"}, {"", "c@example.com"}};
  m.cc = {{"Zoë", "zoe@example.org"}};
  m.text = "Grüße aus Köln.\r\nZweite Zeile — mit Gedankenstrich.\r\n";
  m.html = "<p>Grüße aus <b>Köln</b>.</p>\r\n";
  const std::string msg = Build(m);
  ExpectWireSafe(msg);
  ExpectHeaderLinesFold(msg);
  EXPECT_NE(msg.find("Content-Type: multipart/alternative;"), std::string::npos);
  EXPECT_LT(msg.find("Content-Type: text/plain; charset=utf-8"), msg.find("Content-Type: text/html; charset=utf-8"));
  // Nothing 8-bit in the whole message: no SMTPUTF8 and no 8BITMIME needed.
  EXPECT_FALSE(NeedsEightBitMime(msg));
  ExpectRoundTrip(m, msg);
}

TEST(MailBuilder, LongLinesDotsFromAndBareLineEndsAreSafe) {
  OutgoingMail m = Reply();
  const std::string long_line(5000, 'x');
  // The 75 "a" put a soft break right before "From " (RFC 2045 6.7: 76 a line).
  m.text = "From here on\n.\n..leading dots\rFrom the top\r\n" + long_line + "\ntrailing space \nend\n" +
           std::string(75, 'a') + "From the middle";
  const std::string msg = Build(m);
  ExpectWireSafe(msg);
  EXPECT_NE(msg.find("Content-Transfer-Encoding: quoted-printable"), std::string::npos);
  const std::string body = msg.substr(msg.find("\r\n\r\n") + 4);
  std::istringstream in(body);
  for (std::string line; std::getline(in, line);) {
    EXPECT_LE(line.size(), 77u);  // 76 + the CR (RFC 2045 6.7)
    EXPECT_FALSE(line.starts_with("From ")) << line;
  }
  EXPECT_NE(msg.find(std::string(75, 'a') + "=\r\n=46rom the middle"), std::string::npos) << "the window is hit";
  MessageContent c = Parse(msg);
  EXPECT_EQ(c.text, "From here on\r\n.\r\n..leading dots\r\nFrom the top\r\n" + long_line +
                        "\r\ntrailing space \r\nend\r\n" + std::string(75, 'a') + "From the middle\r\n");
}

TEST(MailBuilder, LongAsciiSubjectsFoldAndLongWordsAreEncoded) {
  OutgoingMail m = Reply();
  m.subject = "Re:  two spaces, then";
  for (int i = 0; i < 30; ++i) m.subject += " word" + std::to_string(i);
  std::string msg = Build(m);
  ExpectWireSafe(msg);
  ExpectHeaderLinesFold(msg);
  EXPECT_EQ(msg.find("=?UTF-8?"), std::string::npos) << "plain ASCII is written as is";
  EXPECT_EQ(Parse(msg).subject, m.subject);
  m.subject = "See https://example.com/" + std::string(120, 'p') + " =?not an encoded word?=";
  msg = Build(m);
  ExpectWireSafe(msg);
  ExpectHeaderLinesFold(msg);
  EXPECT_EQ(Parse(msg).subject, m.subject);
}

TEST(MailBuilder, MostlyNonLatinTextIsBase64) {
  OutgoingMail m = Reply();
  m.text = "Здравствуйте! Мы получили ваше сообщение и ответим в течение дня.\r\n";
  const std::string msg = Build(m);
  ExpectWireSafe(msg);
  EXPECT_NE(msg.find("Content-Transfer-Encoding: base64"), std::string::npos);
  EXPECT_EQ(Parse(msg).text, m.text);
}

constexpr char kOriginal[] =
    "From: =?UTF-8?Q?J=C3=B6rg?= <joerg@example.net>\n"
    "To: support@example.com\n"
    "Subject: Drucker\n"
    "Message-ID: <orig@example.net>\n"
    "Content-Type: text/plain; charset=utf-8\n"
    "Content-Transfer-Encoding: 8bit\n"
    "\n"
    "Der Drucker druckt nicht. Grüße\n"
    "--=_mailhook_looks_like_a_boundary\n";

TEST(MailBuilder, ForwardAttachesTheOriginalAsMessageRfc822) {
  OutgoingMail m = Reply();
  m.auto_submitted = "auto-generated";
  m.in_reply_to.clear();
  m.references.clear();
  m.subject = "Fwd: Drucker";
  m.html = "<p>Forwarded</p>\r\n";
  m.attached_message = kOriginal;
  const std::string msg = Build(m);
  ExpectWireSafe(msg);
  EXPECT_NE(msg.find("Content-Type: multipart/mixed;"), std::string::npos);
  EXPECT_NE(msg.find("Content-Type: message/rfc822\r\n"), std::string::npos);
  EXPECT_NE(msg.find("Content-Transfer-Encoding: 8bit"), std::string::npos);
  EXPECT_NE(msg.find("Auto-Submitted: auto-generated\r\n"), std::string::npos);
  EXPECT_TRUE(NeedsEightBitMime(msg));
  MessageContent c = Parse(msg);
  EXPECT_EQ(c.subject, m.subject);
  EXPECT_EQ(c.text, m.text);
  EXPECT_EQ(c.html, m.html);
  EXPECT_TRUE(c.in_reply_to.empty());
  ASSERT_EQ(c.attachments.size(), 1u);
  EXPECT_EQ(c.attachments[0].content_type, "message/rfc822");
  ASSERT_TRUE(c.attachments[0].content_base64);
  std::string want = ToServerLineBreaks(kOriginal);
  EXPECT_EQ(*util::Base64DecodeStrict(*c.attachments[0].content_base64), want);
}

TEST(MailBuilder, ForwardOfACorpusMessageKeepsItsBytes) {
  const std::string path =
      std::string(MAILHOOK_CORPUS_DIR) + "/messages/mailgem-attachment__attachment_message_rfc822.eml";
  std::ifstream f(path, std::ios::binary);
  if (!f) GTEST_SKIP() << "no corpus at " << path;
  const std::string original((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  OutgoingMail m = Reply();
  m.attached_message = original;
  const std::string msg = Build(m);
  ExpectWireSafe(msg);
  MessageContent c = Parse(msg);
  ASSERT_EQ(c.attachments.size(), 1u);
  std::string want = original;
  if (!want.ends_with("\r\n")) want += "\r\n";
  EXPECT_EQ(*util::Base64DecodeStrict(*c.attachments[0].content_base64), want);
}

TEST(MailBuilder, AnOriginalThatMessageRfc822CannotCarryIsRefused) {
  OutgoingMail m = Reply();
  m.attached_message = "Subject: x\r\n\r\n" + std::string(1200, 'y') + "\r\n";
  auto r = BuildMessage(m);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), "mail.attach_unsafe");
  EXPECT_NE(r.error().message().find("inline"), std::string::npos);
}

TEST(MailBuilder, AnUnsafeOriginalCanBeAttachedAsABase64File) {
  OutgoingMail m = Reply();
  const std::string original =
      "Subject: x\r\n\r\n" + std::string(1200, 'y') + std::string("\r\nnul \0 and bare\nLF\r\n", 21);
  m.attached_message = original;
  m.unsafe_original_as_file = true;
  const std::string msg = Build(m);
  ExpectWireSafe(msg);
  EXPECT_EQ(msg.find("message/rfc822"), std::string::npos);
  const ParsedMessage parsed = ParseMessage(msg);
  ASSERT_EQ(parsed.root.children.size(), 2u);
  const Part& file = parsed.root.children[1];
  EXPECT_EQ(file.type + "/" + file.subtype, "application/octet-stream");
  const SectionRange range = parsed.ranges.at(file.section);
  EXPECT_EQ(DecodeBase64(std::string_view(parsed.data).substr(range.body_begin, range.body_end - range.body_begin)),
            original);  // byte for byte: no line end is changed
  EXPECT_NE(msg.find("filename=\"original.eml\""), std::string::npos);
}

TEST(MailBuilder, HeaderInjectionAddsNoField) {
  OutgoingMail m = Reply();
  m.subject = "Hi\r\nBcc: victim@example.com\nX-Evil: 1";
  m.to = {{"Ann\r\nBcc: other@example.com", "ann@example.com"}};
  const std::string msg = Build(m);
  ExpectWireSafe(msg);
  const auto fields = ParseHeaderBlock(HeaderBlock(msg));
  for (const HeaderField& f : fields) {
    EXPECT_NE(f.name, "Bcc");
    EXPECT_NE(f.name, "X-Evil");
  }
  EXPECT_EQ(fields.size(), 12u);
  MessageContent c = Parse(msg);
  EXPECT_EQ(c.subject, "Hi  Bcc: victim@example.com X-Evil: 1");
  ASSERT_EQ(c.to.size(), 1u);
  EXPECT_EQ(c.to[0].address, "ann@example.com");
  // An address itself cannot smuggle anything: it is refused.
  m.to = {{"", "ann@example.com\r\nBcc: x@example.com"}};
  EXPECT_EQ(BuildMessage(m).error().code(), "mail.bad_address");
}

TEST(MailBuilder, IdnDomainsAreALabelsInHeadersAndEnvelope) {
  auto a = EnvelopeAddress("info@bücher.example");
  ASSERT_TRUE(a.ok()) << a.error().ToString();
  EXPECT_EQ(*a, "info@xn--bcher-kva.example");
  // UTS #46 non-transitional: ß stays ß (IDNA2008), not "ss".
  EXPECT_EQ(*EnvelopeAddress("a@faß.de"), "a@xn--fa-hia.de");
  EXPECT_EQ(*EnvelopeAddress("a.b+tag@Example.COM"), "a.b+tag@Example.COM");
  for (const char* bad : {"", "noat", "@example.com", "a@", "a b@example.com", "<a@example.com>", "a@example.com\r\n",
                          "jörg@example.com", "a..b@example.com", "a@exa mple.com", "a@-.\xff"}) {
    auto r = EnvelopeAddress(bad);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_EQ(r.error().code(), "mail.bad_address");
    }
  }
  OutgoingMail m = Reply();
  m.to = {{"Bücher", "info@bücher.example"}};
  const std::string msg = Build(m);
  EXPECT_NE(msg.find("<info@xn--bcher-kva.example>"), std::string::npos);
  EXPECT_FALSE(NeedsEightBitMime(msg));
  EXPECT_EQ(Parse(msg).to[0].address, "info@xn--bcher-kva.example");
}

TEST(MailBuilder, MessageIdIsStableForASeed) {
  const std::string id = MakeMessageId("evt_1/ack", "example.com");
  EXPECT_EQ(id, MakeMessageId("evt_1/ack", "example.com"));
  EXPECT_NE(id, MakeMessageId("evt_2/ack", "example.com"));
  EXPECT_TRUE(id.starts_with("<") && id.ends_with(".mailhook@example.com>")) << id;
  EXPECT_EQ(id.size(), 1 + 32 + 22u);
  EXPECT_TRUE(MakeMessageId("s", "bücher.example").ends_with("@xn--bcher-kva.example>"));
  EXPECT_TRUE(MakeMessageId("s", "bad\r\nhost").ends_with("@mailhook.invalid>"));
}

TEST(MailBuilder, ReplyThreadingFollowsRfc5322) {
  ReplyThreading t = ThreadReply("<c@x>", {"<a@x>", "<b@x>"}, {"<b@x>"});
  EXPECT_EQ(t.in_reply_to, "<c@x>");
  EXPECT_EQ(t.references, (std::vector<std::string>{"<a@x>", "<b@x>", "<c@x>"}));
  // No References: the single In-Reply-To stands in for them.
  t = ThreadReply("<c@x>", {}, {"<b@x>"});
  EXPECT_EQ(t.references, (std::vector<std::string>{"<b@x>", "<c@x>"}));
  t = ThreadReply("<c@x>", {}, {"<a@x>", "<b@x>"});
  EXPECT_EQ(t.references, std::vector<std::string>{"<c@x>"});
  t = ThreadReply(std::nullopt, {"<a@x>"}, {});
  EXPECT_TRUE(t.in_reply_to.empty() && t.references.empty());
  std::vector<std::string> long_thread;
  for (int i = 0; i < 50; ++i) long_thread.push_back("<" + std::to_string(i) + "@x>");
  t = ThreadReply("<new@x>", long_thread, {});
  ASSERT_EQ(t.references.size(), kMaxReferences);
  EXPECT_EQ(t.references.front(), "<0@x>");
  EXPECT_EQ(t.references[1], "<32@x>");  // the last 19 of 0..49 + new
  EXPECT_EQ(t.references.back(), "<new@x>");
}

TEST(MailBuilder, ReplySubjectAddsOneRe) {
  EXPECT_EQ(ReplySubject("Printer"), "Re: Printer");
  EXPECT_EQ(ReplySubject("RE: Printer"), "RE: Printer");
  EXPECT_EQ(ReplySubject(" re:Printer"), " re:Printer");
  EXPECT_EQ(ReplySubject("Reply wanted"), "Re: Reply wanted");
  EXPECT_EQ(ReplySubject(""), "Re: ");
}

TEST(MailBuilder, MissingPiecesAreErrors) {
  OutgoingMail m = Reply();
  m.text.reset();
  EXPECT_EQ(BuildMessage(m).error().code(), "mail.no_body");
  m = Reply();
  m.to.clear();
  EXPECT_EQ(BuildMessage(m).error().code(), "mail.no_recipient");
  m = Reply();
  m.message_id = "no brackets";
  EXPECT_EQ(BuildMessage(m).error().code(), "mail.bad_message_id");
  m = Reply();
  m.references = {"<ok@example.com>", "<bad id@example.com>", "<x\r\nBcc: y@z>", "<old-style-id>", "no-brackets"};
  MessageContent c = Parse(Build(m));
  EXPECT_EQ(c.references, (std::vector<std::string>{"<ok@example.com>", "<old-style-id>"}));
}

}  // namespace
}  // namespace mailhook::mime
