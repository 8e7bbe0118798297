#include "mime/event.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <fstream>

#include "mime/decode.h"

namespace mailhook::mime {
namespace {

MessageContent Sample() {
  MessageContent c;
  c.subject = "bad \xE9 byte";
  c.from = {{"Ann", "ann@example.com"}};
  Attachment a;
  a.part = "2";
  a.filename = "x.bin";
  a.content_type = "application/octet-stream";
  a.disposition = "attachment";
  a.size = 3;
  a.sha256 = "abc";
  a.content_base64 = std::make_shared<const std::string>("aGkh");  // "hi!"
  c.attachments.push_back(a);
  return c;
}

TEST(Event, IdIsStableAndDistinct) {
  std::string id = EventId("support", "INBOX", 1732600000, 4711);
  EXPECT_EQ(id, EventId("support", "INBOX", 1732600000, 4711));
  EXPECT_EQ(id.size(), 4u + 32u);
  EXPECT_EQ(id.rfind("evt_", 0), 0u);
  EXPECT_NE(id, EventId("support", "INBOX", 1732600000, 4712));
  // '\0' separators: ("ab","c") and ("a","bc") differ.
  EXPECT_NE(EventId("ab", "c", 1, 1), EventId("a", "bc", 1, 1));
}

TEST(Event, ContractShapeEveryKeyPresent) {
  EventMeta meta{"support", "INBOX", 7, 9, {"\\Seen"}, 1234, "2026-11-26T07:00:00Z"};
  nlohmann::json j = EventJson(meta, Sample(), config::AttachmentMode::kMetadata, 100);
  EXPECT_EQ(j["type"], "message.received");
  EXPECT_EQ(j["schema"], 1);
  EXPECT_EQ(j["uid"], 9);
  const auto& m = j["message"];
  for (const char* key : {"message_id", "in_reply_to", "references", "date", "subject", "from", "to", "cc", "reply_to",
                          "flags", "size", "text", "html", "attachments", "truncated"}) {
    EXPECT_TRUE(m.contains(key)) << key;
  }
  EXPECT_TRUE(m["message_id"].is_null());
  EXPECT_TRUE(m["to"].is_array());
  EXPECT_EQ(m["flags"][0], "\\Seen");
  EXPECT_EQ(m["subject"], "bad \xEF\xBF\xBD byte");  // forced to valid UTF-8
  EXPECT_FALSE(m["attachments"][0].contains("content_base64"));
  EXPECT_TRUE(m["attachments"][0]["content_id"].is_null());
  EXPECT_NO_THROW((void)j.dump());
}

TEST(Event, AttachmentModes) {
  EventMeta meta;
  auto none = EventJson(meta, Sample(), config::AttachmentMode::kNone, 100);
  EXPECT_TRUE(none["message"]["attachments"].empty());
  auto content = EventJson(meta, Sample(), config::AttachmentMode::kContent, 100);
  EXPECT_EQ(content["message"]["attachments"][0]["content_base64"], "aGkh");
  auto over = EventJson(meta, Sample(), config::AttachmentMode::kContent, 2);
  EXPECT_TRUE(over["message"]["attachments"][0]["content_base64"].is_null());
}

TEST(Event, PayloadIsTheCompactJsonWithContentsSplicedIn) {
  EventMeta meta;
  meta.account = "support";
  MessageContent c = Sample();
  Attachment second = c.attachments[0];
  second.part = "3";
  second.content_base64 = std::make_shared<const std::string>("AAEC");
  c.attachments.push_back(second);
  Attachment over = c.attachments[0];  // over the limit: null, not spliced
  over.part = "4";
  over.size = 1000;
  c.attachments.push_back(over);
  // Message text that mimics the marker must stay text: quotes in strings are escaped.
  c.text = R"("content_base64":"#")";
  for (auto mode :
       {config::AttachmentMode::kNone, config::AttachmentMode::kMetadata, config::AttachmentMode::kContent}) {
    EXPECT_EQ(EventPayload(meta, c, mode, 100), EventJson(meta, c, mode, 100).dump());
  }
  // The contents are shared with the message, not copied into the pieces.
  auto pieces = EventPieces(meta, c, config::AttachmentMode::kContent, 100);
  ASSERT_EQ(pieces.size(), 5u);  // json, content, json, content, json
  EXPECT_EQ(pieces[1].get(), c.attachments[0].content_base64.get());
  EXPECT_EQ(pieces[3].get(), c.attachments[1].content_base64.get());
  auto j = nlohmann::json::parse(EventPayload(meta, c, config::AttachmentMode::kContent, 100));
  EXPECT_EQ(j["message"]["text"], R"("content_base64":"#")");
  EXPECT_EQ(j["message"]["attachments"][0]["content_base64"], "aGkh");
  EXPECT_EQ(j["message"]["attachments"][1]["content_base64"], "AAEC");
  EXPECT_TRUE(j["message"]["attachments"][2]["content_base64"].is_null());
}

TEST(Event, AutoReplyHeadersOnlyWhenAskedFor) {
  EventMeta meta;
  MessageContent c = Sample();
  c.auto_reply.auto_submitted = "auto-replied";
  c.auto_reply.return_path = "<>";
  auto joined = [](const auto& pieces) {
    std::string out;
    for (const auto& p : pieces) out += *p;
    return nlohmann::json::parse(out);
  };
  // Webhooks and hooks get the contract's event, nothing more.
  EXPECT_FALSE(joined(EventPieces(meta, c, config::AttachmentMode::kContent, 100)).contains("auto_reply_headers"));
  nlohmann::json j = joined(EventPieces(meta, c, config::AttachmentMode::kContent, 100, true));
  EXPECT_EQ(j["auto_reply_headers"]["auto_submitted"], "auto-replied");
  EXPECT_EQ(j["auto_reply_headers"]["return_path"], "<>");
  EXPECT_TRUE(j["auto_reply_headers"]["list_id"].is_null());
  EXPECT_EQ(j["message"]["attachments"][0]["content_base64"], "aGkh");  // contents still spliced in
}

TEST(Event, OriginalIsItsOwnSharedPieceOnlyWhenAskedFor) {
  EventMeta meta;
  MessageContent c = Sample();
  auto joined = [](const auto& pieces) {
    std::string out;
    for (const auto& p : pieces) out += *p;
    return out;
  };
  // Webhooks and hooks: exactly the contract's event.
  const std::string contract = EventJson(meta, c, config::AttachmentMode::kContent, 100).dump();
  EXPECT_EQ(joined(EventPieces(meta, c, config::AttachmentMode::kContent, 100, true, nullptr)),
            joined(EventPieces(meta, c, config::AttachmentMode::kContent, 100, true)));
  EXPECT_FALSE(nlohmann::json::parse(joined(EventPieces(meta, c, config::AttachmentMode::kContent, 100)))
                   .contains("original_rfc822"));
  EXPECT_EQ(joined(EventPieces(meta, c, config::AttachmentMode::kContent, 100)), contract);

  // A forward's: the base64 is one piece, the same object for every route
  // (encoded once per message), after the attachments' contents.
  EventOriginal original{std::make_shared<const std::string>("U3ViamVjdDogaGkNCg0KYm9keQ0K")};
  auto pieces = EventPieces(meta, c, config::AttachmentMode::kContent, 100, true, &original);
  EXPECT_EQ(std::count(pieces.begin(), pieces.end(), original.base64), 1);
  nlohmann::json j = nlohmann::json::parse(joined(pieces));
  EXPECT_EQ(j["original_rfc822"], *original.base64);
  EXPECT_EQ(j["message"]["attachments"][0]["content_base64"], "aGkh");  // contents still spliced in
  EXPECT_EQ(j["auto_reply_headers"].size(), 6u);
  j.erase("original_rfc822");
  j.erase("auto_reply_headers");
  EXPECT_EQ(j.dump(), contract);

  // Over kMaxOriginalBytes: null, so the target can say why it is missing.
  EventOriginal omitted;
  nlohmann::json n =
      nlohmann::json::parse(joined(EventPieces(meta, c, config::AttachmentMode::kNone, 0, true, &omitted)));
  ASSERT_TRUE(n.contains("original_rfc822"));
  EXPECT_TRUE(n["original_rfc822"].is_null());
  EXPECT_FALSE(n.contains("original_omitted"));

  // Unreadable (the server refused its bytes): null, with the reason beside it.
  EventOriginal unreadable{nullptr, "unreadable"};
  nlohmann::json u =
      nlohmann::json::parse(joined(EventPieces(meta, c, config::AttachmentMode::kNone, 0, true, &unreadable)));
  EXPECT_TRUE(u["original_rfc822"].is_null());
  EXPECT_EQ(u["original_omitted"], "unreadable");
}

TEST(Event, ParseFile) {
  std::string path = ::testing::TempDir() + "mime_event_test.eml";
  {
    std::ofstream f(path, std::ios::binary);
    f << "Subject: hi\nMessage-ID: <m@x>\n\nbody\n";
  }
  auto r = ParseFileToEventJson(path, "Archive", config::AttachmentMode::kMetadata);
  ASSERT_TRUE(r.ok());
  auto j = nlohmann::json::parse(*r);
  EXPECT_EQ(j["account"], "local");
  EXPECT_EQ(j["mailbox"], "Archive");
  EXPECT_EQ(j["message"]["size"], 40);          // 36 bytes, 4 LFs counted as CRLF
  EXPECT_EQ(j["message"]["text"], "body\r\n");  // read as the server stores it
  EXPECT_EQ(j["id"], EventId("local", "Archive", 0, 0));
  std::remove(path.c_str());
  auto missing = ParseFileToEventJson(path, "INBOX", config::AttachmentMode::kMetadata);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code(), "mime.read_failed");
}

// An LF file and its CRLF copy give the same event: `parse` reads a file as
// an IMAP server stores it (issue 13 item 11: 60 of 158 real LF messages
// agreed with the daemon's event before, as text and text attachments
// differed by their CRs).
TEST(Event, ParseFileWithBareLfGivesTheEventOfItsCrlfCopy) {
  const std::string lf =
      "From: a@example.com\nSubject: lf\nMessage-ID: <lf@x>\nMIME-Version: 1.0\n"
      "Content-Type: multipart/mixed; boundary=b\n\n"
      "--b\nContent-Type: multipart/alternative; boundary=c\n\n"
      "--c\nContent-Type: text/plain\n\nline one\nline two\n"
      "--c\nContent-Type: text/html\n\n<p>one</p>\n<p>two</p>\n--c--\n"
      "--b\nContent-Type: text/csv; name=t.csv\nContent-Disposition: attachment; filename=t.csv\n\n"
      "a,b\n1,2\n--b--\n";
  std::string crlf;
  for (char c : lf) {
    if (c == '\n') crlf += '\r';
    crlf += c;
  }
  const std::string dir = ::testing::TempDir();
  const std::string lf_path = dir + "mime_event_lf.eml";
  const std::string crlf_path = dir + "mime_event_crlf.eml";
  std::ofstream(lf_path, std::ios::binary) << lf;
  std::ofstream(crlf_path, std::ios::binary) << crlf;
  auto a = ParseFileToEventJson(lf_path, "INBOX", config::AttachmentMode::kContent);
  auto b = ParseFileToEventJson(crlf_path, "INBOX", config::AttachmentMode::kContent);
  std::remove(lf_path.c_str());
  std::remove(crlf_path.c_str());
  ASSERT_TRUE(a.ok() && b.ok());
  auto ja = nlohmann::json::parse(*a);
  auto jb = nlohmann::json::parse(*b);
  ja.erase("created_at");
  jb.erase("created_at");
  EXPECT_EQ(ja, jb);
  EXPECT_EQ(ja["message"]["text"], "line one\r\nline two");
  EXPECT_EQ(ja["message"]["html"], "<p>one</p>\r\n<p>two</p>");
  ASSERT_EQ(ja["message"]["attachments"].size(), 1u);
  EXPECT_EQ(ja["message"]["attachments"][0]["size"], 8);  // "a,b\r\n1,2": the last CRLF is the delimiter's
  EXPECT_EQ(ja["message"]["size"], crlf.size());
}

TEST(Event, TruncatedIsNullWhenNothingWasCut) {
  EventMeta meta{"support", "INBOX", 7, 9, {}, 10, "2026-11-26T07:00:00Z"};
  nlohmann::json j = EventJson(meta, Sample(), config::AttachmentMode::kMetadata, 100);
  ASSERT_TRUE(j["message"].contains("truncated"));
  EXPECT_TRUE(j["message"]["truncated"].is_null());
}

TEST(Event, TruncatedSaysWhatALimitCut) {
  EventMeta meta{"support", "INBOX", 7, 9, {}, 10, "2026-11-26T07:00:00Z"};
  MessageContent c = Sample();
  c.truncated = Truncation{true, false, 299001};
  nlohmann::json j = EventJson(meta, c, config::AttachmentMode::kContent, 100);
  EXPECT_EQ(j["message"]["truncated"],
            nlohmann::json::parse(R"({"text":true,"html":false,"attachments_omitted":299001})"));
  // The pieces (with the attachment content spliced in) say the same.
  EXPECT_EQ(EventPayload(meta, c, config::AttachmentMode::kContent, 100), j.dump());
}

TEST(Event, UnprocessableEnvelopeAndWhatTheHeaderGives) {
  EventMeta meta{"support", "INBOX", 7, 9, {"\\Seen"}, 4321, "2026-11-26T07:00:00Z"};
  const std::string header =
      "From: =?UTF-8?Q?Ann_M=C3=BCller?= <ann@example.com>\r\n"
      "Subject: =?ISO-8859-1?Q?Caf=E9?=\r\n"
      "Date: Thu, 26 Nov 2026 07:59:58 +0100\r\n"
      "Message-ID: <abc@example.com>\r\n";
  nlohmann::json j = nlohmann::json::parse(UnprocessableEventJson(meta, header, "mime.fetch: timeout", 3));
  nlohmann::json want = nlohmann::json::parse(R"({
    "type": "message.unprocessable", "schema": 1, "created_at": "2026-11-26T07:00:00Z",
    "account": "support", "mailbox": "INBOX", "uidvalidity": 7, "uid": 9,
    "reason": "mime.fetch: timeout", "attempts": 3,
    "message": {"message_id": "<abc@example.com>", "date": "2026-11-26T06:59:58Z", "subject": "Caf\u00e9",
                "from": [{"name": "Ann M\u00fcller", "address": "ann@example.com"}], "size": 4321}})");
  want["id"] = EventId("support", "INBOX", 7, 9);  // the id message.received would have had
  EXPECT_EQ(j, want);
}

TEST(Event, UnprocessableWithAnUnreadableHeaderHasNulls) {
  EventMeta meta{"support", "INBOX", 7, 9, {}, 99, "2026-11-26T07:00:00Z"};
  nlohmann::json j =
      nlohmann::json::parse(UnprocessableEventJson(meta, "garbage \xFF without a colon\r\n", "bad \xFF", 5));
  EXPECT_EQ(j["type"], "message.unprocessable");
  EXPECT_EQ(j["reason"], "bad \xEF\xBF\xBD");  // forced to valid UTF-8
  EXPECT_EQ(j["attempts"], 5);
  EXPECT_EQ(j["message"],
            nlohmann::json::parse(R"({"message_id":null,"date":null,"subject":null,"from":null,"size":99})"));
}

}  // namespace
}  // namespace mailhook::mime
