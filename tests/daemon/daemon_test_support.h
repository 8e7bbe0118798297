#pragma once
/// Helpers shared by the daemon unit tests: a temporary state directory and
/// a config with one account and one hook that every event is routed to.

#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>
#include <string>

#include "config/config.h"

namespace mailhook::daemon::testing {

/// A fresh temporary directory, removed afterwards.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "mh_daemon_XXXXXX").string();
    path_ = mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

/// Account "acct" watching INBOX on a host nobody dials (the tests open a
/// scripted mailbox), and hook "h" that receives every event.
inline config::Config OneAccountConfig(const std::string& state_dir,
                                       config::StartFrom start_from = config::StartFrom::kNew) {
  config::Config c;
  c.state_dir = state_dir;
  config::Account a;
  a.name = "acct";
  a.host = "127.0.0.1";
  a.username = "user";
  a.start_from = start_from;
  c.accounts.push_back(a);
  config::Hook h;
  h.name = "h";
  h.command = {"/bin/true"};
  c.hooks.push_back(h);
  return c;
}

}  // namespace mailhook::daemon::testing
