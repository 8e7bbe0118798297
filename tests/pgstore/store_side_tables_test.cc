// The store's other table interfaces (post_actions.h, smtp_recipients.h,
// smtp_sent.h, fingerprints.h) over both backends, as store_tables_test.cc
// does for the outbox's: post-actions ready once every target succeeded,
// smtp recipients recorded, read in byte order and pruned with their
// delivery, smtp replies reserved once per message and within a sender's
// limit, fingerprints matched once and moved, two generations kept.
// PostgreSQL-only cases: two dispatchers claiming at once take different
// rows and neither waits (FOR UPDATE SKIP LOCKED); an error text that is not
// UTF-8 is stored with replacement characters; a fingerprint key that is not
// UTF-8 is stored as its digest; recipients keep byte order under an ICU
// collation; a reply reservation waits for another one of the same sender in
// flight, then counts it.

#include "store_tables_backends.h"

namespace mailhook::pgstore {
namespace {

TYPED_TEST_SUITE(StoreTablesTest, Backends, BackendNames);

// ---- post-actions ----

store::PostAction Action(uint32_t uid) { return {"evt_" + std::to_string(uid), "support", "INBOX", 7, uid}; }

TYPED_TEST(StoreTablesTest, APostActionIsReadyOnceEveryTargetOfItsEventSucceeded) {
  auto& o = this->b_.outbox();
  auto& p = this->b_.post_actions();
  MH_ASSERT_OK(o.Add({Item(3), Item(3, "hook:archive"), Item(2)}));
  MH_ASSERT_OK(p.Add({Action(3), Action(2), Action(1)}));
  MH_ASSERT_OK(p.Add({Action(3)}));  // a second one for an event is ignored
  EXPECT_EQ(*p.Count(), 3);
  store::PostAction other = Action(4);
  other.folder = "Archive";
  MH_ASSERT_OK(p.Add({other}));
  // Only UID 1 has no row left; another folder's is not this folder's.
  auto ready = p.Ready("support", "INBOX", 10);
  MH_ASSERT_OK(ready);
  ASSERT_EQ(ready->size(), 1u);
  EXPECT_EQ((*ready)[0].event_id, "evt_1");
  EXPECT_EQ((*ready)[0].uidvalidity, 7u);
  EXPECT_EQ((*ready)[0].uid, 1u);
  // UID 3 waits for both targets; a dead letter holds it too.
  auto due = o.ClaimDue(Clock::now(), 10);
  MH_ASSERT_OK(due);
  for (const auto& d : *due) {
    if (d.item.target == "hook:archive") {
      MH_ASSERT_OK(o.MoveToDeadLetters(d.id, 1, "exit 1"));
    } else {
      MH_ASSERT_OK(o.MarkDelivered(d.id));
    }
  }
  ready = p.Ready("support", "INBOX", 10);
  MH_ASSERT_OK(ready);
  ASSERT_EQ(ready->size(), 2u);  // lowest UID first
  EXPECT_EQ((*ready)[0].uid, 1u);
  EXPECT_EQ((*ready)[1].uid, 2u);
  EXPECT_EQ(p.Ready("support", "INBOX", 1)->size(), 1u);
  EXPECT_EQ(*this->b_.dead_letters().DropAll(), 1);
  EXPECT_EQ(p.Ready("support", "INBOX", 10)->size(), 3u);
  MH_ASSERT_OK(p.Finish("evt_1"));
  MH_ASSERT_OK(p.Finish("evt_1"));
  EXPECT_EQ(*p.Count(), 3);
  EXPECT_EQ(p.Ready("support", "INBOX", 10)->front().uid, 2u);
}

// ---- smtp recipients ----

using RecipientStatus = store::RecipientState::Status;
const store::TimePoint kT0 = store::TimePoint(milliseconds(1'790'000'000'000));

TYPED_TEST(StoreTablesTest, RecipientStatesAreRecordedOverwrittenAndReadInByteOrder) {
  auto& r = this->b_.smtp_recipients();
  MH_ASSERT_OK(r.Record("smtp:desk", "evt_1",
                        {{"desk@example.com", RecipientStatus::kSent, "250 ok", kT0},
                         {"audit@example.com", RecipientStatus::kRefused, "550 5.1.1 no such user", kT0},
                         {"Zed@example.com", RecipientStatus::kSent, "", kT0}}));
  auto rows = r.ForEvent("smtp:desk", "evt_1");
  MH_ASSERT_OK(rows);
  ASSERT_EQ(rows->size(), 3u);
  // Byte order, as SQLite: upper case first. (The test cluster's locale is
  // C; a database in en_US would put Zed last without COLLATE "C".)
  EXPECT_EQ((*rows)[0].recipient, "Zed@example.com");
  EXPECT_EQ((*rows)[1].recipient, "audit@example.com");
  EXPECT_EQ((*rows)[1].status, RecipientStatus::kRefused);
  EXPECT_EQ((*rows)[1].reply, "550 5.1.1 no such user");
  EXPECT_EQ((*rows)[2].status, RecipientStatus::kSent);
  EXPECT_EQ((*rows)[2].at, kT0);
  MH_ASSERT_OK(r.Record("smtp:desk", "evt_1",
                        {{"audit@example.com", RecipientStatus::kSent, "250 2.0.0", kT0 + milliseconds(5)}}));
  rows = r.ForEvent("smtp:desk", "evt_1");
  ASSERT_EQ(rows->size(), 3u);
  EXPECT_EQ((*rows)[1].status, RecipientStatus::kSent);
  EXPECT_EQ((*rows)[1].reply, "250 2.0.0");
  EXPECT_EQ((*rows)[1].at, kT0 + milliseconds(5));
  // Another event or target sees none of them; Forget drops the event's.
  EXPECT_TRUE(r.ForEvent("smtp:desk", "evt_2")->empty());
  EXPECT_TRUE(r.ForEvent("smtp:other", "evt_1")->empty());
  MH_ASSERT_OK(r.Forget("smtp:desk", "evt_1"));
  EXPECT_TRUE(r.ForEvent("smtp:desk", "evt_1")->empty());
}

TYPED_TEST(StoreTablesTest, PruningKeepsTheRecipientsOfPendingDeliveriesAndDeadLetters) {
  auto& o = this->b_.outbox();
  auto& r = this->b_.smtp_recipients();
  MH_ASSERT_OK(o.Add({Item(1, "smtp:desk"), Item(2, "smtp:desk"), Item(3, "smtp:desk")}));
  for (const char* event : {"evt_1", "evt_2", "evt_3", "evt_gone"}) {
    MH_ASSERT_OK(r.Record("smtp:desk", event, {{"desk@example.com", RecipientStatus::kSent, "250 ok", kT0}}));
  }
  MH_ASSERT_OK(r.Record("smtp:other", "evt_3", {{"desk@example.com", RecipientStatus::kSent, "250 ok", kT0}}));
  auto due = o.ClaimDue(Clock::now(), 10);
  MH_ASSERT_OK(due);
  ASSERT_EQ(due->size(), 3u);
  for (const auto& d : *due) {
    if (d.item.event_id == "evt_1") MH_ASSERT_OK(o.MarkDelivered(d.id));
    if (d.item.event_id == "evt_2") MH_ASSERT_OK(o.MoveToDeadLetters(d.id, 5, "retries exhausted"));
  }
  MH_ASSERT_OK(r.PruneEnded());
  EXPECT_TRUE(r.ForEvent("smtp:desk", "evt_1")->empty());     // delivered: ended
  EXPECT_TRUE(r.ForEvent("smtp:desk", "evt_gone")->empty());  // no row anywhere
  EXPECT_TRUE(r.ForEvent("smtp:other", "evt_3")->empty());    // the event's row is another target's
  EXPECT_EQ(r.ForEvent("smtp:desk", "evt_2")->size(), 1u);    // a replay must skip desk
  EXPECT_EQ(r.ForEvent("smtp:desk", "evt_3")->size(), 1u);    // still in the outbox
}

// ---- smtp replies ----

using store::ReplyReservation;
using namespace std::chrono_literals;

store::SentReply Reply(const std::string& event, const std::string& sender, const std::string& message_id,
                       store::TimePoint at) {
  return store::SentReply{"smtp:ack", sender, message_id, event, at};
}

// The reservation's decision, or kRateLimited after a failure (reported).
ReplyReservation Reserve(store::SmtpSent& sent, const store::SentReply& reply, store::ReplyLimit limit = {}) {
  auto r = sent.ReserveReply(reply, limit);
  if (!r) {
    ADD_FAILURE() << r.error().ToString();
    return ReplyReservation::kRateLimited;
  }
  return *r;
}

TYPED_TEST(StoreTablesTest, AMessageIsAnsweredOnceButARetryOfTheSameEventPasses) {
  auto& sent = this->b_.smtp_sent();
  EXPECT_EQ(Reserve(sent, Reply("evt_1", "ann@example.org", "<m1@x>", kT0)), ReplyReservation::kReserved);
  EXPECT_EQ(Reserve(sent, Reply("evt_1", "ann@example.org", "<m1@x>", kT0 + 5min)), ReplyReservation::kReserved);
  EXPECT_EQ(*sent.SentSince("smtp:ack", "ann@example.org", kT0 - 1ms), 1);
  EXPECT_EQ(Reserve(sent, Reply("evt_2", "ann@example.org", "<m1@x>", kT0 + 48h), {10, 24h}),
            ReplyReservation::kAlreadyAnswered);
  EXPECT_TRUE(*sent.AlreadyAnswered("smtp:ack", "<m1@x>"));
  EXPECT_FALSE(*sent.AlreadyAnswered("smtp:ack", "<m2@x>"));
  EXPECT_FALSE(*sent.AlreadyAnswered("smtp:ack", ""));
  // Another target answers the same message on its own.
  auto other = sent.ReserveReply({"smtp:other", "ann@example.org", "<m1@x>", "evt_2", kT0}, {});
  MH_ASSERT_OK(other);
  EXPECT_EQ(*other, ReplyReservation::kReserved);
  // Messages without a Message-ID are never "answered" by that alone.
  EXPECT_EQ(Reserve(sent, Reply("evt_3", "bob@example.org", "", kT0), {10, 24h}), ReplyReservation::kReserved);
  EXPECT_EQ(Reserve(sent, Reply("evt_4", "bob@example.org", "", kT0), {10, 24h}), ReplyReservation::kReserved);
}

TYPED_TEST(StoreTablesTest, TheReplyLimitCountsPerSenderCaseInsensitivelyWithinTheWindow) {
  auto& sent = this->b_.smtp_sent();
  store::ReplyLimit two{2, 24h};
  EXPECT_EQ(Reserve(sent, Reply("evt_1", "Ann@Example.org", "<1@x>", kT0), two), ReplyReservation::kReserved);
  EXPECT_EQ(Reserve(sent, Reply("evt_2", "ann@example.ORG", "<2@x>", kT0 + 1h), two), ReplyReservation::kReserved);
  EXPECT_EQ(Reserve(sent, Reply("evt_3", "ANN@example.org", "<3@x>", kT0 + 2h), two), ReplyReservation::kRateLimited);
  EXPECT_EQ(*sent.SentSince("smtp:ack", "ann@example.org", kT0 - 1ms), 2);
  EXPECT_EQ(Reserve(sent, Reply("evt_4", "bob@example.org", "<4@x>", kT0 + 2h), two), ReplyReservation::kReserved);
  // At the window's end the first reply has left it (one ms before, not).
  EXPECT_EQ(Reserve(sent, Reply("evt_5", "ann@example.org", "<5@x>", kT0 + 24h - 1ms), two),
            ReplyReservation::kRateLimited);
  EXPECT_EQ(Reserve(sent, Reply("evt_5", "ann@example.org", "<5@x>", kT0 + 24h), two), ReplyReservation::kReserved);
  EXPECT_EQ(*sent.SentSince("smtp:ack", "ann@example.org", kT0), 2);  // strictly after
}

TYPED_TEST(StoreTablesTest, AReleasedReplyNeitherCountsNorMarksAndPruningForgetsOlderRows) {
  auto& sent = this->b_.smtp_sent();
  ASSERT_EQ(Reserve(sent, Reply("evt_1", "ann@example.org", "<1@x>", kT0)), ReplyReservation::kReserved);
  MH_ASSERT_OK(sent.ReleaseReply("smtp:ack", "evt_1"));
  EXPECT_FALSE(*sent.AlreadyAnswered("smtp:ack", "<1@x>"));
  EXPECT_EQ(Reserve(sent, Reply("evt_2", "ann@example.org", "<2@x>", kT0 + 1min)), ReplyReservation::kReserved);
  MH_EXPECT_OK(sent.ReleaseReply("smtp:ack", "evt_none"));
  MH_ASSERT_OK(sent.RecordSent(Reply("evt_3", "Bob@example.org", "<3@x>", kT0 + 1h)));
  MH_ASSERT_OK(sent.RecordSent(Reply("evt_3", "bob@example.org", "<3@x>", kT0 + 2h)));  // ignored
  EXPECT_EQ(*sent.SentSince("smtp:ack", "BOB@example.org", kT0), 1);
  MH_ASSERT_OK(sent.PruneSentBefore(kT0 + 1h));
  EXPECT_FALSE(*sent.AlreadyAnswered("smtp:ack", "<2@x>"));
  EXPECT_TRUE(*sent.AlreadyAnswered("smtp:ack", "<3@x>"));
}

// ---- fingerprints ----

store::Fingerprint Fp(uint32_t uidvalidity, uint32_t uid, const std::string& key, uint64_t size) {
  return store::Fingerprint{uidvalidity, uid, key, size};
}

TYPED_TEST(StoreTablesTest, AFingerprintClaimMatchesKeyAndSizeOnceAndMovesTheRowToTheNewUid) {
  auto& f = this->b_.fingerprints();
  MH_ASSERT_OK(
      f.Add("support", "INBOX",
            {Fp(7, 1, "<a@x>", 100), Fp(7, 2, "<same@x>", 200), Fp(7, 3, "sha256:ab", 300), Fp(7, 4, "<dup@x>", 50)}));
  MH_ASSERT_OK(f.Add("support", "INBOX", {Fp(7, 1, "<changed@x>", 1)}));  // a replay changes nothing
  MH_ASSERT_OK(f.Add("other", "INBOX", {Fp(7, 9, "<b@x>", 10)}));
  EXPECT_EQ(f.List("support", "INBOX", 7)->front(), Fp(7, 1, "<a@x>", 100));
  EXPECT_EQ(*f.Count("support", "INBOX"), 4);
  // a's copy (new UID), a message sharing <same@x> with another size, the
  // header-hash one, two copies of <dup@x> (one was handled), another
  // account's Message-ID.
  std::vector<store::Fingerprint> now = {
      Fp(8, 10, "<a@x>", 100),  Fp(8, 11, "<same@x>", 201), Fp(8, 12, "sha256:ab", 300), Fp(8, 13, "<dup@x>", 50),
      Fp(8, 14, "<dup@x>", 50), Fp(8, 15, "<b@x>", 10),     Fp(8, 16, "<same@x>", 200)};
  auto missed = f.Claim("support", "INBOX", now);
  MH_ASSERT_OK(missed);
  EXPECT_EQ(*missed, (std::vector<uint32_t>{11, 14, 15}));
  EXPECT_EQ(*f.List("support", "INBOX", 7), std::vector<store::Fingerprint>{});
  EXPECT_EQ(*f.List("support", "INBOX", 8),
            (std::vector<store::Fingerprint>{Fp(8, 10, "<a@x>", 100), Fp(8, 12, "sha256:ab", 300),
                                             Fp(8, 13, "<dup@x>", 50), Fp(8, 16, "<same@x>", 200)}));
  // Matching again finds the claimed rows where they are now.
  missed = f.Claim("support", "INBOX", now);
  MH_ASSERT_OK(missed);
  EXPECT_EQ(*missed, (std::vector<uint32_t>{11, 14, 15}));
  EXPECT_FALSE(*f.HasOther("support", "INBOX", 8));
  EXPECT_TRUE(*f.HasOther("other", "INBOX", 8));
  EXPECT_FALSE(*f.HasOther("other", "INBOX", 7));
  EXPECT_FALSE(*f.HasOther("nobody", "INBOX", 7));
}

TYPED_TEST(StoreTablesTest, OnlyTwoFingerprintGenerationsAreKeptAndAbsentMessagesAreForgotten) {
  auto& f = this->b_.fingerprints();
  MH_ASSERT_OK(f.Add("support", "INBOX", {Fp(5, 1, "<a>", 1), Fp(6, 1, "<b>", 1), Fp(7, 1, "<c>", 1)}));
  MH_ASSERT_OK(f.Add("support", "Archive", {Fp(5, 1, "<a>", 1)}));
  EXPECT_TRUE(*f.HasOther("support", "INBOX", 7));
  MH_ASSERT_OK(f.KeepGenerations("support", "INBOX", 6, 7));
  EXPECT_EQ(*f.Count("support", "INBOX"), 2);
  EXPECT_EQ(*f.Count("support", "Archive"), 1);  // another folder's are its own
  EXPECT_EQ(f.List("support", "INBOX", 5)->size(), 0u);
  MH_ASSERT_OK(f.Add("support", "INBOX", {Fp(7, 2, "<d>", 1), Fp(7, 3, "<e>", 1), Fp(7, 9, "<f>", 1)}));
  const std::vector<uint32_t> present = {1, 3};
  MH_ASSERT_OK(f.ForgetAbsent("support", "INBOX", 7, 1, 5, present));
  auto rows = f.List("support", "INBOX", 7);
  MH_ASSERT_OK(rows);
  std::vector<uint32_t> left;
  for (const store::Fingerprint& fp : *rows) left.push_back(fp.uid);
  EXPECT_EQ(left, (std::vector<uint32_t>{1, 3, 9}));     // 9 is outside the window
  EXPECT_EQ(f.List("support", "INBOX", 6)->size(), 1u);  // another UIDVALIDITY is untouched
}

// ---- PostgreSQL only: a shared outbox ----

// Two dispatchers (two connections, as two replicas) claim at once: the
// second one skips the rows the first has locked in its open claim instead
// of waiting for them (it would wait out statement_timeout, 30 s), and no
// row is claimed twice. The first claim also locks the row it peeked at to
// tell `more` (not leased): claimable again once that claim commits.
TEST(PgOutboxTest, TwoDispatchersClaimingAtOnceTakeDifferentRowsWithoutWaiting) {
  if (std::string why = PgBackend::WhyCannotRun(); !why.empty()) GTEST_SKIP() << why;
  PgBackend first;
  MH_ASSERT_OK(first.Open());
  MH_ASSERT_OK(first.outbox().Add({Item(1), Item(2), Item(3), Item(4)}));
  MH_ASSERT_OK_AND_ASSIGN(auto conn, first.Connect());
  PgBodies bodies(*conn);
  PgOutbox second(*conn, bodies, "00000000-0000-4000-8000-000000000002");
  const auto now = Clock::now();
  std::vector<store::Delivery> by_first;
  std::vector<store::Delivery> by_second;
  auto claim_both = [&]() -> util::Status {
    auto rows = first.outbox().ClaimDue(now, 1);
    if (!rows) return rows.error();
    by_first = std::move(*rows);
    const auto started = std::chrono::steady_clock::now();
    auto others = second.ClaimDue(now, 10);
    if (!others) return others.error();
    by_second = std::move(*others);
    EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(5)) << "the second claim waited";
    return util::Ok();
  };
  // The first claim joins this transaction: its locks last until the end.
  MH_ASSERT_OK(first.connection().InTransaction(claim_both));
  ASSERT_EQ(by_first.size(), 1u);
  EXPECT_EQ(by_first[0].item.event_id, "evt_1");
  ASSERT_EQ(by_second.size(), 2u);
  EXPECT_EQ(by_second[0].item.event_id, "evt_3");
  EXPECT_EQ(by_second[1].item.event_id, "evt_4");
  // Committed: the peeked row is free, the leased ones are not.
  auto peeked = second.ClaimDue(now, 10);
  MH_ASSERT_OK(peeked);
  ASSERT_EQ(peeked->size(), 1u);
  EXPECT_EQ((*peeked)[0].item.event_id, "evt_2");
  EXPECT_TRUE(second.ClaimDue(now, 10)->empty());
  // The second's leases name it: giving back all of its own leaves the first's.
  MH_ASSERT_OK(second.ReleaseAllLeases());
  auto again = second.ClaimDue(now, 10);
  MH_ASSERT_OK(again);
  std::set<std::string> events;
  for (const auto& d : *again) events.insert(d.item.event_id);
  EXPECT_EQ(events, (std::set<std::string>{"evt_2", "evt_3", "evt_4"}));
}

// An error text is not always UTF-8 (a hook's stderr in Latin-1): SQLite
// stored its bytes; PostgreSQL text refuses them, so the PostgreSQL tables
// store it with U+FFFD for each bad byte instead of failing the retry.
TEST(PgOutboxTest, AnErrorTextThatIsNotUtf8IsStoredWithReplacements) {
  if (std::string why = PgBackend::WhyCannotRun(); !why.empty()) GTEST_SKIP() << why;
  PgBackend pg;
  MH_ASSERT_OK(pg.Open());
  MH_ASSERT_OK(pg.outbox().Add({Item(1), Item(2)}));
  const std::string latin1 = "hook:x: exit code 1; caf\xe9";
  const std::string replaced = "hook:x: exit code 1; caf\xEF\xBF\xBD";
  const auto now = Clock::now();
  auto due = pg.outbox().ClaimDue(now, 2);
  MH_ASSERT_OK(due);
  ASSERT_EQ(due->size(), 2u);
  MH_ASSERT_OK(pg.outbox().ScheduleRetry((*due)[0].id, 1, now, latin1));
  MH_ASSERT_OK(pg.outbox().MoveToDeadLetters((*due)[1].id, 1, latin1));
  EXPECT_EQ(pg.outbox().ListPending()->at(0).last_error, replaced);
  EXPECT_EQ(pg.dead_letters().List()->at(0).last_error, replaced);
  MH_ASSERT_OK(pg.attempts().Begin("support", "INBOX", 7, std::array<uint32_t, 1>{1}));
  MH_ASSERT_OK(pg.attempts().RecordFailure("support", "INBOX", 1, "hook.failed", latin1, false));
  EXPECT_EQ(pg.attempts().List("support", "INBOX", 7)->at(0).last_error, replaced);
}

// A raw 8-bit Message-ID (not UTF-8) is recorded and matched by a digest of
// its bytes (once: a second copy finds the row taken).
TEST(PgFingerprintsTest, AKeyThatIsNotUtf8IsRecordedAndMatched) {
  if (std::string why = PgBackend::WhyCannotRun(); !why.empty()) GTEST_SKIP() << why;
  PgBackend pg;
  MH_ASSERT_OK(pg.Open());
  MH_ASSERT_OK(pg.fingerprints().Add("support", "INBOX", {Fp(7, 1, "<caf\xe9@x>", 5)}));
  auto missed = pg.fingerprints().Claim("support", "INBOX", {Fp(8, 2, "<caf\xe9@x>", 5), Fp(8, 3, "<caf\xe9@x>", 5)});
  MH_ASSERT_OK(missed);
  EXPECT_EQ(*missed, std::vector<uint32_t>{3});
  EXPECT_EQ(pg.fingerprints().List("support", "INBOX", 8)->at(0).key,
            "sha256:ddafac5125aeecc67dfe0f09ac4d432b31813b54f148d2ab8c280ac9b28ec8fb");  // of "<caf\xe9@x>"
}

// Two raw 8-bit Message-IDs differing in one invalid byte are two messages:
// a lossy repair (U+FFFD for each) would match the new one to the old one's
// fingerprint and take it for handled (lost).
TEST(PgFingerprintsTest, KeysDifferingOnlyInAnInvalidByteDoNotMatch) {
  if (std::string why = PgBackend::WhyCannotRun(); !why.empty()) GTEST_SKIP() << why;
  PgBackend pg;
  MH_ASSERT_OK(pg.Open());
  MH_ASSERT_OK(pg.fingerprints().Add("support", "INBOX", {Fp(7, 1, "<caf\xe9@x>", 5)}));
  auto missed = pg.fingerprints().Claim("support", "INBOX", {Fp(8, 2, "<caf\xe8@x>", 5)});
  MH_ASSERT_OK(missed);
  EXPECT_EQ(*missed, std::vector<uint32_t>{2}) << "a different message matched";
}

// Recipients come back in byte order (as SQLite's BINARY) even where the
// column's collation is not C: the cases above run on a C-locale cluster,
// where any order by the column's collation is byte order too. ICU's root
// collation ("und-x-icu", in PostgreSQL built with ICU) would put Zed last.
TEST(PgSmtpRecipientsTest, ByteOrderHoldsUnderANonCCollation) {
  if (std::string why = PgBackend::WhyCannotRun(); !why.empty()) GTEST_SKIP() << why;
  PgBackend pg;
  MH_ASSERT_OK(pg.Open());
  MH_ASSERT_OK(pg.connection().Prepare("test.icu", "SELECT count(*) FROM pg_collation WHERE collname = 'und-x-icu'"));
  auto icu = pg.connection().Exec("test.icu");
  MH_ASSERT_OK(icu);
  if (*icu->Int64(0, 0) == 0) GTEST_SKIP() << "this PostgreSQL has no ICU collation und-x-icu";
  MH_ASSERT_OK(
      pg.connection().Run("ALTER TABLE smtp_recipients ALTER COLUMN recipient TYPE text COLLATE \"und-x-icu\""));
  MH_ASSERT_OK(pg.smtp_recipients().Record("smtp:desk", "evt_1",
                                           {{"desk@example.com", RecipientStatus::kSent, "", kT0},
                                            {"audit@example.com", RecipientStatus::kSent, "", kT0},
                                            {"Zed@example.com", RecipientStatus::kSent, "", kT0}}));
  auto rows = pg.smtp_recipients().ForEvent("smtp:desk", "evt_1");
  MH_ASSERT_OK(rows);
  ASSERT_EQ(rows->size(), 3u);
  EXPECT_EQ((*rows)[0].recipient, "Zed@example.com");
  EXPECT_EQ((*rows)[1].recipient, "audit@example.com");
  EXPECT_EQ((*rows)[2].recipient, "desk@example.com");
}

// Two replicas reserve a reply to the same sender at once: the second waits
// (seen in pg_stat_activity) for the first's transaction, then counts its
// reply and is refused; without the lock both would pass a limit of one.
TEST(PgSmtpSentTest, ReservationsOfOneSenderAreSerialised) {
  if (std::string why = PgBackend::WhyCannotRun(); !why.empty()) GTEST_SKIP() << why;
  PgBackend first;
  MH_ASSERT_OK(first.Open());
  MH_ASSERT_OK_AND_ASSIGN(auto conn, first.Connect());
  MH_ASSERT_OK_AND_ASSIGN(auto watcher, first.Connect());
  MH_ASSERT_OK(
      watcher->Prepare("waiting", "SELECT count(*) FROM pg_stat_activity WHERE pid = $1 AND wait_event_type = 'Lock'"));
  PgSmtpSent second(*conn);
  const int second_pid = conn->backend_pid();
  const store::ReplyLimit one{1, 24h};
  util::Result<ReplyReservation> second_result = ReplyReservation::kReserved;
  std::thread other;
  bool waited = false;
  // The first reservation's transaction stays open while the second starts.
  MH_EXPECT_OK(first.connection().InTransaction([&]() -> util::Status {
    EXPECT_EQ(Reserve(first.smtp_sent(), Reply("evt_1", "ann@example.org", "<1@x>", kT0), one),
              ReplyReservation::kReserved);
    other =
        std::thread([&] { second_result = second.ReserveReply(Reply("evt_2", "Ann@example.org", "<2@x>", kT0), one); });
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!waited && std::chrono::steady_clock::now() < deadline) {
      auto rows = watcher->Exec("waiting", {second_pid});
      waited = rows.ok() && rows->Int64(0, 0).ok() && *rows->Int64(0, 0) == 1;
      if (!waited) std::this_thread::sleep_for(milliseconds(10));
    }
    return util::Ok();  // the commit lets the second go on
  }));
  if (other.joinable()) other.join();
  EXPECT_TRUE(waited) << "the second reservation did not wait for the first";
  MH_ASSERT_OK(second_result);
  EXPECT_EQ(*second_result, ReplyReservation::kRateLimited);
  EXPECT_EQ(*second.SentSince("smtp:ack", "ann@example.org", kT0 - 1ms), 1);
}

}  // namespace
}  // namespace mailhook::pgstore
