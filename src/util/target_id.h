#pragma once
/// TargetId: which configured target an outbox row is for, as a value
/// (kind + name) instead of the text "webhook:<name>" / "hook:<name>" /
/// "smtp:<name>". The text form exists only where the id is stored: the
/// outbox and dead-letter `target` column (ToString when a row is written,
/// Parse when one is read).

#include <compare>
#include <optional>
#include <string>
#include <string_view>

namespace mailhook::util {

/// The kinds of delivery target; the text is the config section's singular.
enum class TargetKind { kWebhook, kHook, kSmtp };

/// "webhook", "hook" or "smtp": the prefix of the stored text, the metric
/// label name and the log key of the target.
std::string_view TargetKindName(TargetKind kind);

/// One delivery target, e.g. {kWebhook, "tickets"}.
struct TargetId {
  TargetKind kind = TargetKind::kWebhook;
  std::string name;

  static TargetId Webhook(std::string name) { return {TargetKind::kWebhook, std::move(name)}; }
  static TargetId Hook(std::string name) { return {TargetKind::kHook, std::move(name)}; }
  static TargetId Smtp(std::string name) { return {TargetKind::kSmtp, std::move(name)}; }

  /// The stored form, "<kind>:<name>" (names are [a-z0-9_-]+, so the first
  /// colon separates).
  std::string ToString() const;

  /// The inverse of ToString; nullopt for a text with an unknown kind or an
  /// empty name (a row written by a newer version, or a damaged file).
  static std::optional<TargetId> Parse(std::string_view text);

  std::string_view KindName() const { return TargetKindName(kind); }

  auto operator<=>(const TargetId&) const = default;
  bool operator==(const TargetId&) const = default;
};

}  // namespace mailhook::util
