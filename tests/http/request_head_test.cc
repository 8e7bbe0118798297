#include "http/request_head.h"

#include <gtest/gtest.h>

namespace mailhook::http {
namespace {

using Kind = HeadParse::Kind;

HeadParse Parse(std::string_view buf, HeadLimits limits = {}) {
  HeadScan scan;
  return ParseRequestHead(buf, &scan, limits);
}

TEST(RequestHeadTest, ParsesRequestLineAndFields) {
  auto p = Parse("GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\nX-Thing:  v 1 \r\n\r\nrest");
  ASSERT_EQ(p.kind, Kind::kComplete) << p.cause;
  EXPECT_EQ(p.head.method, "GET");
  EXPECT_EQ(p.head.target, "/metrics?x=1");
  EXPECT_EQ(p.head.path, "/metrics");
  EXPECT_EQ(p.head.Field("x-thing"), "v 1");
  EXPECT_TRUE(p.head.keep_alive);
  EXPECT_FALSE(p.head.AnnouncesBody());
  EXPECT_EQ(p.head_bytes, std::string_view("GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\nX-Thing:  v 1 \r\n\r\n").size());
}

TEST(RequestHeadTest, TrickledByteByByteEqualsWhole) {
  std::string whole = "POST /e HTTP/1.1\nContent-Length: 12\nConnection: close\n\n";
  HeadScan scan;
  HeadParse p;
  for (size_t n = 1; n <= whole.size(); ++n) {
    p = ParseRequestHead(std::string_view(whole).substr(0, n), &scan, {});
    if (n < whole.size()) {
      ASSERT_EQ(p.kind, Kind::kIncomplete) << n;
    }
  }
  ASSERT_EQ(p.kind, Kind::kComplete) << p.cause;
  EXPECT_EQ(p.head.content_length, 12u);
  EXPECT_FALSE(p.head.keep_alive);
  EXPECT_TRUE(p.head.AnnouncesBody());
}

TEST(RequestHeadTest, TooManyFieldsIsRefusedBeforeTheHeadEnds) {
  std::string head = "GET / HTTP/1.1\r\n";
  for (int i = 0; i < 70; ++i) head += "a: b\r\n";
  auto p = Parse(head);  // no blank line yet: the count alone decides
  ASSERT_EQ(p.kind, Kind::kError);
  EXPECT_EQ(p.status, 431);
}

TEST(RequestHeadTest, OversizedHeadIsRefusedBeforeTheHeadEnds) {
  auto p = Parse("GET / HTTP/1.1\r\nX: " + std::string(9000, 'a'));
  ASSERT_EQ(p.kind, Kind::kError);
  EXPECT_EQ(p.status, 431);
  p = Parse("GET / HTTP/1.1\r\nX: " + std::string(100, 'a') + "\r\n\r\n", HeadLimits{64, 10});
  EXPECT_EQ(p.status, 431);
}

TEST(RequestHeadTest, FramingThatCouldSmuggleIsRefused) {
  EXPECT_EQ(Parse("POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n").status, 400);
  EXPECT_EQ(Parse("POST / HTTP/1.1\r\nContent-Length: 3, 4\r\n\r\n").status, 400);
  EXPECT_EQ(Parse("POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n").status, 400);
  EXPECT_EQ(Parse("POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n").status, 400);
  EXPECT_EQ(Parse("POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n").status, 400);
  EXPECT_EQ(Parse("GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n").status, 400);  // obs-fold
  EXPECT_EQ(Parse("GET / HTTP/1.1\r\nX : a\r\n\r\n").status, 400);       // space before ':'
  auto same = Parse("POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n");
  ASSERT_EQ(same.kind, Kind::kComplete);
  EXPECT_EQ(same.head.content_length, 3u);
}

TEST(RequestHeadTest, TransferEncodingAnnouncesABody) {
  auto p = Parse("POST /metrics HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n");
  ASSERT_EQ(p.kind, Kind::kComplete);
  EXPECT_TRUE(p.head.has_transfer_encoding);
  EXPECT_TRUE(p.head.AnnouncesBody());
}

TEST(RequestHeadTest, BadRequestLinesAndVersions) {
  EXPECT_EQ(Parse("GET /\r\n\r\n").status, 400);
  EXPECT_EQ(Parse("GET  / HTTP/1.1\r\n\r\n").status, 400);
  EXPECT_EQ(Parse("G(T / HTTP/1.1\r\n\r\n").status, 400);
  EXPECT_EQ(Parse("GET / HTTP/2.0\r\n\r\n").status, 505);
  auto old = Parse("GET / HTTP/1.0\r\n\r\n");
  ASSERT_EQ(old.kind, Kind::kComplete);
  EXPECT_FALSE(old.head.keep_alive);
  auto kept = Parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
  EXPECT_TRUE(kept.head.keep_alive);
}

}  // namespace
}  // namespace mailhook::http
