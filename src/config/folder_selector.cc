#include "config/folder_selector.h"

#include <cctype>

namespace mailhook::config {
namespace {

// Wildcard match with one backtrack point: on a mismatch after a `*`, the
// star takes one more character. Linear in practice, quadratic at worst
// (folder names are short).
bool GlobMatch(std::string_view pattern, std::string_view text) {
  size_t p = 0, t = 0;
  size_t star = std::string_view::npos, resume = 0;
  while (t < text.size()) {
    if (p < pattern.size() && (pattern[p] == '?' || pattern[p] == text[t])) {
      ++p;
      ++t;
    } else if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      resume = t;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      t = ++resume;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

}  // namespace

std::string CanonicalFolderName(std::string_view name) {
  static constexpr std::string_view kInbox = "INBOX";
  if (name.size() != kInbox.size()) return std::string(name);
  for (size_t i = 0; i < name.size(); ++i) {
    if (std::toupper(static_cast<unsigned char>(name[i])) != kInbox[i]) return std::string(name);
  }
  return std::string(kInbox);
}

FolderSelector::FolderSelector(std::string pattern)
    : pattern_(std::move(pattern)),
      canonical_(CanonicalFolderName(pattern_)),
      glob_(pattern_.find_first_of("*?") != std::string::npos) {}

bool FolderSelector::Matches(std::string_view folder) const {
  const std::string name = CanonicalFolderName(folder);
  return glob_ ? GlobMatch(canonical_, name) : canonical_ == name;
}

}  // namespace mailhook::config
