#pragma once
/// Session: one authenticated IMAP connection (RFC 3501) over our verified
/// TLS transport, driven by libetpan. Owned and used by exactly one thread.
///
/// Failure model (after isync): any error from a command means the session
/// is gone. The caller throws the Session away whole and reconnects with
/// backoff; nothing is patched. Errors carry a RetryClass: kNeedsOperator for
/// bad credentials, untrusted certificates and missing folders, kBackoff for
/// network and server trouble.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"
#include "imap/mailbox.h"
#include "imap/response_code.h"
#include "mime/part_tree.h"
#include "util/result.h"

struct mailimap;  // libetpan's session; kept out of users' sight

namespace mailhook::imap {

class ProtocolTrace;

/// Closes a session's stream, then frees the session (mailimap_free alone
/// would send LOGOUT and wait a full timeout on a dead peer).
struct ImapCloser {
  void operator()(mailimap* imap) const;
};

/// Everything needed to open a session for one account.
struct SessionOptions {
  std::string account;  ///< the account's name, for the protocol trace (empty: the host)
  std::string host;
  uint16_t port = 993;
  config::TlsMode tls = config::TlsMode::kImplicit;
  bool tls_verify = true;
  std::optional<std::string> ca_file;
  std::string username;
  util::Secret password;
  config::AuthMethod auth = config::AuthMethod::kLogin;
  std::chrono::milliseconds timeout{60000};  ///< connect and per-read timeout
  /// The wait for the answer to IDLE (its continuation), DONE and NOOP, the
  /// liveness round trips (account liveness_interval): a live server answers
  /// them at once, so a black-holed session is given up sooner than
  /// `timeout`. 0: `timeout`.
  std::chrono::milliseconds answer_deadline{0};
  int stop_fd = -1;  ///< readable = abandon any blocking operation (shutdown)
  /// The most bytes a FetchMeta/FetchMetaLight response may make us read
  /// (and libetpan buffer and parse), counted in the transport from the
  /// command's start to its end, and the most of them outside literals (the
  /// part libetpan parses into objects; header blocks come as literals, which
  /// it only copies). Past either the command fails with
  /// `imap.response_too_large` (ErrorKind::kResponseTooLarge) and the session
  /// is thrown away. 0: no bound.
  uint64_t max_meta_response_bytes = kDefaultMaxMetaResponseBytes;
  uint64_t max_meta_syntax_bytes = kDefaultMaxMetaSyntaxBytes;
  /// The same bounds for every other command (SEARCH, SELECT, IDLE, whole
  /// sections, BINARY...), except FetchSectionPart: its bound is the length
  /// asked for plus kPartialSlack, of which kPartialSlack outside literals.
  uint64_t max_response_bytes = kDefaultMaxResponseBytes;
  uint64_t max_syntax_bytes = kDefaultMaxSyntaxBytes;

  /// Measured with tests/imap/bodystructure_memory.cc (libetpan 1.9.4, peak
  /// heap per byte of response outside literals): 14 for a Dovecot
  /// BODYSTRUCTURE of empty text parts, 21 for the smallest legal parts, 55
  /// for chains of nested multiparts (6 bytes a level); a 300,000-part
  /// multipart (22 MB) peaked at 300 MB in libetpan, 490 MB with our then
  /// unbounded conversion. Literals cost ~3 bytes per byte (libetpan's copy,
  /// rounded up to a power of two, and ours). Our conversion now lists at
  /// most kMaxBodyStructureParts, so a meta response at these bounds peaks
  /// under ~100 MB: 1.5 MiB x 55 + 8 MiB of literals x 3 at worst.
  static constexpr uint64_t kDefaultMaxMetaResponseBytes = 8ull << 20;
  static constexpr uint64_t kDefaultMaxMetaSyntaxBytes = 3ull << 19;  // 1.5 MiB
  /// 16 MiB, 4 MiB outside literals: a SEARCH of ~500,000 UIDs, a text body
  /// or a whole message of 16 MiB held twice. A hostile answer at the bound
  /// costs up to ~250 MB.
  static constexpr uint64_t kDefaultMaxResponseBytes = 16ull << 20;
  static constexpr uint64_t kDefaultMaxSyntaxBytes = 4ull << 20;
  /// What a partial fetch may read beyond the length asked for: the FETCH
  /// line, the tagged reply and unsolicited responses (EXISTS, flag changes).
  static constexpr uint64_t kPartialSlack = 1ull << 20;

  /// The account's settings with `password` (account.password, resolved by the
  /// caller just before this login: a token command gives a fresh token).
  static SessionOptions FromAccount(const config::Account& account, util::Secret password, int stop_fd);
};

/// One live IMAP session. Not thread-safe; destroying it closes the socket
/// without waiting for the server.
class Session : public Mailbox {
 public:
  /// Connects, starts TLS as configured, verifies the server and logs in.
  static util::Result<std::unique_ptr<Session>> Open(const SessionOptions& options);
  ~Session() override;
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  util::Result<MailboxInfo> Select(const std::string& folder) override;
  /// UIDs >= from_uid, ascending (RFC 3501 §6.4.4 `UID SEARCH UID n:*`,
  /// filtered: `n:*` also matches the last message when n > max UID).
  /// from_uid 0 is what `last_uid + 1` wraps to after UID 4294967295: no UID
  /// can follow that one (RFC 3501 §2.3.1.1: UIDs are 32-bit and a server that
  /// runs out must change UIDVALIDITY), so the answer is empty and nothing is
  /// sent. Ask for 1 to list every message.
  util::Result<std::vector<uint32_t>> SearchUidsFrom(uint32_t from_uid) override;
  /// UIDs in [lo, hi], ascending (`UID SEARCH UID lo:hi`): a window, so no
  /// answer is larger than one response may be in a folder of millions.
  util::Result<std::vector<uint32_t>> SearchUidRange(uint32_t lo, uint32_t hi) override;
  /// UIDs of messages without \Seen, ascending.
  util::Result<std::vector<uint32_t>> SearchUnseen() override;
  /// UID FETCH (UID FLAGS RFC822.SIZE BODYSTRUCTURE BODY.PEEK[HEADER]).
  /// Messages expunged meanwhile are simply absent from the result.
  /// Items a server splits over several FETCH responses (RFC 3501 §7.4.2)
  /// are merged per message.
  util::Result<std::vector<MessageMeta>> FetchMeta(const std::vector<uint32_t>& uids) override;
  /// UID FETCH (UID FLAGS RFC822.SIZE BODY.PEEK[HEADER]): FetchMeta without
  /// BODYSTRUCTURE (has_structure false), for a message whose structure is
  /// too large to fetch; the caller reads it whole and parses it itself.
  util::Result<std::vector<MessageMeta>> FetchMetaLight(const std::vector<uint32_t>& uids) override;
  /// UID FETCH (UID FLAGS RFC822.SIZE BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]):
  /// `header` holds only the Message-ID field (has_structure false).
  util::Result<std::vector<MessageMeta>> FetchMatchMeta(const std::vector<uint32_t>& uids) override;
  /// BODY.PEEK[section] (never sets \Seen). The section readers below fail
  /// with ErrorKind::kVanished (`imap.expunged`) when the message was expunged
  /// while being read.
  util::Result<std::string> FetchSection(uint32_t uid, const std::string& section) override;
  /// `length` bytes of BODY[section] from `offset` (BODY.PEEK[section]<offset.length>,
  /// RFC 3501 §6.4.5); fewer at the end, empty past it. Large bodies are read in
  /// such pieces so neither libetpan's response buffer nor ours ever holds them whole.
  /// Section "" is the whole message (BODY.PEEK[]<offset.length>). A server
  /// answering more than `length` bytes is refused (imap.partial_too_long), and
  /// the response may not exceed length + kPartialSlack bytes.
  util::Result<std::string> FetchSectionPart(uint32_t uid, const std::string& section, uint32_t offset,
                                             uint32_t length) override;
  /// BODY.PEEK[section.MIME].
  util::Result<std::string> FetchMimeHeaders(uint32_t uid, const std::string& section) override;
  /// BINARY.PEEK[section] (RFC 3516): the part's body with its transfer
  /// encoding undone by the server, every byte intact (BODY[] cannot carry
  /// NUL: RFC 3501 §4.3; Dovecot sends 0x80 instead). nullopt when the server
  /// lacks BINARY or cannot decode the part (the caller then uses BODY[]).
  /// The body grows as its bytes arrive (never sized from the announced
  /// literal), within max_response_bytes.
  util::Result<std::optional<std::string>> FetchBinary(uint32_t uid, const std::string& section) override;
  /// BINARY.SIZE[section] (RFC 3516): the decoded size, computed by the
  /// server. nullopt when the server lacks BINARY or cannot decode the part.
  util::Result<std::optional<uint64_t>> FetchBinarySize(uint32_t uid, const std::string& section) override;

  /// UID STORE +FLAGS.SILENT: system flags ("\\Seen") and keywords ("$Done").
  /// A NO from the server is kNeedsOperator; a broken session kBackoff.
  util::Status AddFlags(uint32_t uid, const std::vector<std::string>& flags) override;
  /// Moves one message: UID MOVE (RFC 6851) when offered, else UID COPY,
  /// \Deleted and UID EXPUNGE of that UID only (RFC 4315). Without UIDPLUS
  /// the copy is flagged \Deleted but not expunged (a plain EXPUNGE would
  /// remove other clients' deleted messages too).
  util::Status Move(uint32_t uid, const std::string& folder) override;

  /// Enters IDLE (RFC 2177), waits for server activity, max_wait or the stop
  /// fd, then sends DONE. Servers without IDLE get a NOOP after max_wait.
  /// `wake_fd` (optional) ends the wait early, as kWoken: the watcher has
  /// work that needs the session (post-actions).
  /// IDLE's continuation and DONE's answer are awaited at most answer_deadline. An EXISTS that comes
  /// with DONE's answer (after the wait ended) makes a kTimeout kActivity.
  util::Result<IdleWake> Idle(std::chrono::milliseconds max_wait, int wake_fd = -1) override;
  /// Its answer is awaited at most answer_deadline.
  util::Status Noop() override;

  /// Best-effort LOGOUT bounded by a short timeout, then closes. Safe to call
  /// after the stop fd fired.
  void Logout() override;

  /// Capabilities as advertised (upper-case), for `check --connect` and moves.
  bool HasCapability(const std::string& name) const override;
  /// Sent as `STATUS name (UIDNEXT UIDVALIDITY MESSAGES)` and read by hand
  /// (session_notify.cc). NO/BAD is kNeedsOperator naming the folder.
  util::Result<FolderStatus> Status(const std::string& folder) override;
  /// `LIST "" "*"`: names as sent (quoted, literal or atom; INBOX in any case
  /// as "INBOX"), without \NoSelect and \NonExistent ones, each once.
  util::Result<std::vector<std::string>> ListFolders() override;
  /// `NOTIFY SET (mailboxes (f1 f2 ...) (MessageNew MessageExpunge
  /// MailboxName)) (personal (MailboxName))`: MailboxName also in the first
  /// group, so a server that applies only the first matching group still
  /// reports a watched folder's deletion or rename. No folders: the personal
  /// group alone. Refused by the server (or not offered): kNeedsOperator.
  util::Status NotifySet(const std::vector<std::string>& folders) override;
  /// IDLE read by hand: each `* STATUS`/`* LIST` the server pushes becomes
  /// FolderEvents (notify_events.h). Returns kActivity once events arrived
  /// and what was already buffered is drained, else kTimeout, kStopped or
  /// kWoken; the lines that come while DONE is answered are appended too (so
  /// events may come with any wake). Events seen during Status/ListFolders/
  /// NotifySet on a NOTIFY connection are kept and returned first, at once.
  util::Result<IdleWake> IdleForEvents(std::chrono::milliseconds max_wait, int wake_fd,
                                       std::vector<FolderEvent>& events) override;

  // The fetch pipeline (issue 8).

  /// UID FETCH <set> (UID BODY.PEEK[]): every message whole, in one
  /// command, within max_response_bytes (the caller sizes the set by
  /// RFC822.SIZE). Expunged messages are absent; items a server splits over
  /// several FETCH responses are merged per message.
  util::Result<std::map<uint32_t, std::string>> FetchWholeMessages(const std::vector<uint32_t>& uids) override;
  /// UID FETCH uid (BINARY.SIZE[s1] BINARY.SIZE[s2] ...): one round trip for
  /// the sizes of several parts (RFC 3516 §4.2). Without BINARY, or when the
  /// server refuses (NO/BAD: UNKNOWN-CTE), the sizes are absent and the
  /// caller measures or estimates them itself.
  util::Result<std::map<std::string, uint64_t>> FetchBinarySizes(uint32_t uid,
                                                                 const std::vector<std::string>& sections) override;

 private:
  explicit Session(mailimap* imap, SessionOptions options);
  util::Status Login();
  /// AUTHENTICATE OAUTHBEARER (RFC 7628; libetpan has no such mechanism),
  /// sent by hand: with SASL-IR when offered, else after the continuation
  /// (session_oauthbearer.cc).
  util::Status LoginOauthbearer();
  /// The error for a refused login: `code` the response code (RFC 5530) or "",
  /// `server` the redacted server text.
  util::Error LoginRefused(const std::string& code, const std::string& server) const;
  /// The stream timeout for a liveness answer (answer_deadline), or back to `timeout`.
  void AwaitLivenessAnswer(bool short_deadline);
  /// STARTTLS, refused when the server sent anything after its OK (injection).
  util::Status StartTlsCommand();
  /// A command's response budget: all bytes, and those outside literals.
  struct Budget {
    uint64_t bytes = 0;   ///< 0: no bound
    uint64_t syntax = 0;  ///< 0: no bound
  };
  /// Starts the response budget of the command about to be sent (nullopt:
  /// max_response_bytes and max_syntax_bytes); `command` names it in errors.
  void BeginCommand(std::string command, std::optional<Budget> budget = std::nullopt);
  /// The error for a failed command: imap.response_too_large when the budget
  /// ran out, else imap.<what> with the (redacted) server text.
  util::Error CommandError(const std::string& what, int code);
  /// Logs the [ALERT] of the last response, once per session (response_code.h).
  void NoteAlert();
  /// The server's last response text, bounded, without control characters
  /// and without anything of our credentials (a server may echo LOGIN).
  std::string ServerText() const;
  util::Result<std::vector<MessageMeta>> FetchMetaItems(const std::vector<uint32_t>& uids, bool structure,
                                                        bool message_id_only = false);
  /// Sends `command` under a tag of our own, for responses libetpan cannot
  /// parse (BINARY, BINARY.SIZE), hands each untagged line (CRLF stripped)
  /// to `on_line`, and returns the tagged reply after the tag ("OK ...",
  /// "NO ..."). An error from `on_line` ends it (the session is then thrown away).
  util::Result<std::string> RawCommand(const std::string& what, const std::string& command,
                                       const std::function<util::Status(const std::string&)>& on_line);
  /// Reads the `size` bytes of a literal announced by the line just read,
  /// appended to `into` (nullptr: dropped), within the command's budget.
  util::Status ReadLiteral(uint64_t size, std::string* into);
  /// A raw UID FETCH of `fetch_items` for `uid`: the value of `item` in the
  /// response about that UID (a literal's bytes, a quoted string's contents
  /// or an atom), nullopt when absent or NIL; `tagged` gets the tagged reply.
  util::Result<std::optional<std::string>> RawFetchItem(uint32_t uid, const std::string& what,
                                                        const std::string& fetch_items, const std::string& item,
                                                        std::string* tagged);
  /// imap.response_too_large for the current command: its response `why`
  /// (e.g. "passed") the budget.
  util::Error TooLargeError(const std::string& why) const;

  // Account-level commands read by hand (session_notify.cc).
  /// One whole untagged or tagged response: a line, and for each literal it
  /// ends with the literal's bytes and the line going on after them, CRLF
  /// stripped (the form notify_events.h parses), within notify::kMaxResponseBytes.
  util::Result<std::string> ReadResponse(const std::string& what);
  /// RawCommand with whole responses (ReadResponse) handed to `on_response`.
  util::Result<std::string> ResponseCommand(const std::string& what, const std::string& command,
                                            const std::function<util::Status(const std::string&)>& on_response);
  /// `name` as an astring argument: quoted, or a LITERAL+ literal when it
  /// has 8-bit octets and the server offers LITERAL+.
  util::Result<std::string> MailboxArgument(const std::string& name) const;
  /// Appends what `response` says about folders to `events` (at most
  /// notify::kMaxEventsPerWait after `start`).
  util::Status Gather(const std::string& response, std::vector<FolderEvent>& events, size_t start) const;
  /// IdleForEvents' phases: IDLE up to the continuation, the wait, DONE up
  /// to the tagged reply; untagged responses of each become events.
  util::Status IdleEnter(const std::string& tag, std::vector<FolderEvent>& events, size_t start);
  util::Result<IdleWake> IdleWait(const std::string& tag, std::chrono::milliseconds max_wait, int wake_fd,
                                  std::vector<FolderEvent>& events, size_t start);
  util::Status IdleLeave(const std::string& tag, IdleWake wake, std::vector<FolderEvent>& events, size_t start);

  // Declared before imap_ so it outlives the stream that logs into it.
  std::unique_ptr<ProtocolTrace> trace_;  // only at log level trace (protocol_trace.h)
  // Declared before imap_: the stream writes a BYE greeting's text here
  // (ScreenByeGreeting).
  std::optional<std::string> bye_greeting_;
  std::unique_ptr<mailimap, ImapCloser> imap_;
  SessionOptions options_;
  AlertLog alerts_;                          // [ALERT] texts logged on this session
  uint32_t raw_tag_ = 0;                     // for RawCommand
  std::string command_;                      // what BeginCommand named, for errors
  Budget budget_;                            // what BeginCommand allowed
  bool notify_active_ = false;               // NotifySet succeeded: untagged STATUS/LIST are events
  std::vector<FolderEvent> pending_events_;  // seen outside IdleForEvents, returned by its next call
};

}  // namespace mailhook::imap
