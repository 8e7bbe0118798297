#include "util/target_id.h"

namespace mailhook::util {

std::string_view TargetKindName(TargetKind kind) {
  switch (kind) {
    case TargetKind::kWebhook: return "webhook";
    case TargetKind::kHook: return "hook";
    case TargetKind::kSmtp: return "smtp";
  }
  return "unknown";
}

std::string TargetId::ToString() const {
  std::string out(KindName());
  out += ':';
  out += name;
  return out;
}

std::optional<TargetId> TargetId::Parse(std::string_view text) {
  auto colon = text.find(':');
  if (colon == std::string_view::npos || colon + 1 == text.size()) return std::nullopt;
  std::string_view kind = text.substr(0, colon);
  std::string name(text.substr(colon + 1));
  for (TargetKind k : {TargetKind::kWebhook, TargetKind::kHook, TargetKind::kSmtp}) {
    if (kind == TargetKindName(k)) return TargetId{k, std::move(name)};
  }
  return std::nullopt;
}

}  // namespace mailhook::util
