// The store's table interfaces (store/watermarks.h, attempts.h, outbox.h,
// dead_letters.h, bodies.h) behave the same over both backends: each case
// runs over the SQLite classes (a fresh state dir) and over the PostgreSQL
// classes of src/pgstore (store_tables_backends.h). The cases are the table
// behaviours tests/store/store_test.cc checks on SQLite: watermark get/set
// and fingerprint floor, attempts counted and forgotten, a replayed add
// skipped (outbox, dead letters, delivered markers), claim with lease, room
// and more, delivered markers recorded in the claim, retries, dead letters
// replayed and dropped, payloads inline or in bodies. The other tables are
// in store_side_tables_test.cc.

#include "store_tables_backends.h"

namespace mailhook::pgstore {
namespace {

TYPED_TEST_SUITE(StoreTablesTest, Backends, BackendNames);

// ---- watermarks ----

TYPED_TEST(StoreTablesTest, WatermarkRoundTripPerFolder) {
  auto& w = this->b_.watermarks();
  auto none = w.Get("support", "INBOX");
  MH_ASSERT_OK(none);
  EXPECT_FALSE(none->has_value());
  MH_ASSERT_OK(w.Set("support", "INBOX", {7, 42}));
  MH_ASSERT_OK(w.Set("support", "Archive", {9, 3}));
  // UIDVALIDITY and UIDs are unsigned 32-bit: the largest survives.
  MH_ASSERT_OK(w.Set("sales", "INBOX", {4294967295u, 4294967294u}));
  EXPECT_EQ(w.Get("support", "INBOX")->value(), (Watermark{7, 42}));
  EXPECT_EQ(w.Get("support", "Archive")->value(), (Watermark{9, 3}));
  EXPECT_EQ(w.Get("sales", "INBOX")->value(), (Watermark{4294967295u, 4294967294u}));
  MH_ASSERT_OK(w.Set("support", "INBOX", {8, 1}));  // replaced, also backwards (a new UIDVALIDITY)
  EXPECT_EQ(w.Get("support", "INBOX")->value(), (Watermark{8, 1}));
  EXPECT_FALSE(w.Get("support", "Sent")->has_value());
}

TYPED_TEST(StoreTablesTest, AFirstWatermarkIsUncoveredUpToItAndAReplacedOneKeepsItsFloor) {
  auto& w = this->b_.watermarks();
  EXPECT_EQ(*w.FingerprintFloor("support", "INBOX"), 0u);  // never seen
  MH_ASSERT_OK(w.Set("support", "INBOX", {7, 30}));        // a baseline
  EXPECT_EQ(*w.FingerprintFloor("support", "INBOX"), 30u);
  MH_ASSERT_OK(w.SetFingerprintFloor("support", "INBOX", 0));
  MH_ASSERT_OK(w.Set("support", "INBOX", {7, 35}));
  MH_ASSERT_OK(w.Set("support", "INBOX", {9, 3}));
  EXPECT_EQ(*w.FingerprintFloor("support", "INBOX"), 0u);
  MH_ASSERT_OK(w.SetFingerprintFloor("support", "INBOX", 2));
  EXPECT_EQ(*w.FingerprintFloor("support", "INBOX"), 2u);
  // The floor of a folder without a watermark is not set (nothing to update).
  MH_ASSERT_OK(w.SetFingerprintFloor("support", "Sent", 5));
  EXPECT_EQ(*w.FingerprintFloor("support", "Sent"), 0u);
}

// ---- attempts ----

TYPED_TEST(StoreTablesTest, AttemptsAreCountedMarkedAndForgotten) {
  auto& a = this->b_.attempts();
  const std::array<uint32_t, 3> batch{10, 11, 12};
  MH_ASSERT_OK(a.Begin("support", "INBOX", 7, batch));
  const std::array<uint32_t, 1> alone{11};
  MH_ASSERT_OK(a.Begin("support", "INBOX", 7, alone));
  MH_ASSERT_OK(a.RecordFailure("support", "INBOX", 11, "imap.response_too_large", "too big", false));
  auto list = a.List("support", "INBOX", 7);
  MH_ASSERT_OK(list);
  ASSERT_EQ(list->size(), 3u);
  // The batch marked all three without counting; UID 11 alone counted once.
  EXPECT_EQ((*list)[1].uid, 11u);
  EXPECT_EQ((*list)[1].count, 1);
  EXPECT_EQ((*list)[1].last_code, "imap.response_too_large");
  EXPECT_EQ((*list)[1].last_error, "too big");
  EXPECT_EQ((*list)[0].count, 0);
  EXPECT_EQ((*list)[0].last_error, "");
  // A failure known to be one message's, inside a batch, counts for it.
  MH_ASSERT_OK(a.RecordFailure("support", "INBOX", 12, "x", "y", true));
  EXPECT_EQ((*a.List("support", "INBOX", 7))[2].count, 1);
  // Another UIDVALIDITY, account or folder sees none.
  EXPECT_TRUE(a.List("support", "INBOX", 8)->empty());
  EXPECT_TRUE(a.List("support", "Archive", 7)->empty());
  EXPECT_TRUE(a.List("sales", "INBOX", 7)->empty());
  // A refund takes one back, never below 0.
  const std::array<uint32_t, 2> refund{10, 11};
  MH_ASSERT_OK(a.Refund("support", "INBOX", refund));
  list = a.List("support", "INBOX", 7);
  EXPECT_EQ((*list)[0].count, 0);
  EXPECT_EQ((*list)[1].count, 0);

  // Forget drops the UIDs made durable; ForgetBelow those at or below the
  // mark and those of another UIDVALIDITY.
  MH_ASSERT_OK(a.Forget("support", "INBOX", std::array<uint32_t, 1>{10}));
  EXPECT_EQ(a.List("support", "INBOX", 7)->size(), 2u);
  MH_ASSERT_OK(a.ForgetBelow("support", "INBOX", Watermark{7, 11}));
  list = a.List("support", "INBOX", 7);
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].uid, 12u);
  MH_ASSERT_OK(a.ForgetBelow("support", "INBOX", Watermark{8, 0}));
  EXPECT_TRUE(a.List("support", "INBOX", 7)->empty());
}

TYPED_TEST(StoreTablesTest, ANewUidValidityStartsTheCountAgain) {
  auto& a = this->b_.attempts();
  const std::array<uint32_t, 1> uid{5};
  MH_ASSERT_OK(a.Begin("support", "INBOX", 7, uid));
  MH_ASSERT_OK(a.Begin("support", "INBOX", 7, uid));
  MH_ASSERT_OK(a.RecordFailure("support", "INBOX", 5, "x", "y", false));
  EXPECT_EQ((*a.List("support", "INBOX", 7))[0].count, 2);
  MH_ASSERT_OK(a.Begin("support", "INBOX", 9, uid));
  auto list = a.List("support", "INBOX", 9);
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].count, 1);
  EXPECT_EQ((*list)[0].last_code, "");
  EXPECT_EQ((*list)[0].last_error, "");
  EXPECT_TRUE(a.List("support", "INBOX", 7)->empty());
}

TYPED_TEST(StoreTablesTest, ALongFailureMessageIsCutToItsFirst500Bytes) {
  auto& a = this->b_.attempts();
  MH_ASSERT_OK(a.Begin("support", "INBOX", 7, std::array<uint32_t, 1>{1}));
  MH_ASSERT_OK(a.RecordFailure("support", "INBOX", 1, "x", std::string(499, 'a') + "bc", false));
  EXPECT_EQ((*a.List("support", "INBOX", 7))[0].last_error, std::string(499, 'a') + "b");
}

// ---- outbox ----

TYPED_TEST(StoreTablesTest, AReplayedAddCreatesNoSecondRow) {
  auto& o = this->b_.outbox();
  MH_ASSERT_OK(o.Add({Item(1)}));
  MH_ASSERT_OK(o.Add({Item(1)}));
  EXPECT_EQ(*o.PendingCount(), 1);

  // Once delivered, a replay still must not deliver again.
  auto claimed = o.ClaimDue(Clock::now(), 10);
  MH_ASSERT_OK(claimed);
  ASSERT_EQ(claimed->size(), 1u);
  MH_ASSERT_OK(o.MarkDelivered((*claimed)[0].id));
  MH_ASSERT_OK(o.Add({Item(1)}));
  EXPECT_EQ(*o.PendingCount(), 0);
  EXPECT_TRUE(*o.AllDelivered("evt_1"));

  // Same for a dead letter.
  MH_ASSERT_OK(o.Add({Item(2)}));
  auto c2 = o.ClaimDue(Clock::now(), 10);
  MH_ASSERT_OK(c2);
  ASSERT_EQ(c2->size(), 1u);
  MH_ASSERT_OK(o.MoveToDeadLetters((*c2)[0].id, 1, "HTTP 400"));
  MH_ASSERT_OK(o.Add({Item(2)}));
  EXPECT_EQ(*o.PendingCount(), 0);
  EXPECT_EQ(*this->b_.dead_letters().Count(), 1);
  EXPECT_FALSE(*o.AllDelivered("evt_2"));

  // A different target of the same event is a different row.
  MH_ASSERT_OK(o.Add({Item(2, "hook:archive")}));
  EXPECT_EQ(*o.PendingCount(), 1);
  EXPECT_FALSE(*o.AllDelivered("evt_2"));

  // Pruning forgets only markers older than its time: a replay is still
  // skipped within the dedupe window, added past it.
  MH_ASSERT_OK(o.PruneDelivered(Clock::now() - std::chrono::hours(1)));
  MH_ASSERT_OK(o.Add({Item(1)}));
  EXPECT_EQ(*o.PendingCount(), 1);
  MH_ASSERT_OK(o.PruneDelivered(Clock::now() + std::chrono::hours(1)));
  MH_ASSERT_OK(o.Add({Item(1)}));
  EXPECT_EQ(*o.PendingCount(), 2);
}

TYPED_TEST(StoreTablesTest, ClaimLeasesRowsAndRetryReschedules) {
  auto& o = this->b_.outbox();
  MH_ASSERT_OK(o.Add({Item(1), Item(2)}));
  auto now = Clock::now();
  auto first = o.ClaimDue(now, 1);
  MH_ASSERT_OK(first);
  ASSERT_EQ(first->size(), 1u);
  EXPECT_EQ((*first)[0].item.event_id, "evt_1");  // oldest first
  auto second = o.ClaimDue(now, 10);
  MH_ASSERT_OK(second);
  ASSERT_EQ(second->size(), 1u);  // evt_1 is leased
  EXPECT_EQ((*second)[0].item.event_id, "evt_2");
  EXPECT_TRUE(o.ClaimDue(now, 10)->empty());
  // Both are leased for 15 minutes: the next claimable row is then.
  auto leased = o.NextDueAt();
  MH_ASSERT_OK(leased);
  ASSERT_TRUE(leased->has_value());
  EXPECT_EQ(std::chrono::duration_cast<milliseconds>(**leased - (now + std::chrono::minutes(15))).count(), 0);
  // A lease that ended frees its row.
  EXPECT_EQ(o.ClaimDue(now + std::chrono::minutes(16), 10)->size(), 2u);

  auto later = now + std::chrono::minutes(30);
  MH_ASSERT_OK(o.ScheduleRetry((*first)[0].id, 1, later, "HTTP 503"));
  MH_ASSERT_OK(o.ScheduleRetry((*second)[0].id, 1, later + std::chrono::minutes(5), "HTTP 503"));
  auto next = o.NextDueAt();
  MH_ASSERT_OK(next);
  ASSERT_TRUE(next->has_value());
  EXPECT_EQ(std::chrono::duration_cast<milliseconds>(**next - later).count(), 0);
  EXPECT_TRUE(o.ClaimDue(now, 10)->empty());
  auto again = o.ClaimDue(later, 10);
  MH_ASSERT_OK(again);
  ASSERT_EQ(again->size(), 1u);
  EXPECT_EQ((*again)[0].attempts, 1);
  EXPECT_EQ((*again)[0].last_error, "HTTP 503");
  EXPECT_EQ(std::chrono::duration_cast<milliseconds>((*again)[0].next_attempt_at - later).count(), 0);

  // A released lease is claimable again at once; ReleaseAllLeases frees everything.
  MH_ASSERT_OK(o.ReleaseLease((*again)[0].id));
  EXPECT_EQ(o.ClaimDue(later, 10)->size(), 1u);
  const auto after_both = later + std::chrono::minutes(5);
  EXPECT_EQ(o.ClaimDue(after_both, 10)->size(), 1u);
  MH_ASSERT_OK(o.ReleaseAllLeases());
  EXPECT_EQ(o.ClaimDue(after_both, 10)->size(), 2u);
}

TYPED_TEST(StoreTablesTest, SkippedTargetsAreNeitherClaimedNorAwaited) {
  auto& o = this->b_.outbox();
  MH_ASSERT_OK(o.Add({Item(1, "webhook:a"), Item(2, "webhook:b"), Item(3, "webhook:a, b")}));
  const auto now = Clock::now();
  const std::vector<std::string> skip = {"webhook:a", "webhook:a, b"};
  MH_ASSERT_OK(o.ScheduleRetry(o.ListPending()->at(1).id, 1, now + std::chrono::hours(1), "503"));
  // Only b's row, due in an hour, is left to wait for.
  auto next = o.NextDueAt(skip);
  MH_ASSERT_OK(next);
  ASSERT_TRUE(next->has_value());
  EXPECT_EQ(std::chrono::duration_cast<milliseconds>(**next - (now + std::chrono::hours(1))).count(), 0);
  EXPECT_TRUE(o.ClaimDue(now, 10, std::chrono::minutes(1), skip)->empty());
  auto b = o.ClaimDue(now + std::chrono::hours(1), 10, std::chrono::minutes(1), skip);
  MH_ASSERT_OK(b);
  ASSERT_EQ(b->size(), 1u);
  EXPECT_EQ((*b)[0].item.target, "webhook:b");
  // Every target skipped: nothing to wait for.
  EXPECT_FALSE(o.NextDueAt({"webhook:a", "webhook:b", "webhook:a, b"})->has_value());
}

TYPED_TEST(StoreTablesTest, AClaimRecordsTheDeliveredRowsAndClaimsTheNext) {
  auto& o = this->b_.outbox();
  MH_ASSERT_OK(o.Add({Item(1), Item(2), Item(3)}));
  auto now = Clock::now();
  store::ClaimRequest request;
  request.now = now;
  request.limit = 2;
  auto first = o.Claim(request);
  MH_ASSERT_OK(first);
  ASSERT_EQ(first->rows.size(), 2u);
  EXPECT_TRUE(first->more);  // a third is due: the dispatcher wakes another worker

  request.limit = 5;
  request.delivered = {first->rows[0].id, first->rows[1].id};
  auto next = o.Claim(request);
  MH_ASSERT_OK(next);
  ASSERT_EQ(next->rows.size(), 1u);
  EXPECT_FALSE(next->more);
  EXPECT_EQ(next->rows[0].item.event_id, "evt_3");
  // The two are gone and remembered: a replay of their commit adds nothing.
  EXPECT_EQ(*o.PendingCount(), 1);
  MH_ASSERT_OK(o.Add({Item(1), Item(2)}));
  EXPECT_EQ(*o.PendingCount(), 1);
  EXPECT_TRUE(*o.AllDelivered("evt_1"));
  EXPECT_FALSE(*o.AllDelivered("evt_3"));

  // Only recording (limit 0) claims nothing.
  request.limit = 0;
  request.delivered = {next->rows[0].id};
  auto recorded = o.Claim(request);
  MH_ASSERT_OK(recorded);
  EXPECT_TRUE(recorded->rows.empty());
  EXPECT_EQ(*o.PendingCount(), 0);
  EXPECT_TRUE(o.ClaimDue(now, 5)->empty());
  EXPECT_FALSE(o.NextDueAt()->has_value());
}

TYPED_TEST(StoreTablesTest, AClaimTakesNoMoreRowsOfATargetThanItsRoom) {
  auto& o = this->b_.outbox();
  MH_ASSERT_OK(o.Add({Item(1, "webhook:a"), Item(2, "webhook:a"), Item(3, "webhook:a"), Item(4, "webhook:b")}));
  store::ClaimRequest request;
  request.now = Clock::now();
  request.limit = 4;
  request.room = {{"webhook:a", 1}, {"webhook:b", 4}};
  auto claimed = o.Claim(request);
  MH_ASSERT_OK(claimed);
  std::multiset<std::string> targets;
  for (const auto& d : claimed->rows) targets.insert(d.item.target);
  EXPECT_EQ(targets, (std::multiset<std::string>{"webhook:a", "webhook:b"}));
  EXPECT_TRUE(claimed->more);
  // The rows of a beyond its room were not leased.
  EXPECT_EQ(o.ClaimDue(request.now, 10)->size(), 2u);
}

// A due row of another target can sit behind the rows left for lack of
// room, beyond what one claim selects: the claim says more.
TYPED_TEST(StoreTablesTest, AClaimThatLeftRowsForLackOfRoomSaysMore) {
  auto& o = this->b_.outbox();
  MH_ASSERT_OK(o.Add({Item(1, "webhook:a"), Item(2, "webhook:a"), Item(3, "webhook:b")}));
  store::ClaimRequest request;
  request.now = Clock::now();
  request.limit = 1;
  request.room = {{"webhook:a", 1}, {"webhook:b", 4}};
  auto claimed = o.Claim(request);
  MH_ASSERT_OK(claimed);
  ASSERT_EQ(claimed->rows.size(), 1u);
  EXPECT_EQ(claimed->rows[0].item.target, "webhook:a");
  EXPECT_TRUE(claimed->more) << "webhook:b's row is due behind a's second";
  request.skip_targets = {"webhook:a"};
  request.room.erase("webhook:a");
  auto next = o.Claim(request);
  MH_ASSERT_OK(next);
  ASSERT_EQ(next->rows.size(), 1u);
  EXPECT_EQ(next->rows[0].item.target, "webhook:b");
  EXPECT_FALSE(next->more);
}

// ---- dead letters ----

TYPED_TEST(StoreTablesTest, DeadLettersReplayAndDrop) {
  auto& o = this->b_.outbox();
  auto& dead = this->b_.dead_letters();
  MH_ASSERT_OK(o.Add({Item(1), Item(2), Item(3)}));
  auto claimed = o.ClaimDue(Clock::now(), 10);
  MH_ASSERT_OK(claimed);
  ASSERT_EQ(claimed->size(), 3u);
  for (const auto& d : *claimed) MH_ASSERT_OK(o.MoveToDeadLetters(d.id, 9, "gone"));
  EXPECT_EQ(*o.PendingCount(), 0);
  EXPECT_FALSE(*o.AllDelivered("evt_1"));

  auto list = dead.List();
  MH_ASSERT_OK(list);
  ASSERT_EQ(list->size(), 3u);
  EXPECT_EQ((*list)[0].id, (*claimed)[0].id);  // a dead letter keeps its outbox id
  EXPECT_EQ((*list)[0].attempts, 9);
  EXPECT_EQ((*list)[0].last_error, "gone");
  EXPECT_EQ((*list)[0].item.payload, R"({"uid":1})");

  std::array<int64_t, 2> replay = {(*list)[0].id, 999999};
  EXPECT_EQ(*dead.Replay(replay), 1);
  EXPECT_EQ(*dead.Replay(std::span<const int64_t>()), 0);
  EXPECT_EQ(*dead.Count(), 2);
  auto due = o.ClaimDue(Clock::now(), 10);
  MH_ASSERT_OK(due);
  ASSERT_EQ(due->size(), 1u);
  EXPECT_EQ((*due)[0].id, (*list)[0].id);  // and keeps it when replayed
  EXPECT_EQ((*due)[0].item.event_id, "evt_1");
  EXPECT_EQ((*due)[0].attempts, 0);
  EXPECT_EQ((*due)[0].last_error, "gone");
  MH_ASSERT_OK(o.MarkDelivered((*due)[0].id));
  EXPECT_TRUE(*o.AllDelivered("evt_1"));

  std::array<int64_t, 1> drop = {(*list)[1].id};
  EXPECT_EQ(*dead.Drop(drop), 1);
  EXPECT_EQ(*dead.Drop(drop), 0);
  EXPECT_EQ(*dead.Count(), 1);
  EXPECT_EQ(*dead.ReplayAll(), 1);
  EXPECT_EQ(*o.PendingCount(), 1);
  EXPECT_EQ(*dead.DropAll(), 0);
  // Ids handed out after a replay do not collide with the replayed ones.
  MH_ASSERT_OK(o.Add({Item(4)}));
  auto pending = o.ListPending();
  MH_ASSERT_OK(pending);
  ASSERT_EQ(pending->size(), 2u);
  EXPECT_NE((*pending)[0].id, (*pending)[1].id);
}

TYPED_TEST(StoreTablesTest, AReplayedDeadLetterThatFailsAgainIsOneDeadLetter) {
  auto& o = this->b_.outbox();
  auto& dead = this->b_.dead_letters();
  MH_ASSERT_OK(o.Add({Item(1)}));
  const int64_t id = o.ClaimDue(Clock::now(), 1)->at(0).id;
  MH_ASSERT_OK(o.MoveToDeadLetters(id, 3, "HTTP 500"));
  EXPECT_EQ(*dead.ReplayAll(), 1);
  MH_ASSERT_OK(o.MoveToDeadLetters(o.ClaimDue(Clock::now(), 1)->at(0).id, 4, "HTTP 410"));
  auto list = dead.List();
  MH_ASSERT_OK(list);
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].id, id);
  EXPECT_EQ((*list)[0].attempts, 4);
  EXPECT_EQ((*list)[0].last_error, "HTTP 410");
}

TYPED_TEST(StoreTablesTest, ARowReadsTheSameThroughEveryQuery) {
  auto& o = this->b_.outbox();
  auto& dead = this->b_.dead_letters();
  OutboxItem item = Item(9, "hook:archive");
  item.uidvalidity = 4000000000u;
  item.payload = R"({"subject":"Grüße ✓"})";
  MH_ASSERT_OK(o.Add({item}));
  auto listed = o.ListPending();
  auto claimed = o.ClaimDue(Clock::now(), 1);
  MH_ASSERT_OK(listed);
  MH_ASSERT_OK(claimed);
  ASSERT_EQ(listed->size(), 1u);
  ASSERT_EQ(claimed->size(), 1u);
  for (const store::Delivery* d : {&(*listed)[0], &(*claimed)[0]}) {
    EXPECT_EQ(d->item.event_id, "evt_9");
    EXPECT_EQ(d->item.target, "hook:archive");
    EXPECT_EQ(d->item.account, "support");
    EXPECT_EQ(d->item.folder, "INBOX");
    EXPECT_EQ(d->item.uidvalidity, 4000000000u);
    EXPECT_EQ(d->item.uid, 9u);
    EXPECT_EQ(d->item.payload, item.payload);
    EXPECT_EQ(d->attempts, 0);
    EXPECT_EQ(d->next_attempt_at, d->created_at);
    EXPECT_LT(std::chrono::abs(Clock::now() - d->created_at), std::chrono::minutes(1));
  }
  const store::Delivery& d = (*claimed)[0];
  EXPECT_EQ((*listed)[0].id, d.id);
  MH_ASSERT_OK(o.MoveToDeadLetters(d.id, 3, "HTTP 410"));
  auto letters = dead.List();
  auto info = dead.ListInfo();
  MH_ASSERT_OK(letters);
  MH_ASSERT_OK(info);
  ASSERT_EQ(letters->size(), 1u);
  ASSERT_EQ(info->size(), 1u);
  const store::DeadLetter& l = (*letters)[0];
  const store::DeadLetterInfo& i = (*info)[0];
  EXPECT_EQ(l.id, d.id);
  EXPECT_EQ(l.item.event_id, d.item.event_id);
  EXPECT_EQ(l.item.target, d.item.target);
  EXPECT_EQ(l.item.uidvalidity, d.item.uidvalidity);
  EXPECT_EQ(l.item.uid, d.item.uid);
  EXPECT_EQ(l.item.payload, item.payload);
  EXPECT_EQ(l.attempts, 3);
  EXPECT_EQ(l.created_at, d.created_at);
  EXPECT_LT(std::chrono::abs(Clock::now() - l.failed_at), std::chrono::minutes(1));
  EXPECT_EQ(l.last_error, "HTTP 410");
  EXPECT_EQ(i.id, l.id);
  EXPECT_EQ(i.event_id, l.item.event_id);
  EXPECT_EQ(i.target, l.item.target);
  EXPECT_EQ(i.account, l.item.account);
  EXPECT_EQ(i.folder, l.item.folder);
  EXPECT_EQ(i.uidvalidity, l.item.uidvalidity);
  EXPECT_EQ(i.uid, l.item.uid);
  EXPECT_EQ(i.attempts, l.attempts);
  EXPECT_EQ(i.created_at, l.created_at);
  EXPECT_EQ(i.failed_at, l.failed_at);
  EXPECT_EQ(i.last_error, l.last_error);
}

// ---- payloads in pieces: inline or in bodies ----

TYPED_TEST(StoreTablesTest, ASmallEventInPiecesIsStoredInlineAndALargeOneInBodies) {
  auto& o = this->b_.outbox();
  std::vector<OutboxItem> items = {Item(1), Item(2)};
  items[0].payload.clear();
  items[0].pieces = {Piece(10, 'a'), Piece(4000, 'b'), Piece(86, 'c')};  // 4096 bytes: inline
  items[1].payload.clear();
  items[1].pieces = {Piece(10, 'a'), Piece(4087, 'b')};  // 4097: in bodies
  MH_ASSERT_OK(o.Add(items));
  EXPECT_EQ(this->b_.BodyRows(), 1);
  auto due = o.ClaimDue(Clock::now(), 10);
  MH_ASSERT_OK(due);
  ASSERT_EQ(due->size(), 2u);
  EXPECT_TRUE((*due)[0].item.payload == std::string(10, 'a') + std::string(4000, 'b') + std::string(86, 'c'));
  EXPECT_TRUE((*due)[1].item.payload == std::string(10, 'a') + std::string(4087, 'b'));
  MH_ASSERT_OK(o.MoveToDeadLetters((*due)[0].id, 1, "400"));
  auto dead = this->b_.dead_letters().List();
  MH_ASSERT_OK(dead);
  ASSERT_EQ(dead->size(), 1u);
  EXPECT_EQ((*dead)[0].item.payload.size(), 4096u);
  MH_ASSERT_OK(o.MarkDelivered((*due)[1].id));
  EXPECT_EQ(this->b_.BodyRows(), 0);
}

TYPED_TEST(StoreTablesTest, PayloadInPiecesIsStoredWholeAndSurvivesDeadLetters) {
  auto& o = this->b_.outbox();
  auto& dead = this->b_.dead_letters();
  // A content piece over the 1 MiB write step, shared by two targets.
  auto content = std::make_shared<const std::string>(3 * (1 << 20) + 5, 'Q');
  std::vector<OutboxItem> items = {Item(1), Item(1, "hook:archive"), Item(2)};
  for (size_t i = 0; i < 2; ++i) {
    items[i].payload.clear();
    items[i].pieces = {std::make_shared<const std::string>(R"({"c":")"), content,
                       std::make_shared<const std::string>(R"("})")};
  }
  const std::string joined = R"({"c":")" + *content + R"("})";
  MH_ASSERT_OK(o.Add(items));
  MH_ASSERT_OK(o.Add(items));  // a replay stores nothing twice
  EXPECT_EQ(*o.PendingCount(), 3);
  EXPECT_EQ(this->b_.BodyRows(), 2);

  auto due = o.ClaimDue(Clock::now(), 10);
  MH_ASSERT_OK(due);
  ASSERT_EQ(due->size(), 3u);
  EXPECT_TRUE((*due)[0].item.payload == joined);
  EXPECT_TRUE((*due)[1].item.payload == joined);
  EXPECT_EQ((*due)[2].item.payload, R"({"uid":2})");  // a small one stays in `payload`

  MH_ASSERT_OK(o.MoveToDeadLetters((*due)[0].id, 1, "400"));
  auto list = dead.List();
  MH_ASSERT_OK(list);
  ASSERT_EQ(list->size(), 1u);
  EXPECT_TRUE((*list)[0].item.payload == joined);
  EXPECT_EQ(*dead.ReplayAll(), 1);
  auto pending = o.ListPending();
  MH_ASSERT_OK(pending);
  ASSERT_EQ(pending->size(), 3u);
  for (const auto& d : *pending) {
    if (d.item.uid == 1) {
      EXPECT_TRUE(d.item.payload == joined) << d.item.target;
    }
  }
  // Delivered or dropped, a payload's body goes with its row.
  for (const auto& d : *pending) MH_ASSERT_OK(o.MarkDelivered(d.id));
  EXPECT_EQ(this->b_.BodyRows(), 0);
  std::vector<OutboxItem> third = {Item(3)};
  third[0].payload.clear();
  third[0].pieces = items[0].pieces;
  MH_ASSERT_OK(o.Add(third));
  EXPECT_EQ(this->b_.BodyRows(), 1);
  MH_ASSERT_OK(o.MoveToDeadLetters(o.ClaimDue(Clock::now(), 10)->at(0).id, 1, "400"));
  EXPECT_EQ(*dead.DropAll(), 1);
  EXPECT_EQ(this->b_.BodyRows(), 0);
}

}  // namespace
}  // namespace mailhook::pgstore
