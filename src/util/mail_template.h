#pragma once
/// MailTemplate: the small template language of `smtp` targets (`to`, `cc`,
/// `subject`, `text`, `html`), filled from an event. Safe by construction:
/// the only construct is a field reference, so a template can neither run
/// code nor loop; what a field renders to is escaped for where it goes.
///
/// Syntax: `{{path}}` (spaces inside the braces allowed: `{{ message.subject }}`);
/// `{{{{` writes a literal `{{`; everything else is literal text. Known paths
/// are KnownFields(). Numbers render in decimal; an address list renders as
/// `Name <address>, …` (a name with RFC 5322 specials quoted, so the text
/// parses back as an address list); `message.from.name` / `.address` (also
/// for to, cc, reply_to) are the parts of the list's FIRST address; a field
/// that is missing or null in the event renders as "".
///
/// Compiled once at config load (errors then name the field and the known
/// ones); Render is const and thread-safe.

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "util/result.h"

namespace mailhook::util {

/// A compiled template; cheap to copy.
class MailTemplate {
 public:
  /// How field values are escaped (literal text is the operator's and is
  /// kept, except that kHeader drops controls from it too).
  enum class Escape {
    kHeader,  ///< CR, LF and TAB become spaces, other controls are removed (no header injection)
    kText,    ///< as is
    kHtml,    ///< & < > " ' as entities
  };

  /// Output bounds: a rendering is cut (on a UTF-8 character boundary) at
  /// kMaxHeaderBytes in kHeader mode and kMaxBodyBytes otherwise. Bodies in
  /// events are already bounded by limits.max_text_bytes; this bounds a
  /// template that repeats them.
  static constexpr size_t kMaxHeaderBytes = 16 << 10;
  static constexpr size_t kMaxBodyBytes = 16 << 20;

  /// Parses `source`. Errors (code "config.template", kNeedsOperator): an
  /// unclosed `{{`, an empty `{{}}`, an unknown field — each naming the
  /// position (1-based byte offset) and, for a field, the known ones.
  static util::Result<MailTemplate> Compile(std::string_view source, Escape escape);

  /// Fills the template from an event (CONTRACT.md "Event"). Never fails.
  std::string Render(const nlohmann::json& event) const;

  /// Compile(source, kHeader) for a `to:` or `cc:` template, which may use
  /// only address fields (message.from|to|cc|reply_to, or their .address):
  /// a name or a subject rendered into an address list could add recipients
  /// ("x <attacker@example.org>, y").
  static util::Result<MailTemplate> CompileAddresses(std::string_view source);

  /// The field paths a template may use, in documentation order.
  static const std::vector<std::string_view>& KnownFields();

 private:
  struct Piece {
    std::string literal;  // written first
    int field = -1;       // index into the field table, or -1 for none
  };

  MailTemplate(std::vector<Piece> pieces, Escape escape) : pieces_(std::move(pieces)), escape_(escape) {}

  std::vector<Piece> pieces_;
  Escape escape_;
};

}  // namespace mailhook::util
