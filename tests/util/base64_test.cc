#include "util/base64.h"

#include <gtest/gtest.h>

namespace mailhook::util {
namespace {

TEST(Base64, RoundTripsEveryLengthOfAQuantum) {
  for (std::string s : {"", "f", "fo", "foo", "foob", "fooba", "foobar"}) {
    std::optional<std::string> back = Base64DecodeStrict(Base64Encode(s));
    ASSERT_TRUE(back) << s;
    EXPECT_EQ(*back, s);
  }
  EXPECT_EQ(Base64Encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(Base64Encode("hi"), "aGk=");
  EXPECT_EQ(Base64Encode("h"), "aA==");
}

TEST(Base64, StrictDecodingAcceptsMissingPaddingButNothingElse) {
  EXPECT_EQ(Base64DecodeStrict("Zm9vYg"), "foob");
  EXPECT_EQ(Base64DecodeStrict("Zm9vYg=="), "foob");
  EXPECT_FALSE(Base64DecodeStrict("Zm9vYg="));    // padding that does not fill the quantum
  EXPECT_FALSE(Base64DecodeStrict("Zm9v*mFy"));   // outside the alphabet
  EXPECT_FALSE(Base64DecodeStrict("Zm9v YmFy"));  // white space
  EXPECT_FALSE(Base64DecodeStrict("Zm9vY"));      // a lone character carries no byte
  EXPECT_FALSE(Base64DecodeStrict("Zm=9v"));      // '=' inside
  EXPECT_FALSE(Base64DecodeStrict("Zm9vYmFy==="));
}

TEST(Base64Encoder, AnyPieceSizeGivesWhatTheWholeGives) {
  std::string in;
  for (int i = 0; i < 100; ++i) in.push_back(static_cast<char>(i * 37));
  for (size_t piece = 1; piece < 8; ++piece) {
    Base64Encoder encoder;
    std::string out;
    for (size_t i = 0; i < in.size(); i += piece) encoder.Add(std::string_view(in).substr(i, piece), out);
    encoder.Finish(out);
    EXPECT_EQ(out, Base64Encode(in)) << piece;
  }
}

}  // namespace
}  // namespace mailhook::util
