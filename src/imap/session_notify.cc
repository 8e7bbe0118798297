// Session's account-level calls: STATUS, LIST, NOTIFY SET (RFC 5465) and the
// IDLE that turns NOTIFY's pushes into FolderEvents. All are sent under our
// own tag and read response by response (libetpan's parser keeps only the
// last `* STATUS` of a response: DESIGN.md); notify_events.h parses them.

#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>

#include <libetpan/libetpan.h>

#include "imap/notify_events.h"
#include "imap/redact.h"
#include "imap/session.h"
#include "imap/tls_stream.h"
#include "util/log.h"
#include "util/strings.h"

namespace mailhook::imap {
namespace {

using util::Error;
using util::RetryClass;

std::string Where(const SessionOptions& o) { return o.host + ":" + std::to_string(o.port); }

// Responses one command may bring, whatever the byte budget (0 = unbounded).
constexpr size_t kMaxResponsesPerCommand = 1000000;

// Server text for an error message, as ServerText(): bounded, printable,
// without our credentials.
std::string Redacted(const std::string& text, const SessionOptions& o) {
  return CredentialRedactor(o.username, o.password).Clean(text);
}

bool SameMailbox(const std::string& a, const std::string& b) {
  // INBOX is case-insensitive (RFC 3501 §5.1); the parser already folds it.
  return a == b || (util::EqualsIgnoreCase(a, "INBOX") && util::EqualsIgnoreCase(b, "INBOX"));
}

}  // namespace

util::Result<std::string> Session::ReadResponse(const std::string& what) {
  std::string response;
  for (;;) {
    char* raw = mailimap_read_line(imap_.get());
    if (!raw) return CommandError(what, MAILIMAP_ERROR_STREAM);
    std::string_view line(raw);
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
    const std::optional<uint64_t> literal = notify::TrailingLiteral(line);
    const uint64_t more = line.size() + 2 + (literal ? *literal : 0);
    if (more > notify::kMaxResponseBytes - std::min(notify::kMaxResponseBytes, response.size())) {
      return Error(util::ErrorKind::kResponseTooLarge, "imap.response_too_large", RetryClass::kBackoff,
                   "a response to " + command_ + " from " + Where(options_) + " is longer than " +
                       std::to_string(notify::kMaxResponseBytes) +
                       " bytes, the bound for one STATUS/LIST/NOTIFY line; mailhook drops the session. "
                       "The server is probably hostile or broken");
    }
    response.append(line);
    if (!literal) return response;
    response += "\r\n";
    if (util::Status s = ReadLiteral(*literal, &response); !s.ok()) return s.error();
  }
}

util::Result<std::string> Session::ResponseCommand(const std::string& what, const std::string& command,
                                                   const std::function<util::Status(const std::string&)>& on_response) {
  const std::string tag = "mh" + std::to_string(++raw_tag_);
  const std::string out = tag + " " + command + "\r\n";
  if (mailstream_write(imap_->imap_stream, out.data(), out.size()) < 0 || mailstream_flush(imap_->imap_stream) < 0) {
    return CommandError(what, MAILIMAP_ERROR_STREAM);
  }
  for (size_t n = 0; n < kMaxResponsesPerCommand; ++n) {
    auto response = ReadResponse(what);
    if (!response.ok()) return response.error();
    if (response->starts_with(tag + " ")) return response->substr(tag.size() + 1);
    if (!response->starts_with("* ")) {
      return Error("imap." + what, RetryClass::kBackoff,
                   "unexpected continuation or foreign tag in the answer to " + command_ + " from " + Where(options_));
    }
    if (util::Status s = on_response(*response); !s.ok()) return s.error();
  }
  return Error("imap." + what, RetryClass::kBackoff, "no tagged answer to " + command_ + " from " + Where(options_));
}

util::Result<std::string> Session::MailboxArgument(const std::string& name) const {
  if (auto quoted = notify::QuoteMailbox(name)) return *quoted;
  auto literal = notify::LiteralPlus(name);
  if (literal && HasCapability("LITERAL+")) return *literal;
  return Error("imap.folder_name", RetryClass::kNeedsOperator,
               "folder \"" + name + "\" cannot be sent to " + Where(options_) +
                   ": IMAP folder names are 7-bit (modified UTF-7, RFC 3501 §5.1.3) and this one has " +
                   (literal ? "8-bit characters (the server lacks LITERAL+)" : "a line break or NUL") +
                   "; write the name as the server lists it (mailhook check --connect)");
}

util::Status Session::Gather(const std::string& response, std::vector<FolderEvent>& events, size_t start) const {
  auto found = notify::EventsFrom(response);
  if (!found.ok()) return found.error();
  events.insert(events.end(), found->begin(), found->end());
  if (events.size() - start > notify::kMaxEventsPerWait) {
    return Error(util::ErrorKind::kResponseTooLarge, "imap.too_many_events", RetryClass::kBackoff,
                 "the server at " + Where(options_) + " pushed more than " + std::to_string(notify::kMaxEventsPerWait) +
                     " folder events in one wait; mailhook drops the session and resyncs every folder");
  }
  return util::Ok();
}

util::Result<FolderStatus> Session::Status(const std::string& folder) {
  auto arg = MailboxArgument(folder);
  if (!arg.ok()) return arg.error();
  BeginCommand("STATUS");
  std::optional<FolderStatus> found;
  auto reply = ResponseCommand("status", "STATUS " + *arg + " (UIDNEXT UIDVALIDITY MESSAGES)",
                               [&](const std::string& response) -> util::Status {
                                 auto status = notify::ParseStatus(response);
                                 if (!status.ok()) return status.error();
                                 if (status->has_value() && SameMailbox((*status)->name, folder)) {
                                   found = (*status)->status;  // ours; a push about it says the same
                                   return util::Ok();
                                 }
                                 // A NOTIFY push about another folder: kept.
                                 if (!notify_active_) return util::Ok();
                                 return Gather(response, pending_events_, 0);
                               });
  if (!reply.ok()) return reply.error();
  if (!reply->starts_with("OK")) {
    return Error("imap.status", RetryClass::kNeedsOperator,
                 "cannot read the status of folder \"" + folder + "\" on " + Where(options_) + ": server said \"" +
                     Redacted(*reply, options_) +
                     "\". Check the folder name in `folders` (names are case-sensitive; some servers use "
                     "\"INBOX.\" prefixes)");
  }
  if (!found) {
    return Error("imap.status", RetryClass::kBackoff,
                 "the server at " + Where(options_) + " answered STATUS of \"" + folder + "\" with OK but no STATUS");
  }
  return *found;
}

util::Result<std::vector<std::string>> Session::ListFolders() {
  BeginCommand("LIST");
  std::vector<std::string> names;
  std::set<std::string> seen;
  auto reply = ResponseCommand("list", "LIST \"\" \"*\"", [&](const std::string& response) -> util::Status {
    auto entry = notify::ParseList(response);
    if (!entry.ok()) return entry.error();
    if (!entry->has_value()) {
      // A NOTIFY push (STATUS) that came meanwhile: kept for IdleForEvents.
      return notify_active_ ? Gather(response, pending_events_, 0) : util::Ok();
    }
    const notify::ListEntry& e = **entry;
    // Our answer lists what exists; a deletion or rename here is a push.
    if (notify_active_ && (e.old_name || !e.Selectable())) {
      if (util::Status s = Gather(response, pending_events_, 0); !s.ok()) return s;
    }
    if (e.Selectable() && seen.insert(e.name).second) names.push_back(e.name);
    return util::Ok();
  });
  if (!reply.ok()) return reply.error();
  if (!reply->starts_with("OK")) {
    return Error("imap.list", RetryClass::kBackoff,
                 "LIST failed on " + Where(options_) + ": server said \"" + Redacted(*reply, options_) + "\"");
  }
  return names;
}

util::Status Session::NotifySet(const std::vector<std::string>& folders) {
  if (!HasCapability("NOTIFY")) {
    return Error("imap.notify", RetryClass::kNeedsOperator,
                 "the server at " + Where(options_) + " does not offer NOTIFY (RFC 5465); set notify: off");
  }
  std::string command = "NOTIFY SET";
  if (!folders.empty()) {
    command += " (mailboxes (";
    for (size_t i = 0; i < folders.size(); ++i) {
      auto arg = MailboxArgument(folders[i]);
      if (!arg.ok()) return arg.error();
      command += (i ? " " : "") + *arg;
    }
    // RFC 5465 §5: MessageNew needs MessageExpunge.
    command += ") (MessageNew MessageExpunge MailboxName))";
  }
  command += " (personal (MailboxName))";
  BeginCommand("NOTIFY SET");
  auto reply = ResponseCommand("notify", command, [&](const std::string& response) -> util::Status {
    return notify_active_ ? Gather(response, pending_events_, 0) : util::Ok();
  });
  if (!reply.ok()) return reply.error();
  if (!reply->starts_with("OK")) {
    return Error("imap.notify", RetryClass::kNeedsOperator,
                 "the server at " + Where(options_) + " refused NOTIFY SET for " + std::to_string(folders.size()) +
                     " folders: server said \"" + Redacted(*reply, options_) +
                     "\". Check the folder names in `folders`, or set notify: off to watch each folder on its own "
                     "connection");
  }
  notify_active_ = true;
  util::Log(util::Area::kImap).debug("imap.notify_set host={} folders={}", options_.host, folders.size());
  return util::Ok();
}

util::Result<IdleWake> Session::IdleForEvents(std::chrono::milliseconds max_wait, int wake_fd,
                                              std::vector<FolderEvent>& events) {
  const size_t start = events.size();
  if (!pending_events_.empty()) {
    events.insert(events.end(), pending_events_.begin(), pending_events_.end());
    pending_events_.clear();
    return IdleWake::kActivity;
  }
  if (!HasCapability("IDLE")) {
    return Error("imap.idle", RetryClass::kNeedsOperator,
                 "the server at " + Where(options_) + " offers NOTIFY without IDLE; set notify: off");
  }
  // One budget from IDLE to DONE's answer, as Idle().
  BeginCommand("IDLE (NOTIFY)");
  const std::string tag = "mh" + std::to_string(++raw_tag_);
  if (util::Status s = IdleEnter(tag, events, start); !s.ok()) return s.error();
  auto wake = IdleWait(tag, max_wait, wake_fd, events, start);
  if (!wake.ok()) return wake.error();
  if (util::Status s = IdleLeave(tag, *wake, events, start); !s.ok()) return s.error();
  if (*wake == IdleWake::kTimeout && events.size() > start) return IdleWake::kActivity;
  return *wake;
}

util::Status Session::IdleEnter(const std::string& tag, std::vector<FolderEvent>& events, size_t start) {
  mailstream* stream = imap_->imap_stream;
  // As Idle(): the continuation comes at once, and a stop in between would
  // leave the connection half way into IDLE; the wait below sees the stop.
  SetInterruptFd(stream, -1);
  AwaitLivenessAnswer(true);
  auto restore = [&] {
    SetInterruptFd(stream, options_.stop_fd);
    AwaitLivenessAnswer(false);
  };
  const std::string out = tag + " IDLE\r\n";
  if (mailstream_write(stream, out.data(), out.size()) < 0 || mailstream_flush(stream) < 0) {
    restore();
    return CommandError("idle", MAILIMAP_ERROR_STREAM);
  }
  for (size_t n = 0; n < kMaxResponsesPerCommand; ++n) {
    auto response = ReadResponse("idle");
    if (!response.ok()) {
      restore();
      return response.error();
    }
    if (response->starts_with("+")) break;
    if (response->starts_with(tag + " ")) {
      restore();
      return Error("imap.idle", RetryClass::kBackoff,
                   "the server at " + Where(options_) + " refused IDLE: \"" + response->substr(tag.size() + 1) + "\"");
    }
    // Pushes that came before the continuation are events like any other.
    if (util::Status s = Gather(*response, events, start); !s.ok()) {
      restore();
      return s;
    }
  }
  restore();
  return util::Ok();
}

util::Result<IdleWake> Session::IdleWait(const std::string& tag, std::chrono::milliseconds max_wait, int wake_fd,
                                         std::vector<FolderEvent>& events, size_t start) {
  mailstream* stream = imap_->imap_stream;
  const int stop_fd = options_.stop_fd;
  pollfd fds[3] = {{mailimap_idle_get_fd(imap_.get()), POLLIN, 0}, {stop_fd, POLLIN, 0}, {wake_fd, POLLIN, 0}};
  const auto deadline = std::chrono::steady_clock::now() + max_wait;
  auto read_one = [&]() -> util::Status {
    auto response = ReadResponse("idle");
    if (!response.ok()) return response.error();
    if (response->starts_with(tag + " ")) {
      return Error(
          "imap.idle", RetryClass::kBackoff,
          "the server at " + Where(options_) + " ended IDLE on its own: \"" + response->substr(tag.size() + 1) + "\"");
    }
    return Gather(*response, events, start);
  };
  for (;;) {
    // Data libetpan or OpenSSL already buffered never wakes poll(): drain it
    // first, so one wake returns the whole batch the server sent.
    while (stream->read_buffer_len > 0 || HasPendingTlsData(stream)) {
      if (util::Status s = read_one(); !s.ok()) return s.error();
    }
    if (events.size() > start) return IdleWake::kActivity;
    // Rounded up: poll() must not come back before the deadline.
    auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return IdleWake::kTimeout;
    // Negative fds are ignored by poll().
    int n = poll(fds, 3, static_cast<int>(left.count()));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error("imap.idle", RetryClass::kBackoff, std::string("poll failed: ") + strerror(errno));
    if (n == 0) continue;  // the deadline check above decides
    if (stop_fd >= 0 && (fds[1].revents & POLLIN)) return IdleWake::kStopped;
    if (fds[0].revents) {
      // `* OK Still here` and the like give no event: the wait goes on.
      if (util::Status s = read_one(); !s.ok()) return s.error();
      continue;
    }
    if (wake_fd >= 0 && (fds[2].revents & POLLIN)) return IdleWake::kWoken;
  }
}

util::Status Session::IdleLeave(const std::string& tag, IdleWake wake, std::vector<FolderEvent>& events, size_t start) {
  mailstream* stream = imap_->imap_stream;
  if (wake == IdleWake::kStopped) {
    // Let DONE through although the stop fd fired, but only briefly.
    SetInterruptFd(stream, -1);
    SetStreamTimeout(stream, std::chrono::milliseconds(2000));
  } else {
    AwaitLivenessAnswer(true);
  }
  static constexpr char kDone[] = "DONE\r\n";
  if (mailstream_write(stream, kDone, sizeof kDone - 1) < 0 || mailstream_flush(stream) < 0) {
    return CommandError("idle_done", MAILIMAP_ERROR_STREAM);
  }
  for (size_t n = 0; n < kMaxResponsesPerCommand; ++n) {
    auto response = ReadResponse("idle_done");
    if (!response.ok()) return response.error();
    if (response->starts_with(tag + " ")) {
      AwaitLivenessAnswer(false);
      if (response->compare(tag.size() + 1, 2, "OK") == 0) return util::Ok();
      return Error(
          "imap.idle_done", RetryClass::kBackoff,
          "the server at " + Where(options_) + " answered DONE with \"" + response->substr(tag.size() + 1) + "\"");
    }
    // What arrives between the wake and DONE's answer is never lost.
    if (util::Status s = Gather(*response, events, start); !s.ok()) return s;
  }
  return Error("imap.idle_done", RetryClass::kBackoff, "no tagged answer to DONE from " + Where(options_));
}

}  // namespace mailhook::imap
