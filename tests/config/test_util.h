#pragma once
/// Helpers for the config tests: a temporary directory and error matchers.

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "config/config.h"
#include "temp_dir.h"

namespace mailhook::config::testing {

/// A directory under $TMPDIR, removed with everything in it on destruction
/// (a testsupport::TempDir with a filesystem::path and a Write helper).
class TempDir {
 public:
  const std::filesystem::path& path() const { return path_; }
  std::string Write(const std::string& name, const std::string& content) const {
    std::ofstream(path_ / name, std::ios::binary) << content;
    return (path_ / name).string();
  }

 private:
  testsupport::TempDir dir_{"mh-config-"};
  std::filesystem::path path_{dir_.path()};
};

/// All errors, one per line, for failure messages.
inline std::string Dump(const LoadResult& r) {
  std::string out;
  for (const auto& e : r.errors) out += e.ToString() + "\n";
  return out;
}

/// Whether an error at line:col contains `text` (col 0: any column).
inline bool HasError(const LoadResult& r, int line, int col, const std::string& text) {
  for (const auto& e : r.errors) {
    if (e.line == line && (col == 0 || e.column == col) && e.message.find(text) != std::string::npos) {
      return true;
    }
  }
  return false;
}

/// A secret's value as a use site would get it (reads the file, runs the
/// command), or "<error: ...>".
inline std::string Reveal(const SecretRef& ref) {
  auto value = ref.Resolve();
  return value.ok() ? value->reveal() : "<error: " + value.error().message() + ">";
}

/// Sets an environment variable for one test.
class ScopedEnv {
 public:
  ScopedEnv(std::string name, const std::string& value) : name_(std::move(name)) {
    ::setenv(name_.c_str(), value.c_str(), 1);
  }
  ~ScopedEnv() { ::unsetenv(name_.c_str()); }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  std::string name_;
};

}  // namespace mailhook::config::testing
