#include "daemon/cluster_command.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <set>
#include <string>

#include "config/store_url.h"

#ifdef MAILHOOK_HAVE_PGSTORE
#include "pgstore/pg_cluster_status.h"
#include "pgstore/pg_connection.h"
#include "pgstore/pg_schema.h"
#include "pgstore/pg_url.h"
#endif

namespace mailhook::daemon {

#ifdef MAILHOOK_HAVE_PGSTORE
namespace {

// "12.3s" (one decimal), as the ages are printed.
std::string Seconds(std::chrono::milliseconds ms) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1fs", static_cast<double>(ms.count()) / 1000.0);
  return text;
}

std::string LeaseAge(const pgstore::LeaseStatus& lease, std::chrono::milliseconds ttl) {
  if (lease.given_back) return "given back";
  if (lease.expires_in.count() <= 0) return "ended " + Seconds(-lease.expires_in) + " ago";
  return "age " + Seconds(ttl - lease.expires_in) + ", expires in " + Seconds(lease.expires_in);
}

void PrintReplicas(const pgstore::ClusterStatus& status, std::chrono::milliseconds ttl, std::ostream& out) {
  std::map<std::string, int> held;
  for (const auto& lease : status.leases) {
    if (lease.held()) ++held[lease.owner];
  }
  const auto live = std::count_if(status.replicas.begin(), status.replicas.end(), [](const auto& r) { return r.live; });
  out << "replicas: " << live << " live of " << status.replicas.size() << " (lease_ttl " << Seconds(ttl) << ")\n";
  for (const auto& r : status.replicas) {
    out << "  " << r.id << "  host=" << r.host << "  " << (r.live ? "live" : "silent") << "  heartbeat "
        << Seconds(r.since_heartbeat) << " ago  up " << Seconds(r.up) << "  accounts " << held[r.id] << "\n";
  }
}

void PrintAccounts(const config::Config& config, const pgstore::ClusterStatus& status, std::ostream& out) {
  std::set<std::string> live;
  for (const auto& r : status.replicas) {
    if (r.live) live.insert(r.id);
  }
  std::map<std::string, const pgstore::LeaseStatus*> leases;
  for (const auto& lease : status.leases) leases[lease.account] = &lease;
  std::vector<std::string> unheld;
  out << "accounts: " << config.accounts.size() << " configured\n";
  for (const auto& account : config.accounts) {
    auto it = leases.find(account.name);
    if (it == leases.end()) {
      out << "  " << account.name << "  no lease yet\n";
      unheld.push_back(account.name);
      continue;
    }
    const pgstore::LeaseStatus& lease = *it->second;
    out << "  " << account.name << "  replica " << lease.owner << "  generation " << lease.generation << "  "
        << LeaseAge(lease, config.store.lease_ttl) << "\n";
    if (!lease.held() || !live.contains(lease.owner)) unheld.push_back(account.name);
  }
  if (unheld.empty()) {
    out << "every account is held by a live replica\n";
    return;
  }
  out << "held by no live replica (" << unheld.size() << "):";
  for (const auto& name : unheld) out << " " << name;
  out << "\n  a live replica below its share claims them at its next round (lease_ttl / 3)\n";
}

}  // namespace

int RunClusterStatus(const config::Config& config, std::ostream& out) {
  auto location = config::ResolveStore(config.store);
  if (!location.ok()) {
    out << "cannot read the store: " << location.error().message() << "\n";
    return 1;
  }
  if (location->kind != config::StoreKind::kPostgres) {
    out << "the store is SQLite in state_dir: one node, no cluster (set store.url to a postgresql:// URL to run "
           "replicas)\n";
    return 1;
  }
  auto conn = pgstore::PgConnection::Connect(location->url.reveal());
  if (!conn.ok()) {
    out << "cannot reach " << pgstore::RedactUrl(location->url.reveal()) << ": " << conn.error().message() << "\n";
    return 1;
  }
  auto status = pgstore::ReadClusterStatus(**conn, config.store.lease_ttl);
  if (!status.ok()) {
    out << "cannot read the cluster tables at " << (*conn)->redacted_url() << ": " << status.error().message()
        << " (no replica has started on this database yet?)\n";
    return 1;
  }
  out << "store: " << (*conn)->redacted_url() << "\n";
  PrintReplicas(*status, config.store.lease_ttl, out);
  PrintAccounts(config, *status, out);
  return 0;
}

int CheckStoreConnects(const config::Config& config, std::ostream& out) {
  auto location = config::ResolveStore(config.store);
  if (!location.ok()) {
    out << "FAIL store: " << location.error().message() << "\n";
    return 1;
  }
  if (location->kind != config::StoreKind::kPostgres) return 0;
  auto conn = pgstore::PgConnection::Connect(location->url.reveal());
  if (!conn.ok()) {
    out << "FAIL store: " << conn.error().message() << "\n";  // names the redacted url
    return 1;
  }
  auto version = pgstore::PgSchemaVersionOf(**conn);
  if (!version.ok()) {
    out << "FAIL store: reading the schema version: " << version.error().message() << "\n";
    return 1;
  }
  const int64_t ours = pgstore::kPgSchemaVersion;
  if (*version > ours) {
    out << "FAIL store " << (*conn)->redacted_url() << ": schema version " << *version
        << " is newer than this mailhook's (" << ours << "): a newer mailhook wrote it; run that version or newer\n";
    return 1;
  }
  out << "ok   store " << (*conn)->redacted_url() << ": connected, ";
  if (*version == 0) {
    out << "no mailhook tables yet (the first `mailhook run` creates them)\n";
  } else if (*version < ours) {
    out << "schema version " << *version << " (the first `mailhook run` migrates it to " << ours << ")\n";
  } else {
    out << "schema version " << ours << "\n";
  }
  return 0;
}

#else

int CheckStoreConnects(const config::Config&, std::ostream&) {
  return 0;  // a postgresql:// url is refused at load (config::CheckStoreBuilt) in this build
}

int RunClusterStatus(const config::Config&, std::ostream& out) {
  out << "this mailhook was built without PostgreSQL (libpq-dev was missing at build time): there is no cluster "
         "to show\n";
  return 1;
}

#endif

}  // namespace mailhook::daemon
