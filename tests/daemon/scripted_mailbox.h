#pragma once
/// ScriptedMailbox: a fake imap::Mailbox over an in-memory folder
/// (FakeFolder), for driving the folder watcher without a server. The folder
/// is shared by every mailbox it opens (one per watcher session) and can be
/// changed by the test while the watcher runs: messages added, expunged, made
/// to fail, sessions refused. Every call is recorded. Thread-safe.
///
/// Messages are single-part text/plain: BODYSTRUCTURE section "1" is the
/// body, section "" the whole message. No BINARY (FetchBinary and
/// FetchBinarySize answer nullopt, as a server without RFC 3516).
///
/// Like Dovecot, a session's searches see the folder as it was when the
/// session's previous command ended: SELECT and NOOP see it as it is now, and
/// a message added after a command's end shows up only from the command after
/// the next one (Dovecot 2.3 answers such a UID SEARCH empty, then sends
/// `* n EXISTS`).

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "imap/mailbox.h"

namespace mailhook::daemon::testing {

/// One message of the fake folder.
struct FakeMessage {
  std::string header;  ///< the header block, ending in an empty line
  std::string body;
  bool seen = false;
  std::vector<std::string> flags;
};

/// The folder the fake mailboxes serve, and the script of what goes wrong.
class FakeFolder {
 public:
  /// Appends a message with this subject (and body); returns its UID.
  uint32_t Add(const std::string& subject, const std::string& body = "hello", bool seen = false);
  /// Expunges a message (its UID is never reused).
  void Expunge(uint32_t uid);
  /// A new UIDVALIDITY (the folder was recreated), keeping its messages.
  void SetUidValidity(uint32_t uidvalidity);
  /// The folder deleted and created again: empty, UIDs from 1 again, under
  /// `uidvalidity`.
  void Recreate(uint32_t uidvalidity);
  /// Appends a message with exactly this header block (ending in an empty
  /// line) and body; returns its UID.
  uint32_t AddRaw(const std::string& header, const std::string& body);

  // --- the script ---
  /// The next `n` opens fail with a kBackoff connect error.
  void FailOpens(int n);
  /// Reading any section of `uid` fails (kBackoff), in every session: a
  /// message that breaks extraction.
  void Poison(uint32_t uid);
  /// The next `n` reads of the whole of `uid` (BODY.PEEK[], section "")
  /// fail as a server's NO (imap.uid_fetch); the session stays usable, and
  /// the other sections read as usual (attach_original's read).
  void RefuseWholeReads(uint32_t uid, int n);
  /// `uid` is expunged right after a FetchMeta that lists it: its sections
  /// are then gone (imap.expunged, as Session says it).
  void VanishAfterMeta(uint32_t uid);
  /// FetchMatchMeta fails with imap.response_too_large (the session's
  /// budget) when asked for more than `max` UIDs, or for a UID in `always`.
  void TooLargeMatchFetch(size_t max, std::set<uint32_t> always = {});
  /// SELECT does not report UIDNEXT (some servers don't).
  void HideUidNext();
  /// What the server advertises; default {"IDLE"} (no NOTIFY).
  void SetCapabilities(std::set<std::string> caps);
  /// What each Idle() does; default: returns kTimeout. Runs on the
  /// watcher's thread, without the folder's lock held.
  void OnIdle(std::function<imap::IdleWake()> fn);
  /// The next `n` NOOPs fail (kBackoff, as an unanswered NOOP: imap.noop).
  void FailNoops(int n);
  /// Runs after every FetchMeta (watcher's thread, lock not held), e.g. to
  /// append messages "while the watcher fetches".
  void OnFetchMeta(std::function<void(const std::vector<uint32_t>&)> fn);

  // --- what happened ---
  std::vector<std::string> calls()
      const;          ///< "SELECT INBOX", "SEARCH 4:*", "FETCH META 1,2", "IDLE 60000ms", "NOOP"...
  int opens() const;  ///< successful opens
  uint32_t uidvalidity() const;

  /// An opener for WatcherSeams: each call opens a ScriptedMailbox on this
  /// folder (or fails, per FailOpens). The folder must outlive the watcher.
  imap::MailboxOpener Opener();

 private:
  friend class ScriptedMailbox;
  void Record(std::string call);

  mutable std::mutex mu_;
  uint32_t uidvalidity_ = 7;
  uint32_t next_uid_ = 1;
  bool hide_uidnext_ = false;
  std::set<std::string> capabilities_ = {"IDLE"};
  int fail_opens_ = 0;
  int fail_noops_ = 0;
  int opens_ = 0;
  std::map<uint32_t, FakeMessage> messages_;
  std::set<uint32_t> poisoned_;
  std::set<uint32_t> vanish_after_meta_;
  std::map<uint32_t, int> refuse_whole_reads_;
  size_t match_fetch_max_ = SIZE_MAX;
  std::set<uint32_t> match_fetch_too_large_;
  std::vector<std::string> calls_;
  std::function<imap::IdleWake()> on_idle_;
  std::function<void(const std::vector<uint32_t>&)> on_fetch_meta_;
};

/// One "session" on a FakeFolder.
class ScriptedMailbox : public imap::Mailbox {
 public:
  explicit ScriptedMailbox(FakeFolder& folder) : folder_(folder) {}

  util::Result<imap::MailboxInfo> Select(const std::string& folder) override;
  util::Result<std::vector<uint32_t>> SearchUidsFrom(uint32_t from_uid) override;
  util::Result<std::vector<uint32_t>> SearchUidRange(uint32_t lo, uint32_t hi) override;
  util::Result<std::vector<uint32_t>> SearchUnseen() override;
  util::Result<std::vector<imap::MessageMeta>> FetchMeta(const std::vector<uint32_t>& uids) override;
  util::Result<std::vector<imap::MessageMeta>> FetchMetaLight(const std::vector<uint32_t>& uids) override;
  /// Records "FETCH MATCH 1,2"; `header` holds only the Message-ID field
  /// (as HEADER.FIELDS (MESSAGE-ID) answers), an empty block without one.
  util::Result<std::vector<imap::MessageMeta>> FetchMatchMeta(const std::vector<uint32_t>& uids) override;
  util::Result<std::string> FetchSection(uint32_t uid, const std::string& section) override;
  util::Result<std::string> FetchSectionPart(uint32_t uid, const std::string& section, uint32_t offset,
                                             uint32_t length) override;
  util::Result<std::string> FetchMimeHeaders(uint32_t uid, const std::string& section) override;
  util::Result<std::optional<std::string>> FetchBinary(uint32_t uid, const std::string& section) override;
  util::Result<std::optional<uint64_t>> FetchBinarySize(uint32_t uid, const std::string& section) override;
  util::Status AddFlags(uint32_t uid, const std::vector<std::string>& flags) override;
  util::Status Move(uint32_t uid, const std::string& folder) override;
  util::Result<imap::IdleWake> Idle(std::chrono::milliseconds max_wait, int wake_fd = -1) override;
  /// Records "NOOP"; fails per FailNoops.
  util::Status Noop() override;
  void Logout() override;
  /// Account-level calls: no capabilities (no NOTIFY); STATUS of the one
  /// folder; LIST names it; NOTIFY is refused.
  bool HasCapability(const std::string& name) const override;
  util::Result<imap::FolderStatus> Status(const std::string& folder) override;
  util::Result<std::vector<std::string>> ListFolders() override;
  util::Status NotifySet(const std::vector<std::string>& folders) override;
  util::Result<imap::IdleWake> IdleForEvents(std::chrono::milliseconds max_wait, int wake_fd,
                                             std::vector<imap::FolderEvent>& events) override;

  // The fetch pipeline (issue 8). FetchWholeMessages records
  // "FETCH WHOLE 1,2,3", fails like a section read for a poisoned UID and
  // leaves expunged ones out; FetchBinarySizes records
  // "FETCH BINARY.SIZES 4 [2,3]" and answers nothing (no BINARY).
  util::Result<std::map<uint32_t, std::string>> FetchWholeMessages(const std::vector<uint32_t>& uids) override;
  util::Result<std::map<std::string, uint64_t>> FetchBinarySizes(uint32_t uid,
                                                                 const std::vector<std::string>& sections) override;

 private:
  util::Result<std::vector<imap::MessageMeta>> Meta(const std::vector<uint32_t>& uids, bool structure);
  /// Records `call` and moves this session's view (see the file comment);
  /// `syncs_first`: SELECT, NOOP.
  void Command(std::string call, bool syncs_first = false);

  FakeFolder& folder_;
  uint32_t view_next_uid_ = 0;    // searches see UIDs below this (guarded by folder_.mu_)
  uint32_t synced_next_uid_ = 0;  // the folder's next UID when the last command ended
};

}  // namespace mailhook::daemon::testing
