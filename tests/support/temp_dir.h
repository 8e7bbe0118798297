#pragma once
/// TempDir: a private directory under $TMPDIR (or /tmp) removed with its
/// contents on destruction (made writable first: tests make it read-only), unless MAILHOOK_KEEP_TEST_DIRS is set in the
/// environment (then its path is printed to stderr for post-mortems).

#include <string>

namespace mailhook::testsupport {

/// An owned temporary directory. Not copyable; movable. Not thread-safe.
class TempDir {
 public:
  /// Creates "<tmp>/<prefix>XXXXXX". Throws std::runtime_error if mkdtemp
  /// fails (a broken test environment, not an expected failure).
  explicit TempDir(const std::string& prefix = "mailhook-test-");
  /// Creates "<parent>/<prefix>XXXXXX" (e.g. on a tmpfs); an empty parent
  /// means $TMPDIR (or /tmp), as above.
  TempDir(const std::string& prefix, const std::string& parent);
  ~TempDir();
  TempDir(TempDir&& other) noexcept;
  TempDir& operator=(TempDir&& other) noexcept;
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  /// path()/name, without creating anything.
  std::string Sub(const std::string& name) const { return path_ + "/" + name; }
  std::string operator/(const std::string& name) const { return Sub(name); }

 private:
  std::string path_;
};

/// Writes `data` to `path` (truncating). Returns false on any I/O error.
bool WriteFile(const std::string& path, const std::string& data);
/// Reads the whole file; empty string if it cannot be read.
std::string ReadFile(const std::string& path);

}  // namespace mailhook::testsupport
