#pragma once
/// The HTTP header names mailhook sets itself on a webhook request (Standard
/// Webhooks signing, body framing, connection handling). The one list: the
/// loader refuses them under `headers:`, the webhook target never lets a
/// configured one through, so `check` and `run` agree on it.

#include <string_view>

namespace mailhook::config {

/// True for webhook-id, webhook-timestamp, webhook-signature, content-type,
/// content-length, host, user-agent and connection, in any case.
bool IsReservedHeader(std::string_view name);

}  // namespace mailhook::config
