#include "config/store_url.h"

#include <cctype>
#include <string>

#include "util/strings.h"

namespace mailhook::config {
namespace {

constexpr std::string_view kForms =
    "write postgresql://USER@HOST:5432/DB (or postgres://) for PostgreSQL or sqlite:/ABSOLUTE/PATH for a SQLite "
    "file, or remove it to keep SQLite in state_dir";

util::Error StoreError(std::string_view key, const std::string& what) {
  return util::Error("config.store", util::RetryClass::kNeedsOperator, std::string(key) + ": " + what);
}

// The scheme of `url` (RFC 3986: ALPHA *(ALPHA / DIGIT / "+" / "-" / ".")
// before ':'), but only when a '/' follows the colon: in "user:pw@host"
// (a URL missing its scheme) the text before ':' is a user name and the
// password follows, so nothing of such a value is quoted back.
std::string_view SchemeOf(std::string_view url) {
  const size_t colon = url.find(':');
  if (colon == std::string_view::npos || colon == 0 || colon > 32) return {};
  if (colon + 1 >= url.size() || url[colon + 1] != '/') return {};
  if (!std::isalpha(static_cast<unsigned char>(url[0]))) return {};
  for (size_t i = 1; i < colon; ++i) {
    const char c = url[i];
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '+' && c != '-' && c != '.') return {};
  }
  return url.substr(0, colon);
}

util::Result<StoreLocation> SqliteFile(std::string_view path, std::string_view key) {
  if (path.empty() || path.front() != '/') {
    return StoreError(key, "sqlite: needs an absolute path to the database file, e.g. sqlite:/data/mailhook.db");
  }
  StoreLocation location;
  location.sqlite_file = std::filesystem::path(path);
  return location;
}

}  // namespace

util::Result<StoreLocation> ParseStoreUrl(const util::Secret& url, std::string_view key) {
  const std::string& text = url.reveal();
  for (std::string_view prefix : {std::string_view("postgresql://"), std::string_view("postgres://")}) {
    if (text.starts_with(prefix)) {
      StoreLocation location;
      location.kind = StoreKind::kPostgres;
      location.url = url;
      return location;
    }
  }
  if (text.starts_with("sqlite:")) return SqliteFile(std::string_view(text).substr(7), key);
  const std::string_view scheme = SchemeOf(text);
  if (scheme.empty()) return StoreError(key, "does not start with a scheme mailhook knows; " + std::string(kForms));
  const std::string lower = util::Lower(scheme);
  if (lower == "postgresql" || lower == "postgres" || lower == "sqlite") {
    return StoreError(key, "the scheme \"" + std::string(scheme) + "\" must be written in lower case (" + lower + ":)");
  }
  return StoreError(
      key, "the scheme \"" + std::string(scheme) + "\" is not a store mailhook can use; " + std::string(kForms));
}

util::Status CheckStoreBuilt(const StoreLocation& location, std::string_view key) {
  if (location.kind == StoreKind::kPostgres) {
#ifdef MAILHOOK_HAVE_PGSTORE
    return util::Ok();
#else
    return StoreError(key,
                      "this mailhook was built without PostgreSQL (libpq-dev was missing at build time); "
                      "install libpq-dev and rebuild, or remove " +
                          std::string(key) + " to use SQLite in state_dir");
#endif
  }
  if (!location.sqlite_file.empty()) {
    // The state_dir lock keeps two daemons off one database; a file elsewhere
    // would escape it (two daemons, every event twice).
    return StoreError(key,
                      "sqlite:PATH is not supported by this build yet (issue #11); set state_dir to the "
                      "directory of the database (mailhook.db) and remove " +
                          std::string(key));
  }
  return util::Ok();
}

std::string_view StoreUrlKey(const StoreConfig& store) {
  if (!store.url) return "store.url";
  switch (store.url->kind()) {
    case SecretRef::Kind::kFile: return "store.url_file";
    case SecretRef::Kind::kCommand: return "store.url_command";
    case SecretRef::Kind::kInline: break;
  }
  return "store.url";
}

util::Result<StoreLocation> ResolveStore(const StoreConfig& store) {
  if (!store.url) return StoreLocation{};
  auto value = store.url->Resolve();
  if (!value.ok()) return value.error();
  const bool command = store.url->kind() == SecretRef::Kind::kCommand;
  return ParseStoreUrl(*value, command ? "the output of store.url_command" : StoreUrlKey(store));
}

}  // namespace mailhook::config
