// notify_events: the hand parser of `* STATUS` and `* LIST` responses on a
// NOTIFY connection (RFC 5465), and the astring encoding of folder names.
// Real-server behaviour: tests/integration/notify_reports_folder_events_test.cc.

#include "imap/notify_events.h"

#include <gtest/gtest.h>

namespace mailhook::imap::notify {
namespace {

using Kind = FolderEvent::Kind;

std::vector<FolderEvent> Events(std::string_view response) {
  auto events = EventsFrom(response);
  EXPECT_TRUE(events.ok()) << response << ": " << events.error().message();
  return events.ok() ? *events : std::vector<FolderEvent>();
}

bool Refused(std::string_view response) {
  auto events = EventsFrom(response);
  return !events.ok() && events.error().code() == "imap.unreadable_response";
}

TEST(NotifyEventsTest, DovecotStatusPushIsChangedWithItsNumbers) {
  auto events = Events("* STATUS F2 (MESSAGES 2 UIDNEXT 3 UNSEEN 2)");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, Kind::kChanged);
  EXPECT_EQ(events[0].folder, "F2");
  ASSERT_TRUE(events[0].status.has_value());
  EXPECT_EQ(events[0].status->messages, 2u);
  EXPECT_EQ(events[0].status->uidnext, 3u);
  EXPECT_EQ(events[0].status->uidvalidity, 0u);  // not sent: stays 0
}

TEST(NotifyEventsTest, StatusWithUidValidityAndUnknownItems) {
  auto events = Events(
      "* STATUS \"Sent Items\" (MESSAGES 1 UIDNEXT 2 UIDVALIDITY 4294967295 HIGHESTMODSEQ 18446744073709551615 "
      "MAILBOXID (F6352ae03-b7f5) SIZE 12)");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].folder, "Sent Items");
  EXPECT_EQ(events[0].status->uidvalidity, 4294967295u);
  EXPECT_EQ(events[0].status->uidnext, 2u);
}

TEST(NotifyEventsTest, NamesAsQuotedLiteralAndAtom) {
  EXPECT_EQ(Events("* STATUS \"a \\\"b\\\" \\\\c\" (MESSAGES 1)")[0].folder, "a \"b\" \\c");
  EXPECT_EQ(Events("* STATUS {7}\r\nx (y) z (UIDNEXT 5)")[0].folder, "x (y) z");
  EXPECT_EQ(Events("* STATUS {0}\r\n (UIDNEXT 5)")[0].folder, "");
  EXPECT_EQ(Events("* STATUS Lists]x (UIDNEXT 5)")[0].folder, "Lists]x");  // ']' is an ASTRING-CHAR
  // Modified UTF-7 goes through untouched (as in config).
  EXPECT_EQ(Events("* STATUS &AMQ-pfel/Gr&APw-n (UIDNEXT 5)")[0].folder, "&AMQ-pfel/Gr&APw-n");
  // INBOX is case-insensitive: folded so it matches config's "INBOX".
  EXPECT_EQ(Events("* STATUS inbox (UIDNEXT 5)")[0].folder, "INBOX");
  EXPECT_EQ(Events("* STATUS \"InBox\" (UIDNEXT 5)")[0].folder, "INBOX");
  EXPECT_EQ(Events("* STATUS INBOX.Sub (UIDNEXT 5)")[0].folder, "INBOX.Sub");
  // Case-insensitive keywords, extra spaces inside the list.
  auto e = Events("* status X ( messages 4  uidnext 9 )");
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0].status->messages, 4u);
  EXPECT_EQ(e[0].status->uidnext, 9u);
}

TEST(NotifyEventsTest, ListIsCreatedDeletedOrRenamed) {
  auto created = Events("* LIST () \".\" New");
  ASSERT_EQ(created.size(), 1u);
  EXPECT_EQ(created[0].kind, Kind::kCreated);
  EXPECT_EQ(created[0].folder, "New");
  EXPECT_FALSE(created[0].status.has_value());

  auto deleted = Events("* LIST (\\NonExistent) \".\" W2");
  ASSERT_EQ(deleted.size(), 1u);
  EXPECT_EQ(deleted[0].kind, Kind::kDeleted);
  EXPECT_EQ(deleted[0].folder, "W2");
  EXPECT_EQ(Events("* LIST (\\HasNoChildren \\nonexistent) NIL x")[0].kind, Kind::kDeleted);

  auto renamed = Events("* LIST () \".\" W3 (\"OLDNAME\" (W1))");
  ASSERT_EQ(renamed.size(), 2u);
  EXPECT_EQ(renamed[0].kind, Kind::kDeleted);
  EXPECT_EQ(renamed[0].folder, "W1");
  EXPECT_EQ(renamed[1].kind, Kind::kCreated);
  EXPECT_EQ(renamed[1].folder, "W3");

  auto literal_rename = Events("* LIST () \"/\" {5}\r\nn e w (\"CHILDINFO\" (\"SUBSCRIBED\") oldname ({5}\r\no l d))");
  ASSERT_EQ(literal_rename.size(), 2u);
  EXPECT_EQ(literal_rename[0].folder, "o l d");
  EXPECT_EQ(literal_rename[1].folder, "n e w");
}

TEST(NotifyEventsTest, ListEntryFlagsAndDelimiters) {
  auto entry = ParseList("* LIST (\\Noselect \\HasChildren) \"\\\\\" Parent");
  ASSERT_TRUE(entry.ok());
  ASSERT_TRUE(entry->has_value());
  EXPECT_FALSE((*entry)->Selectable());
  EXPECT_EQ((*entry)->name, "Parent");
  EXPECT_TRUE((*entry)->HasFlag("\\NOSELECT"));
  auto plain = ParseList("* LIST (\\HasNoChildren $Custom) \"/\" \"a/b c\"");
  ASSERT_TRUE(plain.ok() && plain->has_value());
  EXPECT_TRUE((*plain)->Selectable());
  EXPECT_EQ((*plain)->name, "a/b c");
}

TEST(NotifyEventsTest, OtherResponsesGiveNoEvent) {
  for (const char* r :
       {"* OK Still here", "* 3 EXISTS", "* BYE shutting down", "* LSUB () \".\" X", "* STATUSX a (MESSAGES 1)",
        "* LISTING", "* CAPABILITY IMAP4rev1 NOTIFY", "+ idling", "* STATUS", "* ", "*", ""}) {
    auto events = EventsFrom(r);
    ASSERT_TRUE(events.ok()) << r;
    EXPECT_TRUE(events->empty()) << r;
  }
}

TEST(NotifyEventsTest, HostileOrBrokenResponsesAreRefused) {
  for (const char* r : {
           "* STATUS \"unterminated (MESSAGES 1)",
           "* STATUS X (MESSAGES 4294967296)",              // past 32 bits
           "* STATUS X (UIDNEXT 99999999999999999999999)",  // huge
           "* STATUS X (MESSAGES -1)",
           "* STATUS X (MESSAGES)",
           "* STATUS X MESSAGES 1",   // missing parens
           "* STATUS X (MESSAGES 1",  // missing close
           "* STATUS X (MESSAGES 1) trailing",
           "* STATUS (MESSAGES 1)",
           "* STATUS \"bad \\escape\" (MESSAGES 1)",  // only \" and \\ may be escaped
           "* STATUS {99}\r\nshort (MESSAGES 1)",     // literal longer than what came
           "* STATUS {5}short (MESSAGES 1)",          // no CRLF after the size
           "* STATUS {}\r\n (MESSAGES 1)",
           "* STATUS {99999999999999999999}\r\nx (MESSAGES 1)",
           "* STATUS X (FOO ((((((((((((((((((((1)))))))))))))))))))))",  // nested too deep
           "* STATUS X (FOO (1 2)",
           "* LIST \\NonExistent \".\" X",  // flags without parens
           "* LIST () \".\"",               // no name
           "* LIST () \"..\" X",            // delimiter of two chars
           "* LIST () DOT X",
           "* LIST () \".\" X (\"OLDNAME\" W1)",  // OLDNAME value not a list
           "* LIST () \".\" X (\"OLDNAME\" ())",
           "* LIST () \".\" X (\"OLDNAME\"",
           "* LIST (\\) \".\" X",
           "* LIST () \".\" \"a\r\nb\"",  // CRLF inside a quoted string
       }) {
    EXPECT_TRUE(Refused(r)) << r;
  }
  // The error names the response (printable only), bounded.
  auto e = EventsFrom("* STATUS X (MESSAGES \x01" + std::string(500, 'y'));
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.error().message().find("* STATUS X (MESSAGES ?yyy"), std::string::npos);
  EXPECT_LT(e.error().message().size(), 400u);
}

TEST(NotifyEventsTest, QuoteMailboxEscapesOrRefuses) {
  EXPECT_EQ(QuoteMailbox("INBOX").value(), "\"INBOX\"");
  EXPECT_EQ(QuoteMailbox("a \"b\" \\c").value(), "\"a \\\"b\\\" \\\\c\"");
  EXPECT_EQ(QuoteMailbox("").value(), "\"\"");
  EXPECT_EQ(QuoteMailbox("&AMQ-pfel").value(), "\"&AMQ-pfel\"");
  EXPECT_FALSE(QuoteMailbox("a\r\nb").has_value());
  EXPECT_FALSE(QuoteMailbox(std::string("a\0b", 3)).has_value());
  EXPECT_FALSE(QuoteMailbox("Äpfel").has_value());
  EXPECT_EQ(LiteralPlus("Äpfel").value(), "{6+}\r\nÄpfel");
  EXPECT_FALSE(LiteralPlus("a\nb").has_value());
  // What we quote parses back to the same name.
  for (std::string name : {"a \"b\" \\c", "x (y)", "{5}", "INBOX.Sub"}) {
    auto events = Events("* STATUS " + *QuoteMailbox(name) + " (MESSAGES 1)");
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].folder, name);
  }
}

TEST(NotifyEventsTest, TrailingLiteral) {
  EXPECT_EQ(TrailingLiteral("* STATUS {12}").value(), 12u);
  EXPECT_EQ(TrailingLiteral("* LIST () \"/\" {0}").value(), 0u);
  EXPECT_FALSE(TrailingLiteral("* STATUS X (MESSAGES 1)").has_value());
  EXPECT_FALSE(TrailingLiteral("* STATUS {}").has_value());
  EXPECT_FALSE(TrailingLiteral("* STATUS {1x}").has_value());
  EXPECT_FALSE(TrailingLiteral("}").has_value());
  EXPECT_GT(TrailingLiteral("{99999999999999999999999999}").value(), kMaxResponseBytes);  // saturates
}

}  // namespace
}  // namespace mailhook::imap::notify
