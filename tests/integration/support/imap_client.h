#pragma once
/// ImapClient: the TEST side's own IMAP client (libetpan over plain TCP with
/// LOGIN), independent of the product's IMAP code, to put messages into a
/// test server and to check what the daemon did to them afterwards.

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "util/result.h"

namespace mailhook::testsupport {

class DovecotServer;

/// UIDVALIDITY, UIDNEXT and message count of a folder (RFC 3501 §6.3.10).
struct FolderStatus {
  uint32_t uidvalidity = 0;
  uint32_t uidnext = 0;
  uint32_t messages = 0;
};

/// Stateless client: each call opens its own session (connect, LOGIN, command,
/// LOGOUT), so it keeps working across server restarts and is safe to use
/// from several threads. Failures carry libetpan's code and the server's
/// last response text.
class ImapClient {
 public:
  /// Talks to 127.0.0.1:imap_port() of `server` with its user passwords.
  explicit ImapClient(const DovecotServer& server);
  /// Talks to host:port; `users` are name/password pairs.
  ImapClient(std::string host, int port, std::vector<std::pair<std::string, std::string>> users);

  /// APPENDs a message (CRLF line ends are added where missing) and returns
  /// its UID (from UIDPLUS APPENDUID, RFC 4315 §3). flags: "\\Seen", "$Label".
  util::Result<uint32_t> Append(const std::string& user, const std::string& folder, const std::string& rfc822,
                                const std::vector<std::string>& flags = {}) const;
  /// Append for a server a test has just disturbed (its session processes
  /// killed): an APPEND that fails is tried again on a new connection, at
  /// most `attempts` times in all, but only when the message did not arrive
  /// (the folder's UIDNEXT did not move), so it is never stored twice; one
  /// that arrived all the same (UIDNEXT moved by one) gives that UID. For a
  /// folder no one else appends to meanwhile. Each failure is written to
  /// stderr with its cause; the last error is returned. Before each attempt it
  /// waits (up to 10 s) until the server opens a session again.
  util::Result<uint32_t> AppendRetrying(const std::string& user, const std::string& folder, const std::string& rfc822,
                                        int attempts = 5) const;
  util::Status CreateFolder(const std::string& user, const std::string& folder) const;
  util::Status DeleteFolder(const std::string& user, const std::string& folder) const;
  /// Every folder name of the user (LIST "" "*").
  util::Result<std::vector<std::string>> ListFolders(const std::string& user) const;
  /// All UIDs in the folder, ascending.
  util::Result<std::vector<uint32_t>> ListUids(const std::string& user, const std::string& folder) const;
  /// The flags of one message ("\\Seen", "\\Recent", keywords). Error if the
  /// UID does not exist.
  util::Result<std::vector<std::string>> Flags(const std::string& user, const std::string& folder, uint32_t uid) const;
  util::Status AddFlags(const std::string& user, const std::string& folder, uint32_t uid,
                        const std::vector<std::string>& flags) const;
  /// The full message (BODY.PEEK[], so \\Seen is not set).
  util::Result<std::string> Fetch(const std::string& user, const std::string& folder, uint32_t uid) const;
  /// Sets \\Deleted on the UID and EXPUNGEs the folder.
  util::Status Expunge(const std::string& user, const std::string& folder, uint32_t uid) const;
  util::Result<FolderStatus> Status(const std::string& user, const std::string& folder) const;
  /// The full text of every message in the folder for which `match` is true.
  util::Result<std::vector<std::string>> FindMessages(const std::string& user, const std::string& folder,
                                                      const std::function<bool(const std::string&)>& match) const;
  /// Waits until a message for which `match` is true is in the folder (put
  /// there by another process, e.g. delivered by an MTA) and returns its full
  /// text. Polls every 50 ms: the server offers nothing to block on without
  /// an IDLE session of our own. An Error on timeout.
  util::Result<std::string> WaitForMessage(const std::string& user, const std::string& folder,
                                           const std::function<bool(const std::string&)>& match,
                                           std::chrono::milliseconds timeout) const;

 private:
  std::string PasswordOf(const std::string& user) const;

  std::string host_;
  int port_;
  std::vector<std::pair<std::string, std::string>> users_;
};

/// Converts bare LF line ends to CRLF (messages on disk often use LF; IMAP
/// and RFC 5322 want CRLF).
std::string ToCrlf(const std::string& text);

}  // namespace mailhook::testsupport
