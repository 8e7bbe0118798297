#include "pgstore/pg_leases.h"

#include <algorithm>

namespace mailhook::pgstore {
namespace {

using util::Error;
using util::Result;
using util::Status;

// The statements, prepared on first use (PgConnection::Prepare is a no-op
// for a name already prepared with the same text).
struct Statement {
  const char* name;
  const char* sql;
};

const Statement kStatements[] = {
    {"lease.register", R"sql(
        INSERT INTO replicas (id, host, started_at, heartbeat_at)
        VALUES (gen_random_uuid(), $1, clock_timestamp(), clock_timestamp()) RETURNING id::text)sql"},
    // An upsert: a row removed meanwhile (by an operator) comes back.
    {"lease.heartbeat", R"sql(
        INSERT INTO replicas (id, host, started_at, heartbeat_at)
        VALUES ($1::uuid, $2, clock_timestamp(), clock_timestamp())
        ON CONFLICT (id) DO UPDATE SET heartbeat_at = clock_timestamp())sql"},
    // Milliseconds as an interval: `$n::bigint * interval '1 millisecond'`
    // (bigint converts to double precision implicitly: exact below 2^53).
    {"lease.live", R"sql(
        SELECT id::text FROM replicas
        WHERE heartbeat_at > clock_timestamp() - $1::bigint * interval '1 millisecond' ORDER BY id)sql"},
    {"lease.live_count", R"sql(
        SELECT count(*) FROM replicas
        WHERE heartbeat_at > clock_timestamp() - $1::bigint * interval '1 millisecond' OR id = $2::uuid)sql"},
    {"lease.held", R"sql(
        SELECT account, generation FROM account_leases
        WHERE owner = $1::uuid AND expires_at > clock_timestamp() AND account = ANY($2::text[])
        ORDER BY account)sql"},
    // One claim round. `free`: up to $3 accounts without a lease or with an
    // expired one, chosen in an order of this replica's own (md5 of account
    // and id), so replicas claiming at once mostly pick different accounts;
    // inserted in account order, so two rounds running at once lock their
    // rows in the same order and cannot deadlock. The upsert's WHERE is
    // evaluated on the newest row after any wait: a lease another replica
    // claimed meanwhile, or renewed, is skipped; one whose owner had it
    // locked FOR SHARE (a write transaction under CheckFence) is taken only
    // after that commit. Returns (free accounts seen, accounts claimed).
    {"lease.claim", R"sql(
        WITH free AS (
          SELECT a.account FROM unnest($2::text[]) AS a(account)
          LEFT JOIN account_leases l ON l.account = a.account
          WHERE l.account IS NULL OR l.expires_at <= clock_timestamp()
          ORDER BY md5(a.account || ($1::uuid)::text) LIMIT $3::bigint),
        taken AS (
          INSERT INTO account_leases AS l (account, owner, generation, expires_at)
          SELECT account, $1::uuid, 1, clock_timestamp() + $4::bigint * interval '1 millisecond'
          FROM (SELECT account FROM free ORDER BY account) AS f
          ON CONFLICT (account) DO UPDATE
            SET owner = excluded.owner, generation = l.generation + 1, expires_at = excluded.expires_at
            WHERE l.expires_at <= clock_timestamp()
          RETURNING account)
        SELECT (SELECT count(*) FROM free), (SELECT count(*) FROM taken))sql"},
    {"lease.renew", R"sql(
        UPDATE account_leases SET expires_at = clock_timestamp() + $2::bigint * interval '1 millisecond'
        WHERE owner = $1::uuid AND expires_at > clock_timestamp()
        RETURNING account, generation)sql"},
    // Given back: expired at once, generation kept (only a takeover raises it).
    {"lease.give_back", R"sql(
        UPDATE account_leases SET expires_at = '-infinity'
        WHERE owner = $1::uuid AND expires_at > clock_timestamp() AND account = ANY($2::text[])
        RETURNING account)sql"},
    {"lease.give_back_n", R"sql(
        UPDATE account_leases SET expires_at = '-infinity'
        WHERE owner = $1::uuid AND expires_at > clock_timestamp() AND account IN (
          SELECT account FROM account_leases WHERE owner = $1::uuid AND expires_at > clock_timestamp()
          ORDER BY account DESC LIMIT $2::bigint)
        RETURNING account)sql"},
    {"lease.leave", R"sql(
        UPDATE account_leases SET expires_at = '-infinity'
        WHERE owner = $1::uuid AND expires_at > clock_timestamp()
        RETURNING account)sql"},
    {"lease.unregister", "DELETE FROM replicas WHERE id = $1::uuid"},
    {"lease.forget", R"sql(
        DELETE FROM replicas WHERE heartbeat_at < clock_timestamp() - $1::bigint * interval '1 millisecond')sql"},
};

// FOR SHARE, not FOR KEY SHARE: a takeover's UPDATE of expires_at and owner
// (not of the key) would not wait for a key-share lock.
constexpr const char* kFenceSql = R"sql(
    SELECT 1 FROM account_leases
    WHERE account = $1 AND owner = $2::uuid AND generation = $3 AND expires_at > clock_timestamp()
    FOR SHARE)sql";
constexpr const char* kFenceNowSql = R"sql(
    SELECT owner::text, generation, expires_at > clock_timestamp() FROM account_leases WHERE account = $1)sql";

// A PostgreSQL array literal of texts: {"a","b\"c"}, each element quoted
// (so commas, braces, spaces and NULL-like words stay texts).
std::string TextArray(std::span<const std::string> items) {
  std::string out = "{";
  for (const std::string& item : items) {
    if (out.size() > 1) out += ',';
    out += '"';
    for (char c : item) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  out += '}';
  return out;
}

Result<std::vector<std::string>> Accounts(Result<PgRows> rows) {
  if (!rows) return rows.error();
  std::vector<std::string> out;
  for (int i = 0; i < rows->rows(); ++i) {
    auto account = rows->Text(i, 0);
    if (!account) return account.error();
    out.emplace_back(*account);
  }
  std::sort(out.begin(), out.end());
  return out;
}

Error NotRegistered() {
  return Error(util::ErrorKind::kStore, "store.pg.sql", util::RetryClass::kNeedsOperator,
               "PgLeases used before Register: a bug in mailhook, report it");
}

// What the lease row says now, for the store.fenced message.
std::string HolderNow(PgConnection& conn, const Fence& fence) {
  if (!conn.Prepare("lease.fence_now", kFenceNowSql)) return "its holder is unknown";
  auto rows = conn.Exec("lease.fence_now", {fence.account});
  if (!rows) return "its holder is unknown";
  if (rows->rows() == 0) return "the account has no lease at all";
  auto owner = rows->Text(0, 0);
  auto generation = rows->Int64(0, 1);
  auto live = rows->Bool(0, 2);
  if (!owner || !generation || !live) return "its holder is unknown";
  return "the lease is " + std::string(*live ? "held" : "expired, last held") + " by replica " + std::string(*owner) +
         " at generation " + std::to_string(*generation);
}

// The (account, generation) rows of a lease query, as this owner's fences.
Result<std::vector<Fence>> FencesOf(const PgRows& rows, const std::string& owner) {
  std::vector<Fence> out;
  for (int i = 0; i < rows.rows(); ++i) {
    auto account = rows.Text(i, 0);
    auto generation = rows.Int64(i, 1);
    if (!account) return account.error();
    if (!generation) return generation.error();
    out.push_back(Fence{std::string(*account), owner, *generation});
  }
  return out;
}

}  // namespace

Status CheckFence(PgConnection& conn, const Fence& fence) {
  if (!conn.in_transaction()) {
    return Error(util::ErrorKind::kStore, "store.pg.sql", util::RetryClass::kNeedsOperator,
                 "CheckFence outside a transaction (its row lock would end at once): a bug in mailhook, report it");
  }
  if (auto s = conn.Prepare("lease.fence", kFenceSql); !s) return s;
  auto rows = conn.Exec("lease.fence", {fence.account, fence.owner, fence.generation});
  if (!rows) return rows.error();
  if (rows->rows() == 1) return util::Ok();
  return Error(util::ErrorKind::kStore, "store.fenced", util::RetryClass::kBackoff,
               "account " + fence.account + ": this replica (" + fence.owner +
                   ") no longer holds the account's lease at generation " + std::to_string(fence.generation) + " (" +
                   HolderNow(conn, fence) +
                   "); the write is rolled back, nothing was written. This replica stops the account's sessions and "
                   "the lease's holder goes on; if replicas lose leases often, their heartbeats or renewals are late: "
                   "check the load, the network to PostgreSQL and store.lease_ttl");
}

PgLeases::PgLeases(PgConnection& conn, std::chrono::milliseconds ttl) : conn_(conn), ttl_(ttl) {}

Status PgLeases::Prepare() {
  for (const Statement& s : kStatements) {
    if (auto status = conn_.Prepare(s.name, s.sql); !status) return status;
  }
  return util::Ok();
}

Result<std::string> PgLeases::Register(std::string_view host) {
  if (auto s = Prepare(); !s) return s.error();
  auto rows = conn_.Exec("lease.register", {host});
  if (!rows) return rows.error();
  auto id = rows->Text(0, 0);
  if (!id) return id.error();
  id_ = std::string(*id);
  host_ = std::string(host);
  return id_;
}

Status PgLeases::Rejoin(std::string_view id, std::string_view host) {
  if (auto s = Prepare(); !s) return s;
  id_ = std::string(id);
  host_ = std::string(host);
  return Heartbeat();
}

Status PgLeases::Heartbeat() {
  if (id_.empty()) return NotRegistered();
  if (auto r = conn_.Exec("lease.heartbeat", {id_, host_}); !r) return r.error();
  return util::Ok();
}

Result<std::vector<std::string>> PgLeases::LiveReplicas() {
  if (auto s = Prepare(); !s) return s.error();
  return Accounts(conn_.Exec("lease.live", {static_cast<int64_t>(ttl_.count())}));
}

Result<int64_t> PgLeases::FairShare(int64_t account_count) {
  if (id_.empty()) return NotRegistered();
  auto rows = conn_.Exec("lease.live_count", {static_cast<int64_t>(ttl_.count()), id_});
  if (!rows) return rows.error();
  auto live = rows->Int64(0, 0);
  if (!live) return live.error();
  const int64_t replicas = std::max<int64_t>(1, *live);
  return (account_count + replicas - 1) / replicas;
}

Result<std::vector<Fence>> PgLeases::Held(const std::string& accounts) {
  auto rows = conn_.Exec("lease.held", {id_, accounts});
  if (!rows) return rows.error();
  return FencesOf(*rows, id_);  // sorted by the SQL
}

Result<int64_t> PgLeases::ClaimRound(const std::string& accounts, int64_t want) {
  auto rows = conn_.Exec("lease.claim", {id_, accounts, want, static_cast<int64_t>(ttl_.count())});
  if (!rows) return rows.error();
  auto free = rows->Int64(0, 0);
  auto taken = rows->Int64(0, 1);
  if (!free) return free.error();
  if (!taken) return taken.error();
  // None free: done for now. Free but none taken: others claimed them at the
  // same moment; they are not free in the next round's snapshot.
  return *free == 0 ? -1 : *taken;
}

Result<std::vector<Fence>> PgLeases::Claim(std::span<const std::string> accounts) {
  if (id_.empty()) return NotRegistered();
  auto share = FairShare(static_cast<int64_t>(accounts.size()));
  if (!share) return share.error();
  return Claim(accounts, *share);
}

Result<std::vector<Fence>> PgLeases::Claim(std::span<const std::string> accounts, int64_t target) {
  if (id_.empty()) return NotRegistered();
  const std::string list = TextArray(accounts);
  auto held = Held(list);
  if (!held) return held.error();
  int64_t want = target - static_cast<int64_t>(held->size());
  // Each round either claims one or more or finds fewer free accounts, so
  // this ends; the bound is a guard.
  for (size_t round = 0; want > 0 && round <= accounts.size(); ++round) {
    auto got = ClaimRound(list, want);
    if (!got) {
      // A deadlock the account order should rule out: one more round.
      if (got.error().retry() == util::RetryClass::kRetryNow) continue;
      return got.error();
    }
    if (*got < 0) break;
    want -= *got;
  }
  return Held(list);
}

Result<std::vector<Fence>> PgLeases::Renew() {
  if (id_.empty()) return NotRegistered();
  auto rows = conn_.Exec("lease.renew", {id_, static_cast<int64_t>(ttl_.count())});
  if (!rows) return rows.error();
  auto out = FencesOf(*rows, id_);
  if (!out) return out;
  std::sort(out->begin(), out->end(), [](const Fence& a, const Fence& b) { return a.account < b.account; });
  return out;
}

Result<std::vector<std::string>> PgLeases::GiveBack(std::span<const std::string> accounts) {
  if (id_.empty()) return NotRegistered();
  return Accounts(conn_.Exec("lease.give_back", {id_, TextArray(accounts)}));
}

Result<std::vector<std::string>> PgLeases::GiveBack(int64_t n) {
  if (id_.empty()) return NotRegistered();
  return Accounts(conn_.Exec("lease.give_back_n", {id_, n}));
}

Result<std::vector<std::string>> PgLeases::Leave() {
  if (id_.empty()) return NotRegistered();
  std::vector<std::string> given;
  Status s = conn_.InTransaction([&]() -> Status {
    auto accounts = Accounts(conn_.Exec("lease.leave", {id_}));
    if (!accounts) return accounts.error();
    given = std::move(accounts).value();
    if (auto r = conn_.Exec("lease.unregister", {id_}); !r) return r.error();
    return util::Ok();
  });
  if (!s) return s.error();
  return given;
}

Result<int64_t> PgLeases::ForgetReplicasSilentFor(std::chrono::milliseconds age) {
  if (auto s = Prepare(); !s) return s.error();
  auto rows = conn_.Exec("lease.forget", {static_cast<int64_t>(age.count())});
  if (!rows) return rows.error();
  return rows->affected();
}

}  // namespace mailhook::pgstore
