#include "daemon/batch_committer.h"

#include <gtest/gtest.h>

#include "daemon_test_support.h"
#include "store/open_store.h"

namespace mailhook::daemon {
namespace {

using store::Watermark;
using testing::TempDir;

class BatchCommitterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = store::OpenStore({.state_dir = dir_.path()});
    ASSERT_TRUE(s.ok()) << s.error().message();
    store_ = std::move(*s);
  }
  BatchCommitter Make(Watermark mark, BatchCommitter::Limits limits = {}) {
    return BatchCommitter(
        *store_, "acct", "INBOX", mark, [this] { ++wakes_; }, limits);
  }
  store::OutboxItem Item(uint32_t uid, size_t bytes = 10) {
    store::OutboxItem item{"evt_" + std::to_string(uid), "hook:h", "acct", "INBOX", 7, uid, "", {}};
    item.pieces.push_back(std::make_shared<const std::string>(bytes, 'x'));
    return item;
  }
  std::optional<Watermark> StoredMark() {
    auto m = store_->watermarks().Get("acct", "INBOX");
    EXPECT_TRUE(m.ok());
    return m.ok() ? *m : std::nullopt;
  }
  int64_t Pending() {
    auto n = store_->outbox().PendingCount();
    EXPECT_TRUE(n.ok());
    return n.ok() ? *n : -1;
  }

  TempDir dir_;
  std::unique_ptr<store::Store> store_;
  int wakes_ = 0;
};

TEST_F(BatchCommitterTest, BatchesHoldAtMostMaxMessagesAndAFailedUidAlone) {
  BatchCommitter c = Make({7, 0}, {.max_messages = 3, .max_bytes = 1 << 20});
  const std::vector<uint32_t> uids{1, 2, 3, 4, 5, 6, 7, 8};
  auto failed = [](uint32_t uid) { return uid == 5; };
  std::vector<std::vector<uint32_t>> batches;
  for (size_t at = 0; at < uids.size();) {
    batches.push_back(c.NextBatch(uids, at, failed));
    at += batches.back().size();
  }
  const std::vector<std::vector<uint32_t>> want{{1, 2, 3}, {4}, {5}, {6, 7, 8}};
  EXPECT_EQ(batches, want);
}

TEST_F(BatchCommitterTest, EveryBatchCommitsItsEventsWithTheWatermark) {
  BatchCommitter c = Make({7, 10});
  c.BeginPass(false, 0);
  c.Add(Item(11));
  c.Add(Item(13));
  EXPECT_EQ(Pending(), 0);
  ASSERT_TRUE(c.BatchDone(14, false).ok());  // 12 and 14 vanished: the mark passes them
  EXPECT_EQ(Pending(), 2);
  EXPECT_EQ(StoredMark(), (Watermark{7, 14}));
  EXPECT_EQ(c.mark(), (Watermark{7, 14}));
  EXPECT_EQ(wakes_, 1);
  EXPECT_EQ(c.pending_events(), 0u);
}

TEST_F(BatchCommitterTest, FlushesInsideABatchOnceMaxBytesArePending) {
  BatchCommitter c = Make({7, 0}, {.max_messages = 25, .max_bytes = 100});
  c.BeginPass(false, 0);
  c.Add(Item(1, 60));
  ASSERT_TRUE(c.MessageDone(1).ok());
  EXPECT_EQ(Pending(), 0) << "60 of 100 bytes: not yet";
  EXPECT_EQ(c.pending_bytes(), 60u);
  c.Add(Item(2, 60));
  ASSERT_TRUE(c.MessageDone(2).ok());
  EXPECT_EQ(Pending(), 2);
  EXPECT_EQ(c.pending_bytes(), 0u);
  EXPECT_EQ(StoredMark(), (Watermark{7, 2}));
}

TEST_F(BatchCommitterTest, AnEarlyCommitRecordsOnlyTheFingerprintsOfHandledMessages) {
  // A batch's fingerprints are queued before its messages are gathered; an
  // early commit after the first must not record the second's, which may
  // still fail (its retry would take it for a message handled before).
  BatchCommitter c = Make({7, 0}, {.max_messages = 25, .max_bytes = 100});
  c.BeginPass(false, 0);
  c.AddFingerprint(store::Fingerprint{7, 1, "<one@x>", 500});
  c.AddFingerprint(store::Fingerprint{7, 2, "<two@x>", 10});
  c.Add(Item(1, 500));
  ASSERT_TRUE(c.MessageDone(1).ok());
  EXPECT_EQ(Pending(), 1) << "committed early";
  auto fps = store_->fingerprints().List("acct", "INBOX", 7);
  ASSERT_TRUE(fps.ok());
  ASSERT_EQ(fps->size(), 1u);
  EXPECT_EQ(fps->front().uid, 1u);
  // The second handled: its fingerprint goes with the batch's commit.
  c.Add(Item(2));
  ASSERT_TRUE(c.MessageDone(2).ok());
  ASSERT_TRUE(c.BatchDone(2, true).ok());
  EXPECT_EQ(store_->fingerprints().List("acct", "INBOX", 7)->size(), 2u);
}

TEST_F(BatchCommitterTest, AFirstPassWritesTheWatermarkOnlyWithItsLastCommit) {
  // start_from: unseen over 3, 8 and 9 of a folder ending at 20.
  BatchCommitter c = Make({7, 0}, {.max_messages = 1, .max_bytes = 100});
  c.BeginPass(true, 20);
  c.Add(Item(3));
  ASSERT_TRUE(c.BatchDone(3, false).ok());
  EXPECT_EQ(Pending(), 1) << "the events are durable at once";
  EXPECT_EQ(StoredMark(), std::nullopt) << "a crash now must start the pass again, not resume above 3";
  c.Add(Item(8, 500));
  ASSERT_TRUE(c.MessageDone(8).ok());  // an early flush inside a first pass
  EXPECT_EQ(Pending(), 2);
  EXPECT_EQ(StoredMark(), std::nullopt);
  ASSERT_TRUE(c.BatchDone(8, false).ok());
  c.Add(Item(9));
  ASSERT_TRUE(c.BatchDone(9, true).ok());
  EXPECT_EQ(Pending(), 3);
  EXPECT_EQ(StoredMark(), (Watermark{7, 20})) << "the pass's end, not its last UID";
}

TEST_F(BatchCommitterTest, AnOrdinaryPassEndsAtItsLastUid) {
  BatchCommitter c = Make({7, 4});
  c.BeginPass(false, 0);
  c.Add(Item(5));
  ASSERT_TRUE(c.BatchDone(6, true).ok());
  EXPECT_EQ(StoredMark(), (Watermark{7, 6}));
}

TEST_F(BatchCommitterTest, ABatchWithoutEventsMovesTheMarkWithoutWakingTheDispatcher) {
  BatchCommitter c = Make({7, 4});
  c.BeginPass(false, 0);
  ASSERT_TRUE(c.BatchDone(9, true).ok());  // every message vanished
  EXPECT_EQ(StoredMark(), (Watermark{7, 9}));
  EXPECT_EQ(wakes_, 0);
}

TEST_F(BatchCommitterTest, SkipToStoresTheMarkAndNeverMovesItBack) {
  BatchCommitter c = Make({7, 100});
  ASSERT_TRUE(c.SkipTo(200000).ok());
  EXPECT_EQ(StoredMark(), (Watermark{7, 200000}));
  ASSERT_TRUE(c.SkipTo(5).ok());
  EXPECT_EQ(c.mark(), (Watermark{7, 200000}));
}

TEST_F(BatchCommitterTest, ARecommittedEventIsNotASecondRow) {
  // A crash after the commit replays the batch: the store deduplicates.
  for (int round = 0; round < 2; ++round) {
    BatchCommitter c = Make({7, 0});
    c.BeginPass(true, 5);
    c.Add(Item(3));
    ASSERT_TRUE(c.BatchDone(3, round == 1).ok());
  }
  EXPECT_EQ(Pending(), 1);
  EXPECT_EQ(StoredMark(), (Watermark{7, 5}));
}

}  // namespace
}  // namespace mailhook::daemon
