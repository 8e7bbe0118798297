#pragma once
/// FolderSelector: one entry of a target's `match.folders`, parsed once by the
/// loader and matched by the router, so both read the pattern the same way.
///
/// Syntax: `*` matches any run of characters (none included), across the
/// hierarchy delimiter too, since servers differ in it ("Support/*" matches
/// "Support/Tier1" and "Support/Tier1/Urgent"); `?` matches exactly one
/// character; every other character matches itself, case-sensitively, as
/// mailbox names are the server's. The one exception is INBOX, which is
/// case-insensitive (RFC 3501 §5.1): "inbox" selects "INBOX" and the reverse.
/// Value type; thread-safe to share.

#include <string>
#include <string_view>

namespace mailhook::config {

/// A folder name or a `*`/`?` pattern over folder names.
class FolderSelector {
 public:
  /// `pattern` as written in the config (not empty; the loader checks that).
  explicit FolderSelector(std::string pattern);

  /// True when `folder` (a mailbox name as the server lists it) is selected.
  bool Matches(std::string_view folder) const;
  /// True when the pattern has a wildcard (`*` or `?`).
  bool is_glob() const { return glob_; }
  /// The pattern as written (for messages).
  const std::string& pattern() const { return pattern_; }

  bool operator==(const FolderSelector& other) const { return pattern_ == other.pattern_; }

 private:
  std::string pattern_;
  std::string canonical_;  // pattern_ with a case-variant of INBOX written INBOX
  bool glob_ = false;
};

/// `name` with "inbox" in any case written "INBOX"; other names unchanged.
std::string CanonicalFolderName(std::string_view name);

}  // namespace mailhook::config
