#include "daemon/deadletters_command.h"

#include <algorithm>
#include <chrono>
#include <ctime>

#include "daemon/configured_store.h"
#include "store/store.h"

namespace mailhook::daemon {
namespace {

std::string Iso(store::TimePoint t) {
  std::time_t tt = store::Clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace

int RunDeadLettersCommand(const config::Config& config, const std::string& action, const std::vector<std::string>& ids,
                          std::ostream& out) {
  std::vector<int64_t> numeric;
  for (const auto& id : ids) {
    try {
      size_t used = 0;
      numeric.push_back(std::stoll(id, &used));
      if (used != id.size()) throw std::invalid_argument(id);
    } catch (const std::exception&) {
      out << "not a dead letter id: \"" << id << "\" (ids are the numbers `deadletters list` prints)\n";
      return 2;
    }
  }
  auto chosen = ConfigureStore(config);
  if (!chosen.ok()) {
    out << "cannot open the store: " << chosen.error().message() << "\n";
    return 1;
  }
  auto store = chosen->open();
  if (!store.ok()) {
    out << "cannot open the store: " << store.error().message() << "\n";
    return 1;
  }
  if (action == "list") {
    auto list = (*store)->dead_letters().ListInfo();
    if (!list.ok()) {
      out << list.error().message() << "\n";
      return 1;
    }
    for (const auto& d : *list) {
      if (!numeric.empty() && std::find(numeric.begin(), numeric.end(), d.id) == numeric.end()) continue;
      out << d.id << "\t" << d.event_id << "\t" << d.target << "\t" << d.account << "/" << d.folder << "\tuid=" << d.uid
          << "\tattempts=" << d.attempts << "\tfailed_at=" << Iso(d.failed_at) << "\t" << d.last_error << "\n";
    }
    out << list->size() << " dead letter(s)\n";
    return 0;
  }
  util::Result<int64_t> n = int64_t{0};
  if (action == "replay") {
    n = numeric.empty() ? (*store)->dead_letters().ReplayAll() : (*store)->dead_letters().Replay(numeric);
  } else {
    n = numeric.empty() ? (*store)->dead_letters().DropAll() : (*store)->dead_letters().Drop(numeric);
  }
  if (!n.ok()) {
    out << n.error().message() << "\n";
    return 1;
  }
  out << (action == "replay" ? "replayed " : "dropped ") << *n << " dead letter(s)\n";
  return 0;
}

}  // namespace mailhook::daemon
