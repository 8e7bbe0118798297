// src/pgstore/lease_book without a database: local deadlines (confirmed +
// ttl - margin) hide a fence and Expire drops it; a renewal's answer drops
// leases missing or at another generation and moves the others' deadlines
// forward (never back); Adopt adds only what the book lacks; the quota
// divides the accounts exactly among live replicas; the surplus is given back
// a few at a time.

#include "pgstore/lease_book.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

namespace mailhook::pgstore {
namespace {

using std::chrono::milliseconds;
using Strings = std::vector<std::string>;

const LeaseBook::SteadyTime kT0 = LeaseBook::SteadyTime(std::chrono::hours(1));

Fence F(const std::string& account, int64_t generation = 1) { return Fence{account, "me", generation}; }

TEST(LeaseBookTest, AFenceLastsUntilTtlMinusMarginAfterTheRequestThatConfirmedIt) {
  LeaseBook book(milliseconds(3000), milliseconds(500));
  const std::vector<Fence> claimed = {F("a"), F("b")};
  EXPECT_EQ(book.Adopt(claimed, kT0), (Strings{"a", "b"}));
  EXPECT_EQ(book.Find("a", kT0 + milliseconds(2499)), F("a"));
  EXPECT_FALSE(book.Find("a", kT0 + milliseconds(2500)));
  EXPECT_FALSE(book.Find("c", kT0));
  EXPECT_EQ(book.NextDeadline(), kT0 + milliseconds(2500));

  // b renewed by a request begun at +1000, a not (dropped), then a adopted
  // again from a claim begun at +1000: both last until +3500.
  const std::vector<Fence> renewed = {F("a"), F("b")};
  EXPECT_EQ(book.Confirm(std::vector<Fence>{F("b")}, kT0 + milliseconds(1000)), Strings{"a"});
  EXPECT_EQ(book.Accounts(), Strings{"b"});
  EXPECT_EQ(book.Adopt(renewed, kT0 + milliseconds(1000)), Strings{"a"});
  EXPECT_TRUE(book.Expire(kT0 + milliseconds(3499)).empty());
  EXPECT_EQ(book.Expire(kT0 + milliseconds(3500)), (Strings{"a", "b"}));
  EXPECT_EQ(book.size(), 0);
  EXPECT_FALSE(book.NextDeadline());
}

TEST(LeaseBookTest, ConfirmDropsMissingAndRetakenLeasesAndNeverMovesADeadlineBack) {
  LeaseBook book(milliseconds(3000), milliseconds(500));
  (void)book.Adopt(std::vector<Fence>{F("a"), F("b"), F("c")}, kT0 + milliseconds(1000));
  // b is gone (expired on the server), c came back at generation 2 (lost, then claimed again).
  const std::vector<Fence> answer = {F("a"), F("c", 2), F("z")};
  EXPECT_EQ(book.Confirm(answer, kT0), (Strings{"b", "c"}));
  EXPECT_EQ(book.Accounts(), Strings{"a"});
  // An answer to an older request does not shorten a's deadline.
  EXPECT_EQ(book.NextDeadline(), kT0 + milliseconds(3500));
  // z and c's new generation are only added by Adopt.
  EXPECT_EQ(book.Adopt(answer, kT0 + milliseconds(2000)), (Strings{"c", "z"}));
  EXPECT_EQ(book.Find("c", kT0 + milliseconds(2000)), F("c", 2));
  EXPECT_EQ(book.Remove(Strings{"z", "nope"}), Strings{"z"});
  EXPECT_EQ(book.RemoveAll(), (Strings{"a", "c"}));
}

TEST(LeaseBookTest, QuotasAddUpToTheAccountCountAndDifferByAtMostOne) {
  const Strings live = {"id-1", "id-2", "id-3"};
  int64_t total = 0;
  for (const std::string& me : live) {
    const int64_t q = QuotaOf(10, live, me);
    EXPECT_TRUE(q == 3 || q == 4) << me << " " << q;
    total += q;
  }
  EXPECT_EQ(total, 10);
  EXPECT_EQ(QuotaOf(10, live, "id-1"), 4);  // the remainder goes to the lowest ids
  EXPECT_EQ(QuotaOf(10, live, "id-3"), 3);
  // Not (yet) in the live list: counted all the same.
  EXPECT_EQ(QuotaOf(10, Strings{"id-1"}, "id-0"), 5);
  EXPECT_EQ(QuotaOf(10, Strings{}, "id-0"), 10);
  EXPECT_EQ(QuotaOf(2, live, "id-3"), 0);
}

TEST(LeaseBookTest, TheSurplusGoesBackAFewAtATimeFromTheEnd) {
  const Strings held = {"a", "b", "c", "d", "e"};
  EXPECT_EQ(SurplusToGiveBack(held, 3, 1), Strings{"e"});
  EXPECT_EQ(SurplusToGiveBack(held, 3, 5), (Strings{"d", "e"}));
  EXPECT_TRUE(SurplusToGiveBack(held, 5, 1).empty());
  EXPECT_TRUE(SurplusToGiveBack(held, 7, 1).empty());
  EXPECT_EQ(SurplusToGiveBack(held, -1, 10), held);
}

}  // namespace
}  // namespace mailhook::pgstore
