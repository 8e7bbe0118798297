#pragma once
/// Mailbox: the IMAP calls a folder watcher makes on one selected folder,
/// as an interface. imap::Session is the real one (libetpan over TLS);
/// tests/daemon/scripted_mailbox.h is a scripted fake. No libetpan type
/// appears here.
///
/// Failure model (as Session's): any error from a call means the session is
/// gone; the caller throws the Mailbox away whole and opens a new one.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "mime/part_tree.h"
#include "util/result.h"

namespace mailhook::imap {

struct SessionOptions;  // session.h: where and how to log in

/// What SELECT reported.
struct MailboxInfo {
  uint32_t uidvalidity = 0;
  uint32_t uidnext = 0;  ///< 0 when the server did not say
  uint32_t exists = 0;
};

/// The metadata fetched for one message before its sections are read.
struct MessageMeta {
  uint32_t uid = 0;
  std::vector<std::string> flags;  ///< "\\Seen", "$Label1"...
  uint64_t size = 0;               ///< RFC822.SIZE
  std::string header;              ///< BODY[HEADER]: the top-level header block
  mime::Part structure;            ///< from BODYSTRUCTURE
  /// False for FetchMetaLight results: `structure` is then a default Part and
  /// says nothing about the message.
  bool has_structure = true;
  /// True when `structure` leaves parts out: nested deeper than
  /// kMaxBodyStructureDepth or past kMaxBodyStructureParts (bodystructure.h).
  bool structure_cut = false;
};

/// STATUS (UIDNEXT UIDVALIDITY MESSAGES) of a folder, selected or not.
struct FolderStatus {
  /// 0 when the server did not say: Dovecot's NOTIFY pushes usually leave it
  /// out (`* STATUS F2 (MESSAGES 2 UIDNEXT 3 UNSEEN 2)`), Status() asks for it.
  uint32_t uidvalidity = 0;
  uint32_t uidnext = 0;  ///< 0 when the server did not say
  uint32_t messages = 0;
};

/// One thing a NOTIFY connection (RFC 5465) reported about a folder.
struct FolderEvent {
  enum class Kind {
    kChanged,  ///< messages arrived or went (`* STATUS`): sync the folder by UID
    kCreated,  ///< `* LIST` of a new name (MailboxName event)
    kDeleted,  ///< `* LIST (\NonExistent)`, or the old name of a rename
  };
  Kind kind = Kind::kChanged;
  std::string folder;  ///< the name as the server sent it (as in config: no decoding)
  /// What `* STATUS` said (kChanged only); nullopt when it was not a STATUS.
  std::optional<FolderStatus> status;
};

/// Why Idle() returned.
enum class IdleWake {
  kActivity,  ///< the server sent something (EXISTS, EXPUNGE, FETCH...)
  kTimeout,   ///< max_wait passed with no news (time to refresh IDLE)
  kStopped,   ///< the stop fd fired
  kWoken,     ///< the wake fd fired
};

/// One logged-in connection as the watcher uses it. Not thread-safe: owned
/// and used by one thread. The meaning of each call is documented on
/// imap::Session, the real implementation.
class Mailbox {
 public:
  virtual ~Mailbox() = default;

  /// SELECT: UIDVALIDITY, UIDNEXT and EXISTS of `folder`.
  virtual util::Result<MailboxInfo> Select(const std::string& folder) = 0;
  /// UIDs >= from_uid, ascending; from_uid 0 (a wrapped last_uid + 1) is empty.
  virtual util::Result<std::vector<uint32_t>> SearchUidsFrom(uint32_t from_uid) = 0;
  /// UIDs in [lo, hi], ascending.
  virtual util::Result<std::vector<uint32_t>> SearchUidRange(uint32_t lo, uint32_t hi) = 0;
  /// UIDs of messages without \Seen, ascending.
  virtual util::Result<std::vector<uint32_t>> SearchUnseen() = 0;
  /// UID, FLAGS, RFC822.SIZE, BODYSTRUCTURE and the header of each UID;
  /// messages expunged meanwhile are absent from the result.
  virtual util::Result<std::vector<MessageMeta>> FetchMeta(const std::vector<uint32_t>& uids) = 0;
  /// FetchMeta without BODYSTRUCTURE (has_structure false).
  virtual util::Result<std::vector<MessageMeta>> FetchMetaLight(const std::vector<uint32_t>& uids) = 0;
  /// UID, RFC822.SIZE and the Message-ID field of each UID, to match a
  /// recreated folder's messages to those handled before (`header` holds at
  /// least that field). A Mailbox that cannot ask for less sends the whole
  /// header, which serves as well.
  virtual util::Result<std::vector<MessageMeta>> FetchMatchMeta(const std::vector<uint32_t>& uids) {
    return FetchMetaLight(uids);
  }
  /// BODY.PEEK[section].
  virtual util::Result<std::string> FetchSection(uint32_t uid, const std::string& section) = 0;
  /// `length` bytes of BODY.PEEK[section] from `offset`; fewer at the end.
  virtual util::Result<std::string> FetchSectionPart(uint32_t uid, const std::string& section, uint32_t offset,
                                                     uint32_t length) = 0;
  /// BODY.PEEK[section.MIME].
  virtual util::Result<std::string> FetchMimeHeaders(uint32_t uid, const std::string& section) = 0;
  /// BINARY.PEEK[section]; nullopt when the server cannot (use BODY[]).
  virtual util::Result<std::optional<std::string>> FetchBinary(uint32_t uid, const std::string& section) = 0;
  /// BINARY.SIZE[section]; nullopt when the server cannot say.
  virtual util::Result<std::optional<uint64_t>> FetchBinarySize(uint32_t uid, const std::string& section) = 0;
  /// UID STORE +FLAGS.SILENT. A refusal is kNeedsOperator.
  virtual util::Status AddFlags(uint32_t uid, const std::vector<std::string>& flags) = 0;
  /// Moves one message to `folder`. A refusal is kNeedsOperator.
  virtual util::Status Move(uint32_t uid, const std::string& folder) = 0;
  /// Waits in IDLE for server activity, max_wait, the stop fd or `wake_fd`.
  virtual util::Result<IdleWake> Idle(std::chrono::milliseconds max_wait, int wake_fd = -1) = 0;
  /// NOOP: proves the session alive (a liveness round trip of a waiting connection).
  virtual util::Status Noop() = 0;
  /// Best-effort LOGOUT, then closes.
  virtual void Logout() = 0;

  // Account-level calls: no folder needs to be selected.

  /// Capabilities as advertised (upper-case names: "IDLE", "NOTIFY").
  virtual bool HasCapability(const std::string& name) const = 0;
  /// STATUS folder (UIDNEXT UIDVALIDITY MESSAGES). A missing folder is
  /// kNeedsOperator (the server said NO); a broken session kBackoff.
  virtual util::Result<FolderStatus> Status(const std::string& folder) = 0;
  /// LIST "" "*": every folder name the account has, as the server sends them.
  virtual util::Result<std::vector<std::string>> ListFolders() = 0;
  /// NOTIFY SET (RFC 5465): MessageNew/MessageExpunge as `* STATUS` for
  /// `folders`, and MailboxName (created, deleted, renamed) for the account's
  /// personal namespace. Nothing may be selected on this connection.
  virtual util::Status NotifySet(const std::vector<std::string>& folders) = 0;
  /// IDLE on a connection after NotifySet: waits as Idle() does and appends
  /// what the server reported to `events` (one per untagged STATUS or LIST
  /// line, in order; possibly several for one wake, possibly none).
  virtual util::Result<IdleWake> IdleForEvents(std::chrono::milliseconds max_wait, int wake_fd,
                                               std::vector<FolderEvent>& events) = 0;

  // The fetch pipeline (issue 8): several messages or items per command.

  /// BODY.PEEK[] of every UID in one command: the whole messages, by UID.
  /// Messages expunged meanwhile are absent. The caller keeps the sum of
  /// their RFC822.SIZEs within what one response may be.
  virtual util::Result<std::map<uint32_t, std::string>> FetchWholeMessages(const std::vector<uint32_t>& uids) = 0;
  /// BINARY.SIZE of several sections of one message in one command, by
  /// section; a section the server cannot size (or a server without BINARY)
  /// is absent from the result.
  virtual util::Result<std::map<std::string, uint64_t>> FetchBinarySizes(uint32_t uid,
                                                                         const std::vector<std::string>& sections) = 0;
};

/// Opens a logged-in Mailbox (connect, TLS, LOGIN). The watcher calls it
/// once per session; the real one is Session::Open.
using MailboxOpener = std::function<util::Result<std::unique_ptr<Mailbox>>(const SessionOptions&)>;

}  // namespace mailhook::imap
