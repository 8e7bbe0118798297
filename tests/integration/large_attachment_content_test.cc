// With `attachments: content`, attachments larger than one partial FETCH
// (the daemon reads bodies in 1 MiB pieces) arrive whole and exact: bytes,
// sha256 and decoded size, also when the body is an exact multiple of the
// piece size, and a part over max_attachment_bytes keeps size and sha256
// but no content.

#include <openssl/evp.h>

#include <random>

#include "pipeline_fixture.h"

namespace mailhook::testsupport {
namespace {

std::string Base64(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3), '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

std::string Sha256Hex(std::string_view bytes) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(bytes.data(), bytes.size(), md, &len, EVP_sha256(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < len; ++i) {
    out.push_back(kHex[md[i] >> 4]);
    out.push_back(kHex[md[i] & 15]);
  }
  return out;
}

std::string RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string out(n, '\0');
  for (char& c : out) c = static_cast<char>(rng() & 0xFF);
  return out;
}

// Base64 in 76-character CRLF lines, as mail clients send it; `one_line`
// leaves the line breaks out (the body is then exactly 4/3 of the bytes).
std::string MimeBase64(std::string_view bytes, bool one_line) {
  std::string b64 = Base64(bytes);
  if (one_line) return b64;
  std::string out;
  for (size_t i = 0; i < b64.size(); i += 76) out.append(b64, i, 76).append("\r\n");
  if (!out.empty()) out.resize(out.size() - 2);
  return out;
}

std::string Part(const std::string& name, std::string_view bytes, bool one_line) {
  return "--b\r\nContent-Type: application/octet-stream; name=\"" + name +
         "\"\r\nContent-Disposition: attachment; filename=\"" + name +
         "\"\r\nContent-Transfer-Encoding: base64\r\n\r\n" + MimeBase64(bytes, one_line) + "\r\n";
}

TEST_F(PipelineTest, AttachmentsLargerThanOnePieceArriveExact) {
  StartDaemon({}, "attachments: content, max_attachment_bytes: 8388608");
  WaitIdle();
  const std::string three_mib = RandomBytes(3 * 1024 * 1024 + 7, 1);
  const std::string exact = RandomBytes(1536 * 1024, 2);     // one 2 MiB line: two whole pieces
  const std::string over = RandomBytes(9 * 1024 * 1024, 3);  // over the 8 MiB limit
  std::string message =
      "From: a@example.com\r\nTo: b@example.com\r\nSubject: big\r\nMIME-Version: 1.0\r\n"
      "Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n"
      "--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n" +
      Part("three.bin", three_mib, false) + Part("exact.bin", exact, true) + Part("over.bin", over, false) +
      "--b--\r\n";
  ASSERT_EQ(MimeBase64(exact, true).size(), 2u * 1024 * 1024);

  ImapClient imap(dovecot_);
  MH_ASSERT_OK(imap.Append("alice", "INBOX", message));
  ASSERT_TRUE(receiver_.WaitFor(1, seconds(60))) << daemon_.Log();
  RecordedRequest req = receiver_.Requests()[0];
  EXPECT_TRUE(VerifyStandardWebhookSignature(kTestWebhookSecret, req));
  nlohmann::json e = req.Json();
  ASSERT_FALSE(e.is_discarded());
  const nlohmann::json& atts = e["message"]["attachments"];
  ASSERT_EQ(atts.size(), 3u) << daemon_.Log();

  const std::pair<const std::string*, const char*> sent[] = {{&three_mib, "three.bin"}, {&exact, "exact.bin"}};
  for (size_t i = 0; i < 2; ++i) {
    const nlohmann::json& a = atts[i];
    EXPECT_EQ(a["filename"], sent[i].second);
    EXPECT_EQ(a["size"], sent[i].first->size());
    EXPECT_EQ(a["sha256"], Sha256Hex(*sent[i].first));
    ASSERT_TRUE(a["content_base64"].is_string()) << sent[i].second;
    EXPECT_TRUE(a["content_base64"].get<std::string>() == Base64(*sent[i].first)) << sent[i].second;
  }
  EXPECT_EQ(atts[2]["filename"], "over.bin");
  EXPECT_EQ(atts[2]["size"], over.size());
  EXPECT_EQ(atts[2]["sha256"], Sha256Hex(over));
  EXPECT_TRUE(atts[2]["content_base64"].is_null());
}

}  // namespace
}  // namespace mailhook::testsupport
