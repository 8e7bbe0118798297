#include "temp_dir.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <system_error>
#include <vector>

namespace mailhook::testsupport {

TempDir::TempDir(const std::string& prefix) : TempDir(prefix, "") {}

TempDir::TempDir(const std::string& prefix, const std::string& parent) {
  const char* tmp = std::getenv("TMPDIR");
  std::string base = !parent.empty() ? parent : tmp && *tmp ? tmp : "/tmp";
  std::string templ = base + "/" + prefix + "XXXXXX";
  std::vector<char> buf(templ.begin(), templ.end());
  buf.push_back('\0');
  if (mkdtemp(buf.data()) == nullptr) {
    throw std::runtime_error("mkdtemp failed for " + templ);
  }
  path_ = buf.data();
}

TempDir::~TempDir() {
  if (path_.empty()) return;
  if (std::getenv("MAILHOOK_KEEP_TEST_DIRS") != nullptr) {
    std::cerr << "[testsupport] keeping " << path_ << "\n";
    return;
  }
  std::error_code ec;
  std::filesystem::permissions(path_, std::filesystem::perms::owner_all, ec);
  std::filesystem::remove_all(path_, ec);
}

TempDir::TempDir(TempDir&& other) noexcept : path_(std::move(other.path_)) { other.path_.clear(); }

TempDir& TempDir::operator=(TempDir&& other) noexcept {
  if (this != &other) {
    TempDir old(std::move(*this));
    path_ = std::move(other.path_);
    other.path_.clear();
  }
  return *this;
}

bool WriteFile(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << data;
  out.close();
  return static_cast<bool>(out);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace mailhook::testsupport
