#include "store/open_store.h"

#include <filesystem>
#include <string_view>
#include <utility>

#include "store/db.h"
#include "store/sqlite_store.h"

namespace mailhook::store {

namespace {
constexpr std::string_view kSqliteScheme = "sqlite:";
}  // namespace

util::Result<std::unique_ptr<Store>> OpenStore(const StoreSpec& spec) {
  if (spec.url.empty()) {
    return SqliteStore::Open(spec.state_dir, "state_dir",
                             (std::filesystem::path(spec.state_dir) / "mailhook.db").string());
  }
  std::string_view url = spec.url;
  if (url.starts_with(kSqliteScheme) && url.size() > kSqliteScheme.size()) {
    std::filesystem::path file(url.substr(kSqliteScheme.size()));
    std::string dir = file.has_parent_path() ? file.parent_path().string() : std::string(".");
    return SqliteStore::Open(dir, "the directory of the store url", file.string());
  }
  // The url may hold a password: only its scheme goes into the message.
  const size_t colon = url.find(':');
  std::string_view scheme = colon == std::string_view::npos ? std::string_view("(none)") : url.substr(0, colon);
  return StoreError("store.url", util::RetryClass::kNeedsOperator,
                    "the store url's scheme \"" + std::string(scheme) +
                        "\" is not supported; use sqlite:PATH, or no url for SQLite in state_dir");
}

StoreOpener SqliteStoreOpener(std::string state_dir) {
  return [state_dir = std::move(state_dir)] { return OpenStore({.state_dir = state_dir}); };
}

}  // namespace mailhook::store
