#include "pgstore/pg_url.h"

#include <gtest/gtest.h>

namespace mailhook::pgstore {
namespace {

TEST(RedactUrlTest, HidesTheUserInfoPassword) {
  EXPECT_EQ(RedactUrl("postgresql://u:pw@h/db"), "postgresql://u:<redacted>@h/db");
  EXPECT_EQ(RedactUrl("postgres://mailhook:s3cr%40t@db.example:5433/mail?sslmode=require"),
            "postgres://mailhook:<redacted>@db.example:5433/mail?sslmode=require");
}

TEST(RedactUrlTest, KeepsAUrlWithoutPassword) {
  EXPECT_EQ(RedactUrl("postgresql://u@h:5432/db"), "postgresql://u@h:5432/db");
  EXPECT_EQ(RedactUrl("postgresql://h/db"), "postgresql://h/db");
  EXPECT_EQ(RedactUrl("postgresql:///db?host=/run/postgresql"), "postgresql:///db?host=/run/postgresql");
  EXPECT_EQ(RedactUrl("postgresql://u:@h/db"), "postgresql://u:@h/db");  // an empty password
  EXPECT_EQ(RedactUrl(""), "");
}

// People write '@' and '/' unencoded in passwords: the authority ends at the
// last '@', so all of it is hidden.
TEST(RedactUrlTest, HidesUnencodedAtAndSlashInThePassword) {
  EXPECT_EQ(RedactUrl("postgresql://u:p@ss@h/db"), "postgresql://u:<redacted>@h/db");
  EXPECT_EQ(RedactUrl("postgresql://u:pa/ss@h/db"), "postgresql://u:<redacted>@h/db");
}

TEST(RedactUrlTest, HidesPasswordQueryParameterAndKeywordValue) {
  EXPECT_EQ(RedactUrl("postgresql://h/db?user=u&password=pw&sslmode=require"),
            "postgresql://h/db?user=u&password=<redacted>&sslmode=require");
  EXPECT_EQ(RedactUrl("host=h password=pw dbname=mail"), "host=h password=<redacted> dbname=mail");
  EXPECT_EQ(RedactUrl("host=h password='p w' dbname=mail"), "host=h password=<redacted> dbname=mail");
  // sslpassword, a client key's passphrase, is a secret too.
  EXPECT_EQ(RedactUrl("postgresql://h/db?sslkey=k.pem&sslpassword=x"),
            "postgresql://h/db?sslkey=k.pem&sslpassword=<redacted>");
  EXPECT_EQ(RedactUrl("host=h mypassword=x"), "host=h mypassword=x");
}

TEST(RedactUrlTest, PasswordsInListsRawAndDecoded) {
  EXPECT_EQ(PasswordsIn("postgresql://u:s3cr%40t@h/db"), (std::vector<std::string>{"s3cr%40t", "s3cr@t"}));
  EXPECT_EQ(PasswordsIn("postgresql://u@h/db?password=pw"), (std::vector<std::string>{"pw"}));
  EXPECT_TRUE(PasswordsIn("postgresql://u@h/db").empty());
}

TEST(RedactUrlTest, RedactPasswordsOfScrubsFreeText) {
  const std::string url = "postgresql://u:s3cr%40t@h/db";
  EXPECT_EQ(RedactPasswordsOf(url, "bad token \"s3cr@t\" and s3cr%40t"), "bad token \"<redacted>\" and <redacted>");
  EXPECT_EQ(RedactPasswordsOf(url, "nothing secret"), "nothing secret");
}

}  // namespace
}  // namespace mailhook::pgstore
