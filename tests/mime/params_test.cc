#include "mime/params.h"

#include <gtest/gtest.h>

namespace mailhook::mime {
namespace {

TEST(ContentType, ParsesTypeAndParams) {
  ContentType ct = ParseContentType("Text/HTML; Charset=\"UTF-8\"; name=a\\\"b; x");
  EXPECT_EQ(ct.type, "text");
  EXPECT_EQ(ct.subtype, "html");
  ASSERT_EQ(ct.params.size(), 2u);
  EXPECT_EQ(ct.params[0].name, "charset");
  EXPECT_EQ(ct.params[0].value, "UTF-8");
}

TEST(ContentType, InvalidMeansTextPlain) {
  ContentType ct = ParseContentType("garbage");
  EXPECT_EQ(ct.type + "/" + ct.subtype, "text/plain");
}

TEST(ContentType, MissingSemicolonBeforeParams) {
  ContentType ct = ParseContentType("multipart/mixed\r\n\tboundary=\"b1\"");
  EXPECT_EQ(ct.subtype, "mixed");
  EXPECT_EQ(RawParam(ct.params, "boundary").value_or(""), "b1");
}

TEST(Rfc2231, CharsetAndPercent) {
  auto p = ParseParams("; filename*=utf-8''%E2%82%AC%20rates.txt");
  EXPECT_EQ(DecodeParam(p, "filename").value_or(""), "\xE2\x82\xAC rates.txt");
}

TEST(Rfc2231, ContinuationsWithCharset) {
  auto p = ParseParams("; filename*0*=iso-8859-1'fr'caf%E9_; filename*1*=%E9t%E9; filename*2=\".txt\"");
  EXPECT_EQ(DecodeParam(p, "filename").value_or(""), "caf\xC3\xA9_\xC3\xA9t\xC3\xA9.txt");
}

TEST(Rfc2231, PlainContinuationsOutOfOrder) {
  auto p = ParseParams("; name*1=\"def\"; name*0=\"abc\"");
  EXPECT_EQ(DecodeParam(p, "name").value_or(""), "abcdef");
}

TEST(Rfc2231, StarFormWinsOverPlain) {
  auto p = ParseParams("; filename=\"fallback.txt\"; filename*=UTF-8''r%C3%A9el.txt");
  EXPECT_EQ(DecodeParam(p, "filename").value_or(""),
            "r\xC3\xA9"
            "el.txt");
}

TEST(Rfc2231, DovecotMergedForm) {
  // Dovecot merges filename*0*/*1* into one still-encoded filename*.
  std::vector<Param> p = {{"filename*", "utf-8''a%C3%A9b"}};
  EXPECT_EQ(DecodeParam(p, "filename").value_or(""),
            "a\xC3\xA9"
            "b");
}

TEST(Rfc2047InParams, EncodedWordInsideQuotes) {
  auto p = ParseParams("; filename=\"=?UTF-8?B?0L/RgNC40LLQtdGCLnR4dA==?=\"");
  EXPECT_EQ(DecodeParam(p, "filename").value_or(""), "\xD0\xBF\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82.txt");
}

TEST(Rfc2047InParams, GbkFilename) {
  auto p = ParseParams("; name=\"=?gbk?B?1tDOxC5kb2M=?=\"");
  EXPECT_EQ(DecodeParam(p, "name").value_or(""), "\xE4\xB8\xAD\xE6\x96\x87.doc");
}

TEST(RawParams, Gbk8BitFilenameUsesPartCharset) {
  std::vector<Param> p = {{"name", "\xD6\xD0\xCE\xC4.doc"}};
  EXPECT_EQ(DecodeParam(p, "name", "gbk").value_or(""), "\xE4\xB8\xAD\xE6\x96\x87.doc");
  // Without a charset hint: windows-1252, never invalid UTF-8.
  EXPECT_EQ(DecodeParam(p, "name").value_or(""), "\xC3\x96\xC3\x90\xC3\x8E\xC3\x84.doc");
}

TEST(Params, AbsentAndUnquoted) {
  auto p = ParseParams("; filename=unquoted name.txt ; size=10");
  EXPECT_EQ(DecodeParam(p, "filename").value_or(""), "unquoted name.txt");
  EXPECT_FALSE(DecodeParam(p, "name"));
}

TEST(Disposition, Parses) {
  Disposition d = ParseDisposition("Attachment; filename=\"a.pdf\"");
  EXPECT_EQ(d.type, "attachment");
  EXPECT_EQ(DecodeParam(d.params, "filename").value_or(""), "a.pdf");
}

}  // namespace
}  // namespace mailhook::mime
