#pragma once
/// ChooseClaimed: which of the due rows an Outbox::Claim leases, shared by
/// SqliteOutbox and PgOutbox so the two backends cannot drift.

#include <vector>

#include "store/outbox.h"
#include "store/rows.h"

namespace mailhook::store {

/// `due` holds up to request.limit + 1 rows, oldest first. A target's rows
/// beyond its room (request.room) stay unclaimed and say `more`: rows of other
/// targets may be due behind them (that target is skipped by the next claim,
/// so the wakes end). At most request.limit rows are kept; a cut says `more`.
ClaimResult ChooseClaimed(const ClaimRequest& request, std::vector<Delivery> due);

}  // namespace mailhook::store
