#include "pgstore/pg_cluster_status.h"

#include "pgstore/pg_statement.h"

namespace mailhook::pgstore {
namespace {

using util::Result;
using util::Status;

// Ages in whole milliseconds on the server's clock.
constexpr PgStatement kClusterReplicas = {"cluster.replicas", R"sql(
    SELECT id::text, host,
           (extract(epoch FROM clock_timestamp() - started_at) * 1000)::bigint,
           (extract(epoch FROM clock_timestamp() - heartbeat_at) * 1000)::bigint,
           heartbeat_at > clock_timestamp() - $1::bigint * interval '1 millisecond'
    FROM replicas ORDER BY started_at, id)sql"};
constexpr PgStatement kClusterLeases = {"cluster.leases", R"sql(
    SELECT account, owner::text, generation,
           CASE WHEN isfinite(expires_at)
                THEN (extract(epoch FROM expires_at - clock_timestamp()) * 1000)::bigint END
    FROM account_leases ORDER BY account)sql"};

Result<std::vector<ReplicaStatus>> MapReplicas(const PgRows& rows) {
  std::vector<ReplicaStatus> out;
  for (int r = 0; r < rows.rows(); ++r) {
    auto id = rows.Text(r, 0);
    auto host = rows.Text(r, 1);
    auto up = rows.Int64(r, 2);
    auto since = rows.Int64(r, 3);
    auto live = rows.Bool(r, 4);
    if (!id) return id.error();
    if (!host) return host.error();
    if (!up) return up.error();
    if (!since) return since.error();
    if (!live) return live.error();
    out.push_back({std::string(*id), std::string(*host), std::chrono::milliseconds(*up),
                   std::chrono::milliseconds(*since), *live});
  }
  return out;
}

Result<std::vector<LeaseStatus>> MapLeases(const PgRows& rows) {
  std::vector<LeaseStatus> out;
  for (int r = 0; r < rows.rows(); ++r) {
    auto account = rows.Text(r, 0);
    auto owner = rows.Text(r, 1);
    auto generation = rows.Int64(r, 2);
    if (!account) return account.error();
    if (!owner) return owner.error();
    if (!generation) return generation.error();
    LeaseStatus lease{std::string(*account), std::string(*owner), *generation};
    if (rows.IsNull(r, 3)) {
      lease.given_back = true;
    } else {
      auto expires_in = rows.Int64(r, 3);
      if (!expires_in) return expires_in.error();
      lease.expires_in = std::chrono::milliseconds(*expires_in);
    }
    out.push_back(std::move(lease));
  }
  return out;
}

}  // namespace

Result<ClusterStatus> ReadClusterStatus(PgConnection& conn, std::chrono::milliseconds ttl) {
  ClusterStatus status;
  Status read = InReadSnapshot(conn, [&]() -> Status {
    auto replicas = ExecStatement(conn, kClusterReplicas, {static_cast<int64_t>(ttl.count())});
    if (!replicas) return replicas.error();
    auto mapped = MapReplicas(*replicas);
    if (!mapped) return mapped.error();
    status.replicas = std::move(*mapped);
    auto leases = ExecStatement(conn, kClusterLeases, {});
    if (!leases) return leases.error();
    auto leased = MapLeases(*leases);
    if (!leased) return leased.error();
    status.leases = std::move(*leased);
    return util::Ok();
  });
  if (!read) return read.error();
  return status;
}

}  // namespace mailhook::pgstore
