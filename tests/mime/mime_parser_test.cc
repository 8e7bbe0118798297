#include "mime/mime_parser.h"

#include <gtest/gtest.h>

#include "mime/params.h"

namespace mailhook::mime {
namespace {

constexpr char kMixed[] =
    "From: a@x.org\r\n"
    "Content-Type: multipart/mixed; boundary=\"outer\"\r\n"
    "\r\n"
    "preamble\r\n"
    "--outer\r\n"
    "Content-Type: multipart/alternative; boundary=inner\r\n"
    "\r\n"
    "--inner\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "\r\n"
    "plain\r\n"
    "--inner\r\n"
    "Content-Type: text/html\r\n"
    "\r\n"
    "<p>html</p>\r\n"
    "--inner--\r\n"
    "--outer \t\r\n"
    "Content-Type: application/pdf; name=a.pdf\r\n"
    "Content-Transfer-Encoding: base64\r\n"
    "Content-Disposition: attachment\r\n"
    "\r\n"
    "aGk=\r\n"
    "--outer--\r\n"
    "epilogue\r\n";

TEST(MimeParser, NestedMultipartSections) {
  ParsedMessage m = ParseMessage(kMixed);
  EXPECT_EQ(m.root.section, "");
  ASSERT_EQ(m.root.children.size(), 2u);
  const Part& alt = m.root.children[0];
  EXPECT_EQ(alt.section, "1");
  EXPECT_EQ(alt.subtype, "alternative");
  ASSERT_EQ(alt.children.size(), 2u);
  EXPECT_EQ(alt.children[0].section, "1.1");
  EXPECT_EQ(alt.children[1].section, "1.2");
  const Part& pdf = m.root.children[1];
  EXPECT_EQ(pdf.section, "2");  // boundary line with trailing whitespace still counts
  EXPECT_EQ(pdf.encoding, "base64");
  EXPECT_EQ(pdf.disposition.value_or(""), "attachment");
  FileSectionSource src(m);
  EXPECT_EQ(src.Body("1.1").value(), "plain");  // the CRLF before a boundary is the boundary's
  EXPECT_EQ(src.Body("2").value(), "aGk=");
  EXPECT_EQ(pdf.size, 4u);
  EXPECT_EQ(src.MimeHeaders("1.2").value(), "Content-Type: text/html\r\n");
  EXPECT_FALSE(src.Body("9").ok());
  EXPECT_EQ(m.header_block.rfind("From:", 0), 0u);
}

TEST(MimeParser, LfFileSizesCountCrlf) {
  std::string lf = kMixed;
  std::string stripped;
  for (char c : lf) {
    if (c != '\r') stripped.push_back(c);
  }
  ParsedMessage a = ParseMessage(kMixed);
  ParsedMessage b = ParseMessage(stripped);
  EXPECT_EQ(a.imap_size, b.imap_size);
  EXPECT_EQ(a.root.children[0].size, b.root.children[0].size);
  EXPECT_EQ(b.root.children[0].children[0].section, "1.1");
}

TEST(MimeParser, ToServerLineBreaksMakesBareLfCrlfAndKeepsTheRest) {
  EXPECT_EQ(ToServerLineBreaks("a\nb\r\nc\rd\n"), "a\r\nb\r\nc\rd\r\n");
  EXPECT_EQ(ToServerLineBreaks("\n"), "\r\n");
  EXPECT_EQ(ToServerLineBreaks(""), "");
  const std::string crlf = "x\r\ny\r\n";
  EXPECT_EQ(ToServerLineBreaks(crlf), crlf);
  EXPECT_EQ(ToServerLineBreaks("a\nb").size(), CrlfSize("a\nb"));
}

TEST(MimeParser, SinglePartIsSectionOne) {
  ParsedMessage m = ParseMessage("Subject: x\n\nhello\n");
  EXPECT_EQ(m.root.section, "1");
  EXPECT_EQ(m.root.type, "text");  // missing Content-Type: text/plain
  FileSectionSource src(m);
  EXPECT_EQ(src.Body("1").value(), "hello\n");
  EXPECT_EQ(m.root.size, 7u);
}

TEST(MimeParser, MissingFinalBoundary) {
  ParsedMessage m =
      ParseMessage("Content-Type: multipart/mixed; boundary=b\n\n--b\n\none\n--b\nContent-Type: text/html\n\ntwo\n");
  ASSERT_EQ(m.root.children.size(), 2u);
  FileSectionSource src(m);
  EXPECT_EQ(src.Body("2").value(), "two\n");
}

TEST(MimeParser, DigestChildrenDefaultToMessage) {
  ParsedMessage m = ParseMessage("Content-Type: multipart/digest; boundary=d\n\n--d\n\nSubject: inner\n\nhi\n--d--\n");
  ASSERT_EQ(m.root.children.size(), 1u);
  EXPECT_EQ(m.root.children[0].type, "message");
  EXPECT_EQ(m.root.children[0].subtype, "rfc822");
}

TEST(MimeParser, MessageRfc822IsALeaf) {
  ParsedMessage m = ParseMessage(
      "Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: message/rfc822\n\n"
      "Content-Type: multipart/mixed; boundary=c\n\n--c\n\nx\n--c--\n--b--\n");
  ASSERT_EQ(m.root.children.size(), 1u);
  EXPECT_TRUE(m.root.children[0].children.empty());
}

// Dovecot ends these parts after the line break that RFC 2046 5.1.1 gives
// to the next delimiter, and BODY[n] and the BODYSTRUCTURE size include it
// (measured with corpus files mimekit-messages__rfc2060.txt,
// stalwart-thirdparty__007.eml and __015.eml): the parser follows, so that
// `mailhook parse` and the daemon report the same bytes.
TEST(MimeParser, EmbeddedMessageEndingInAClosedMultipartKeepsThatLineBreak) {
  const std::string inner = "Content-Type: multipart/mixed; boundary=c\r\n\r\n--c\r\n\r\nx\r\n--c--\r\n";
  ParsedMessage m = ParseMessage(
      "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
      "Content-Type: message/rfc822\r\n\r\n" +
      inner + "--b--\r\n");
  ASSERT_EQ(m.root.children.size(), 1u);
  FileSectionSource src(m);
  EXPECT_EQ(src.Body("1").value(), inner);
  EXPECT_EQ(m.root.children[0].size, inner.size());
}

TEST(MimeParser, EmbeddedMessageThatIsAllHeaderKeepsItsLastLineBreak) {
  ParsedMessage m = ParseMessage(
      "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
      "Content-Type: message/rfc822\r\n\r\nSubject: no body\r\n--b--\r\n");
  FileSectionSource src(m);
  EXPECT_EQ(src.Body("1").value(), "Subject: no body\r\n");
}

TEST(MimeParser, OtherPartsEndBeforeTheDelimiterLineBreak) {
  // A text part quoting MIME, and a message with a body, follow RFC 2046.
  ParsedMessage m = ParseMessage(
      "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\n--c\r\nquoted\r\n--c--\r\n"
      "--b\r\nContent-Type: message/rfc822\r\n\r\nSubject: x\r\n\r\nbody\r\n--b--\r\n");
  FileSectionSource src(m);
  EXPECT_EQ(src.Body("1").value(), "--c\r\nquoted\r\n--c--");
  EXPECT_EQ(src.Body("2").value(), "Subject: x\r\n\r\nbody");
}

TEST(MimeParser, EmptySectionIsTheWholeMessage) {
  const std::string msg = "Subject: x\r\n\r\nhello\r\n";
  ParsedMessage m = ParseMessage(msg);
  FileSectionSource src(m);
  EXPECT_EQ(src.Body("").value(), msg);  // IMAP BODY[]
}

TEST(MimeParser, MultipartWithoutBoundaryIsLeaf) {
  ParsedMessage m = ParseMessage("Content-Type: multipart/mixed\n\nstuff\n");
  EXPECT_TRUE(m.root.children.empty());
  EXPECT_EQ(m.root.section, "1");
}

TEST(MimeParser, NoHeaderAtAll) {
  ParsedMessage m = ParseMessage("\nbody only\n");
  EXPECT_TRUE(m.header_block.empty());
  FileSectionSource src(m);
  EXPECT_EQ(src.Body("1").value(), "body only\n");
}

TEST(MimeParser, DeepNestingDoesNotOverflow) {
  std::string msg;
  for (int i = 0; i < 2000; ++i) {
    msg += "Content-Type: multipart/mixed; boundary=b" + std::to_string(i) + "\n\n--b" + std::to_string(i) + "\n";
  }
  msg += "\nleaf\n";
  ParsedMessage m = ParseMessage(msg);
  EXPECT_EQ(m.root.children.size(), 1u);
}

std::string EmptyParts(size_t n) {
  std::string m = "Content-Type: multipart/mixed; boundary=b\r\n\r\n";
  m.reserve(m.size() + n * 7 + 16);
  for (size_t i = 0; i < n; ++i) m += "--b\r\n\r\n";
  return m + "--b--\r\n";
}

TEST(MimeParser, PartsBeyondTheCapAreCountedNotBuilt) {
  ParsedMessage m = ParseMessage(EmptyParts(5000), 100);
  EXPECT_EQ(m.root.children.size(), 100u);
  EXPECT_EQ(m.root.children_omitted, 4900u);
  EXPECT_EQ(m.root.children.back().section, "100");
  EXPECT_EQ(m.ranges.size(), 101u);  // the top and the parts built
  FileSectionSource src(m);
  EXPECT_TRUE(src.Body("100").ok());
  EXPECT_FALSE(src.Body("101").ok());
  EXPECT_FALSE(src.DecodedSize("101").value().has_value());
}

TEST(MimeParser, CapCountsNestedPartsInMessageOrder) {
  // The inner multipart's two leaves come before the outer's third part.
  const std::string msg =
      "Content-Type: multipart/mixed; boundary=o\n\n--o\nContent-Type: multipart/alternative; boundary=i\n\n"
      "--i\n\na\n--i\n\nb\n--i--\n--o\n\nc\n--o\n\nd\n--o--\n";
  ParsedMessage m = ParseMessage(msg, 3);
  ASSERT_EQ(m.root.children.size(), 1u);
  EXPECT_EQ(m.root.children[0].children.size(), 2u);
  EXPECT_EQ(m.root.children_omitted, 2u);
}

TEST(MimeParser, BodyPrefixCutsAndSaysSo) {
  ParsedMessage m = ParseMessage("Subject: x\n\n0123456789");
  FileSectionSource src(m);
  auto cut = src.BodyPrefix("1", 4, false);
  ASSERT_TRUE(cut.ok());
  EXPECT_EQ(cut->bytes, "0123");
  EXPECT_TRUE(cut->cut);
  auto whole = src.BodyPrefix("1", 10, true);
  ASSERT_TRUE(whole.ok());
  EXPECT_EQ(whole->bytes, "0123456789");
  EXPECT_FALSE(whole->cut);
}

// What Dovecot 2.3 answers for multiparts whose close delimiter is missing
// (BODYSTRUCTURE and BODY[n] measured on the test server): the parser
// follows, so `mailhook parse` and the daemon read the same bytes.
TEST(MimeParser, MissingCloseDelimiterLastPartRunsToTheEnd) {
  ParsedMessage m =
      ParseMessage("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\none\r\n--b\r\n\r\ntwo\r\n");
  ASSERT_EQ(m.root.children.size(), 2u);
  FileSectionSource src(m);
  EXPECT_EQ(src.Body("1").value(), "one");
  EXPECT_EQ(src.Body("2").value(), "two\r\n");
  EXPECT_EQ(m.root.children[1].size, 5u);
}

TEST(MimeParser, EpilogueOfAClosedInnerMultipartBeforeAnOuterDelimiterStaysInThePart) {
  ParsedMessage m = ParseMessage(
      "Content-Type: multipart/mixed; boundary=outer\r\n\r\n"
      "--outer\r\nContent-Type: multipart/alternative; boundary=inner\r\n\r\n"
      "--inner\r\nContent-Type: text/plain\r\n\r\nplain\r\n--inner--\r\ninner epilogue\r\n"
      "--outer\r\nContent-Type: text/plain\r\n\r\nsecond\r\nmore\r\n");
  ASSERT_EQ(m.root.children.size(), 2u);
  FileSectionSource src(m);
  EXPECT_EQ(src.Body("1").value(), "--inner\r\nContent-Type: text/plain\r\n\r\nplain\r\n--inner--\r\ninner epilogue");
  EXPECT_EQ(src.Body("1.1").value(), "plain");
  EXPECT_EQ(src.Body("2").value(), "second\r\nmore\r\n");
  EXPECT_EQ(m.root.children[1].size, 14u);
}

TEST(MimeParser, UnclosedInnerMultipartEndsAtTheOuterDelimiter) {
  ParsedMessage m = ParseMessage(
      "Content-Type: multipart/mixed; boundary=outer\r\n\r\n"
      "--outer\r\nContent-Type: multipart/alternative; boundary=inner\r\n\r\n"
      "--inner\r\nContent-Type: text/plain\r\n\r\nplain\r\n--inner\r\nContent-Type: text/html\r\n\r\n<p>h</p>\r\n"
      "--outer\r\nContent-Type: text/plain\r\n\r\nlast\r\n--outer--\r\nouter epilogue\r\n");
  ASSERT_EQ(m.root.children.size(), 2u);
  ASSERT_EQ(m.root.children[0].children.size(), 2u);
  FileSectionSource src(m);
  EXPECT_EQ(src.Body("1.2").value(), "<p>h</p>");
  EXPECT_EQ(m.root.children[0].children[1].size, 8u);
  EXPECT_EQ(src.Body("2").value(), "last");
}

TEST(MimeParser, UnclosedOuterMultipartWithAClosedInnerOneKeepsTheInnerEpilogue) {
  ParsedMessage m = ParseMessage(
      "Content-Type: multipart/mixed; boundary=outer\r\n\r\n"
      "--outer\r\nContent-Type: text/plain\r\n\r\nfirst\r\n"
      "--outer\r\nContent-Type: multipart/alternative; boundary=inner\r\n\r\n"
      "--inner\r\nContent-Type: text/plain\r\n\r\nplain\r\n--inner--\r\nepilogue line\r\n");
  ASSERT_EQ(m.root.children.size(), 2u);
  FileSectionSource src(m);
  EXPECT_EQ(src.Body("2").value(),
            "--inner\r\nContent-Type: text/plain\r\n\r\nplain\r\n--inner--\r\nepilogue line\r\n");
  EXPECT_EQ(src.Body("2.1").value(), "plain");
  EXPECT_EQ(m.root.children[1].children[0].size, 5u);
}

// Dovecot parses each Content-Disposition header until one had parameters
// (message-part-data.c: `content_disposition_params == NULL`): the first
// with parameters wins, else the last. The server path cannot change what
// the server sends, so the local parser follows it.
TEST(MimeParser, TwoContentDispositionsFollowTheServer) {
  ParsedMessage m = ParseMessage(
      "Content-Type: multipart/mixed; boundary=b\r\n\r\n"
      "--b\r\nContent-Type: application/octet-stream\r\n"
      "Content-Disposition: inline\r\nContent-Disposition: attachment; filename=\"x.bin\"\r\n\r\ntwo\r\n"
      "--b\r\nContent-Type: application/octet-stream\r\n"
      "Content-Disposition: attachment; filename=\"first.bin\"\r\n"
      "Content-Disposition: inline; filename=\"second.bin\"\r\n\r\nthree\r\n--b--\r\n");
  ASSERT_EQ(m.root.children.size(), 2u);
  const Part& later = m.root.children[0];
  EXPECT_EQ(later.disposition.value_or(""), "attachment");
  EXPECT_EQ(RawParam(later.disposition_params, "filename").value_or(""), "x.bin");
  const Part& first = m.root.children[1];
  EXPECT_EQ(first.disposition.value_or(""), "attachment");
  EXPECT_EQ(RawParam(first.disposition_params, "filename").value_or(""), "first.bin");
}

}  // namespace
}  // namespace mailhook::mime
