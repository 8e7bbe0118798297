// store: { url | url_file | url_command, lease_ttl } (CONTRACT.md
// "Additions"): where the state lives. Checked as far as possible without
// running anything; the value of the url is never quoted in an error.
#include "config/loader.h"
#include "config/store_url.h"

namespace mailhook::config::internal {

void Loader::ParseStore(const YAML::Node& node, Config& cfg) {
  if (!CheckKeys(node, keys::kStore, "store")) return;
  bool given = false;
  std::optional<SecretRef> url = SecretValue(node, "url", "store", &given);
  const YAML::Node lease_ttl = node["lease_ttl"];
  if (auto ttl = Dur(node, "lease_ttl", "store")) {
    if (*ttl < kMinLeaseTtl || *ttl > kMaxLeaseTtl) {
      Fail(lease_ttl,
           "store.lease_ttl must be from 5s to 10m (how long an account stays with a replica that "
           "stopped renewing), e.g. 30s");
    } else {
      cfg.store.lease_ttl = *ttl;
    }
  }
  if (!given) {
    // A key that does nothing would look like a setting that works.
    if (Present(lease_ttl)) {
      Fail(lease_ttl,
           "store.lease_ttl is for a PostgreSQL store.url (replicas sharing accounts); remove it, "
           "SQLite in state_dir has one daemon and no leases");
    }
    return;
  }
  if (!url) return;  // reported by SecretValue
  const std::string key(StoreUrlKey(StoreConfig{url, {}}));
  const YAML::Node at = node[key.substr(key.find('.') + 1)];
  if (url->kind() == SecretRef::Kind::kCommand) {
    // Never run at load (secret_ref.h): its output is checked when `run`
    // resolves it (daemon/configured_store.cc). A build without PostgreSQL
    // can open nothing a command would print but SQLite in state_dir.
#ifndef MAILHOOK_HAVE_PGSTORE
    Fail(at, key + ": this mailhook was built without PostgreSQL (libpq-dev was missing at build time); remove " + key +
                 " to use SQLite in state_dir");
    return;
#endif
  } else {
    CheckStoreUrl(at, *url, key, Present(lease_ttl));
  }
  cfg.store.url = std::move(url);
}

/// An inline or file url (reading a file has no side effect): its scheme,
/// lease_ttl only with PostgreSQL, and what this build can open.
void Loader::CheckStoreUrl(const YAML::Node& at, const SecretRef& url, const std::string& key, bool lease_ttl) {
  auto value = url.Resolve();
  if (!value.ok()) {
    Fail(at, value.error().message());
    return;
  }
  auto location = ParseStoreUrl(*value, key);
  if (!location.ok()) {
    Fail(at, location.error().message());
    return;
  }
  if (lease_ttl && location->kind != StoreKind::kPostgres) {
    Fail(at, "store.lease_ttl is for a PostgreSQL " + key + "; remove it for a SQLite file");
  }
  if (auto built = CheckStoreBuilt(*location, key); !built.ok()) Fail(at, built.error().message());
}

}  // namespace mailhook::config::internal
