#include "mime/decode.h"
#include "util/base64.h"

#include <gtest/gtest.h>
#include <iconv.h>

namespace mailhook::mime {
namespace {

TEST(Base64, DecodesWithLineBreaks) { EXPECT_EQ(DecodeBase64("aGVs\r\nbG8g\nd29y bGQ="), "hello world"); }

TEST(Base64, BrokenBase64GarbageIsSkipped) {
  // Characters outside the alphabet are ignored (RFC 2045 6.8).
  EXPECT_EQ(DecodeBase64("aGV*sb!G8"), "hello");
}

TEST(Base64, BrokenBase64MissingPadding) {
  EXPECT_EQ(DecodeBase64("aGVsbG8"), "hello");
  EXPECT_EQ(DecodeBase64("aGVsbA"), "hell");
}

TEST(Base64, BrokenBase64PaddingInTheMiddleKeepsGoing) {
  // Two encoded blocks glued together (concatenated parts).
  EXPECT_EQ(DecodeBase64("aGk=aGk="), "hihi");
}

TEST(Base64, RoundTrip) {
  std::string all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
  for (size_t n = 0; n < 5; ++n) EXPECT_EQ(DecodeBase64(util::Base64Encode(all.substr(n))), all.substr(n));
  EXPECT_EQ(util::Base64Encode("hi"), "aGk=");
  EXPECT_EQ(util::Base64Encode("h"), "aA==");
}

TEST(QuotedPrintable, SoftBreaksAndHex) {
  EXPECT_EQ(DecodeQuotedPrintable("caf=C3=A9 =\r\nau lait=\nok"), "caf\xC3\xA9 au laitok");
}

TEST(QuotedPrintable, LowercaseHex) { EXPECT_EQ(DecodeQuotedPrintable("=c3=a9"), "\xC3\xA9"); }

TEST(QuotedPrintable, InvalidEscapesKept) { EXPECT_EQ(DecodeQuotedPrintable("100% =ZZ a=b =4"), "100% =ZZ a=b =4"); }

TEST(QuotedPrintable, SoftBreakWithTrailingWhitespace) { EXPECT_EQ(DecodeQuotedPrintable("abc=  \r\ndef"), "abcdef"); }

TEST(QuotedPrintable, HeaderVariantUnderscoreIsSpace) {
  EXPECT_EQ(DecodeQuotedPrintable("a_b=5F", true), "a b_");
  EXPECT_EQ(DecodeQuotedPrintable("a_b", false), "a_b");
}

TEST(Uuencode, DecodesBeginEndBlock) { EXPECT_EQ(DecodeUuencode("junk\nbegin 644 cat.txt\n#0V%T\n`\nend\n"), "Cat"); }

TEST(Uuencode, WithoutBeginReturnsInput) { EXPECT_EQ(DecodeUuencode("plain"), "plain"); }

TEST(DecodeTransfer, ByName) {
  EXPECT_EQ(DecodeTransfer("aGk=", "BASE64"), "hi");
  EXPECT_EQ(DecodeTransfer("=41", "Quoted-Printable"), "A");
  EXPECT_EQ(DecodeTransfer("=41", "8bit"), "=41");
  EXPECT_EQ(DecodeTransfer("=41", "x-weird"), "=41");
}

// Feeds `body` to a TransferDecoder in pieces of `piece` bytes.
std::string DecodeInPieces(std::string_view body, std::string_view encoding, size_t piece) {
  TransferDecoder decoder(encoding);
  std::string out;
  for (size_t i = 0; i < body.size(); i += piece) decoder.Feed(body.substr(i, piece), out);
  decoder.Finish(out);
  return out;
}

TEST(TransferDecoder, AnyPieceSizeGivesWhatTheWholeGives) {
  // Awkward inputs for a decoder cut at arbitrary bytes: a base64 quantum and
  // its padding split across pieces, garbage, padding in the middle; QP soft
  // breaks with trailing blanks, CRLF split between "\r" and "\n", escapes
  // split after "=" and after the first hex digit, "=" at the very end;
  // uuencode with text before "begin"; identity.
  const std::pair<std::string, std::string> cases[] = {
      {"aGVs\r\nbG8g\nd29y bGQ=", "base64"},
      {"aGVsbG8=aGVsbG8=!!*aGk", "base64"},
      {"Zm9vYmFy\r\nZm9vYg==\r\nZm8=", "BASE64"},
      {"caf=C3=A9 =\r\nsoft=  \r\nbreak =3D x=4\r\n=zz\nlast=", "quoted-printable"},
      {"line one=\nline two\r\n=E2=82=AC\r\n", "Quoted-Printable"},
      {"junk\nbegin 644 x.txt\n#86)C\n`\nend\n", "x-uuencode"},
      {std::string("raw \0 bytes\xff", 12), "binary"},
  };
  for (const auto& [body, encoding] : cases) {
    std::string whole = DecodeTransfer(body, encoding);
    for (size_t piece = 1; piece <= body.size(); ++piece) {
      EXPECT_EQ(DecodeInPieces(body, encoding, piece), whole) << encoding << " in pieces of " << piece;
    }
  }
}

TEST(Base64Encoder, AnyPieceSizeGivesWhatTheWholeGives) {
  std::string data;
  for (int i = 0; i < 300; ++i) data.push_back(static_cast<char>(i * 7));
  for (size_t len : {0, 1, 2, 3, 4, 5, 299, 300}) {
    std::string_view in(data.data(), len);
    for (size_t piece = 1; piece <= 7; ++piece) {
      util::Base64Encoder encoder;
      std::string out;
      for (size_t i = 0; i < in.size(); i += piece) encoder.Add(in.substr(i, piece), out);
      encoder.Finish(out);
      EXPECT_EQ(out, util::Base64Encode(in)) << len << " bytes in pieces of " << piece;
      EXPECT_EQ(DecodeBase64(out), in);
    }
  }
}

TEST(Utf8, Validity) {
  EXPECT_TRUE(IsValidUtf8("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"));
  EXPECT_FALSE(IsValidUtf8("\xC0\xAF"));      // overlong
  EXPECT_FALSE(IsValidUtf8("\xED\xA0\x80"));  // surrogate
  EXPECT_FALSE(IsValidUtf8("caf\xE9"));
  EXPECT_EQ(ForceUtf8("a\xE9z"), "a\xEF\xBF\xBDz");
  EXPECT_EQ(ForceUtf8("\xE2\x82"), "\xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST(Charset, NormalizesMisspelledLabels) {
  EXPECT_EQ(NormalizeCharset("UTF8"), "utf-8");
  EXPECT_EQ(NormalizeCharset("\"latin1\""), "iso-8859-1");
  EXPECT_EQ(NormalizeCharset("win-1252"), "windows-1252");
  EXPECT_EQ(NormalizeCharset("GB2312"), "gb18030");
  EXPECT_EQ(NormalizeCharset("ks_c_5601-1987"), "cp949");
  EXPECT_EQ(NormalizeCharset(""), "us-ascii");
  EXPECT_EQ(NormalizeCharset("utf-8*en"), "utf-8");
}

TEST(Charset, Latin1BodyWithoutCharset) {
  // No charset means us-ascii; 8-bit bytes that are not UTF-8 are latin1.
  EXPECT_EQ(ToUtf8("caf\xE9", ""), "caf\xC3\xA9");
}

TEST(Charset, UsAsciiDeclaredWith8Bit) {
  EXPECT_EQ(ToUtf8("caf\xC3\xA9", "us-ascii"), "caf\xC3\xA9");  // really UTF-8 (RFC 6532)
  EXPECT_EQ(ToUtf8("caf\xE9", "us-ascii"), "caf\xC3\xA9");      // really latin1
}

TEST(Charset, Iso88591ReadAsWindows1252) {
  EXPECT_EQ(ToUtf8("\x80 \x93x\x94", "iso-8859-1"), "\xE2\x82\xAC \xE2\x80\x9Cx\xE2\x80\x9D");
}

TEST(Charset, Utf8DeclaredButLatin1) { EXPECT_EQ(ToUtf8("na\xEFve", "utf-8"), "na\xC3\xAFve"); }

TEST(Charset, Utf8WithOneBadByteGetsReplacement) {
  EXPECT_EQ(ToUtf8("\xC3\xA9t\xE9", "utf-8"), "\xC3\xA9t\xEF\xBF\xBD");
}

TEST(Charset, Gb2312UsesGb18030) {
  // "中文" in GBK; 0x80 0x80 region characters only in GBK/GB18030.
  EXPECT_EQ(ToUtf8("\xD6\xD0\xCE\xC4", "gb2312"), "\xE4\xB8\xAD\xE6\x96\x87");
  EXPECT_EQ(ToUtf8("\x81\x40", "gb2312"), "\xE4\xB8\x82");  // GBK-only character
}

TEST(Charset, KsC5601UsesCp949) { EXPECT_EQ(ToUtf8("\xC7\xD1", "ks_c_5601-1987"), "\xED\x95\x9C"); }

TEST(Charset, Koi8r) { EXPECT_EQ(ToUtf8("\xF0\xD2\xC9", "koi8-r"), "\xD0\x9F\xD1\x80\xD0\xB8"); }

TEST(Charset, UnknownLabelFallsBack) {
  EXPECT_EQ(ToUtf8("caf\xE9", "x-no-such-charset"), "caf\xC3\xA9");
  EXPECT_EQ(ToUtf8("caf\xC3\xA9", "unknown-8bit"), "caf\xC3\xA9");
}

TEST(Charset, BadBytesInKnownCharsetBecomeReplacementNotDropped) {
  std::string out = ToUtf8(
      "a\xFF\xFF"
      "b",
      "shift_jis");
  EXPECT_TRUE(IsValidUtf8(out));
  EXPECT_EQ(out.front(), 'a');
  EXPECT_EQ(out.back(), 'b');
  EXPECT_NE(out.find("\xEF\xBF\xBD"), std::string::npos);
}

TEST(Charset, Utf16IsNotTakenAsAscii) { EXPECT_EQ(ToUtf8(std::string("h\0i\0", 4), "utf-16le"), "hi"); }

TEST(Charset, LabelOutsideTheAllowListNeverReachesIconv) {
  // glibc knows EBCDIC (0xC1 0xC2 = "AB"), but no mail is sent in it: a
  // sender-chosen label outside the allow-list is read as unknown 8-bit text.
  EXPECT_EQ(ToUtf8("\xC1\xC2", "ebcdic-us"), "\xC3\x81\xC3\x82");
  EXPECT_EQ(ToUtf8("\xC1\xC2", "IBM037"), "\xC3\x81\xC3\x82");
  // The module of CVE-2024-2961, and names that are paths or iconv options.
  EXPECT_FALSE(IsIconvCharset(NormalizeCharset("ISO-2022-CN-EXT")));
  EXPECT_FALSE(IsIconvCharset(NormalizeCharset("../../../tmp/evil")));
  EXPECT_FALSE(IsIconvCharset(NormalizeCharset("koi8-r//TRANSLIT")));
  EXPECT_EQ(ToUtf8("ok\xE9", "koi8-r//IGNORE"), "ok\xC3\xA9");
}

TEST(Charset, AllowListedAliasesStillConvert) {
  EXPECT_EQ(ToUtf8("\xE0", "iso-8859-8-i"), "\xD7\x90");    // alef
  EXPECT_EQ(ToUtf8("\x82\xA0", "x-sjis"), "\xE3\x81\x82");  // hiragana a
  EXPECT_EQ(ToUtf8("\x80", "IBM437"), "\xC3\x87");
  EXPECT_EQ(ToUtf8("\xA4", "ISO8859-15"), "\xE2\x82\xAC");
}

TEST(Charset, EveryAllowListedNameOpensInIconv) {
  // A typo in the list would silently turn a real charset into "unknown".
  for (std::string_view name : IconvCharsets()) {
    iconv_t cd = iconv_open("UTF-8", std::string(name).c_str());
    EXPECT_NE(cd, reinterpret_cast<iconv_t>(-1)) << name;
    if (cd != reinterpret_cast<iconv_t>(-1)) iconv_close(cd);
    EXPECT_EQ(NormalizeCharset(name), name) << "not a normalized name: " << name;
  }
}

}  // namespace
}  // namespace mailhook::mime
