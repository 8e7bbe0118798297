#include "scripted_mailbox.h"

#include <strings.h>

#include <algorithm>

namespace mailhook::daemon::testing {
namespace {

std::string Join(const std::vector<uint32_t>& uids) {
  std::string out;
  for (uint32_t uid : uids) out += (out.empty() ? "" : ",") + std::to_string(uid);
  return out;
}

util::Error Expunged(uint32_t uid) {
  return util::Error(util::ErrorKind::kVanished, "imap.expunged", util::RetryClass::kBackoff,
                     "message UID " + std::to_string(uid) + " vanished while being read (expunged)");
}

}  // namespace

uint32_t FakeFolder::Add(const std::string& subject, const std::string& body, bool seen) {
  std::lock_guard lock(mu_);
  const uint32_t uid = next_uid_++;
  FakeMessage& m = messages_[uid];
  m.header = "From: Alice <alice@example.com>\r\nTo: support@example.com\r\nSubject: " + subject +
             "\r\nMessage-ID: <m" + std::to_string(uid) + "@example.com>\r\n\r\n";
  m.body = body;
  m.seen = seen;
  if (seen) m.flags.push_back("\\Seen");
  return uid;
}

void FakeFolder::Expunge(uint32_t uid) {
  std::lock_guard lock(mu_);
  messages_.erase(uid);
}

void FakeFolder::SetUidValidity(uint32_t uidvalidity) {
  std::lock_guard lock(mu_);
  uidvalidity_ = uidvalidity;
}

void FakeFolder::Recreate(uint32_t uidvalidity) {
  std::lock_guard lock(mu_);
  uidvalidity_ = uidvalidity;
  messages_.clear();
  next_uid_ = 1;
}

uint32_t FakeFolder::AddRaw(const std::string& header, const std::string& body) {
  std::lock_guard lock(mu_);
  const uint32_t uid = next_uid_++;
  messages_[uid] = FakeMessage{header, body, false, {}};
  return uid;
}

void FakeFolder::TooLargeMatchFetch(size_t max, std::set<uint32_t> always) {
  std::lock_guard lock(mu_);
  match_fetch_max_ = max;
  match_fetch_too_large_ = std::move(always);
}

void FakeFolder::FailOpens(int n) {
  std::lock_guard lock(mu_);
  fail_opens_ = n;
}

void FakeFolder::Poison(uint32_t uid) {
  std::lock_guard lock(mu_);
  poisoned_.insert(uid);
}

void FakeFolder::RefuseWholeReads(uint32_t uid, int n) {
  std::lock_guard lock(mu_);
  refuse_whole_reads_[uid] = n;
}

void FakeFolder::VanishAfterMeta(uint32_t uid) {
  std::lock_guard lock(mu_);
  vanish_after_meta_.insert(uid);
}

void FakeFolder::SetCapabilities(std::set<std::string> caps) {
  std::lock_guard lock(mu_);
  capabilities_ = std::move(caps);
}

void FakeFolder::HideUidNext() {
  std::lock_guard lock(mu_);
  hide_uidnext_ = true;
}

void FakeFolder::FailNoops(int n) {
  std::lock_guard lock(mu_);
  fail_noops_ = n;
}

void FakeFolder::OnIdle(std::function<imap::IdleWake()> fn) {
  std::lock_guard lock(mu_);
  on_idle_ = std::move(fn);
}

void FakeFolder::OnFetchMeta(std::function<void(const std::vector<uint32_t>&)> fn) {
  std::lock_guard lock(mu_);
  on_fetch_meta_ = std::move(fn);
}

std::vector<std::string> FakeFolder::calls() const {
  std::lock_guard lock(mu_);
  return calls_;
}

int FakeFolder::opens() const {
  std::lock_guard lock(mu_);
  return opens_;
}

uint32_t FakeFolder::uidvalidity() const {
  std::lock_guard lock(mu_);
  return uidvalidity_;
}

void FakeFolder::Record(std::string call) {
  std::lock_guard lock(mu_);
  calls_.push_back(std::move(call));
}

imap::MailboxOpener FakeFolder::Opener() {
  return [this](const imap::SessionOptions&) -> util::Result<std::unique_ptr<imap::Mailbox>> {
    std::lock_guard lock(mu_);
    calls_.push_back("OPEN");
    if (fail_opens_ > 0) {
      --fail_opens_;
      return util::Error("imap.connect", util::RetryClass::kBackoff, "scripted: connection refused");
    }
    ++opens_;
    return std::unique_ptr<imap::Mailbox>(std::make_unique<ScriptedMailbox>(*this));
  };
}

void ScriptedMailbox::Command(std::string call, bool syncs_first) {
  std::lock_guard lock(folder_.mu_);
  folder_.calls_.push_back(std::move(call));
  view_next_uid_ = syncs_first ? folder_.next_uid_ : synced_next_uid_;
  synced_next_uid_ = folder_.next_uid_;  // what its end shows the next command
}

util::Result<imap::MailboxInfo> ScriptedMailbox::Select(const std::string& folder) {
  Command("SELECT " + folder, true);
  std::lock_guard lock(folder_.mu_);
  imap::MailboxInfo info;
  info.uidvalidity = folder_.uidvalidity_;
  info.uidnext = folder_.hide_uidnext_ ? 0 : folder_.next_uid_;
  info.exists = static_cast<uint32_t>(folder_.messages_.size());
  return info;
}

util::Result<std::vector<uint32_t>> ScriptedMailbox::SearchUidsFrom(uint32_t from_uid) {
  Command("SEARCH " + std::to_string(from_uid) + ":*");
  if (from_uid == 0) return std::vector<uint32_t>{};
  std::lock_guard lock(folder_.mu_);
  std::vector<uint32_t> out;
  for (auto it = folder_.messages_.lower_bound(from_uid); it != folder_.messages_.end() && it->first < view_next_uid_;
       ++it) {
    out.push_back(it->first);
  }
  return out;
}

util::Result<std::vector<uint32_t>> ScriptedMailbox::SearchUidRange(uint32_t lo, uint32_t hi) {
  Command("SEARCH " + std::to_string(lo) + ":" + std::to_string(hi));
  std::lock_guard lock(folder_.mu_);
  std::vector<uint32_t> out;
  for (auto it = folder_.messages_.lower_bound(lo);
       it != folder_.messages_.end() && it->first <= hi && it->first < view_next_uid_; ++it) {
    out.push_back(it->first);
  }
  return out;
}

util::Result<std::vector<uint32_t>> ScriptedMailbox::SearchUnseen() {
  Command("SEARCH UNSEEN");
  std::lock_guard lock(folder_.mu_);
  std::vector<uint32_t> out;
  for (const auto& [uid, m] : folder_.messages_) {
    if (!m.seen) out.push_back(uid);
  }
  return out;
}

util::Result<std::vector<imap::MessageMeta>> ScriptedMailbox::Meta(const std::vector<uint32_t>& uids, bool structure) {
  std::vector<imap::MessageMeta> out;
  std::function<void(const std::vector<uint32_t>&)> after;
  {
    std::lock_guard lock(folder_.mu_);
    for (uint32_t uid : uids) {
      auto it = folder_.messages_.find(uid);
      if (it == folder_.messages_.end()) continue;  // expunged: absent, as a server answers
      imap::MessageMeta meta;
      meta.uid = uid;
      meta.flags = it->second.flags;
      meta.size = it->second.header.size() + it->second.body.size();
      meta.header = it->second.header;
      meta.has_structure = structure;
      if (structure) {
        meta.structure.section = "1";
        meta.structure.params.push_back({"charset", "utf-8"});
        meta.structure.size = it->second.body.size();
      }
      out.push_back(std::move(meta));
    }
    for (const imap::MessageMeta& meta : out) {
      if (folder_.vanish_after_meta_.erase(meta.uid) > 0) folder_.messages_.erase(meta.uid);
    }
    after = folder_.on_fetch_meta_;
  }
  if (after) after(uids);
  return out;
}

util::Result<std::vector<imap::MessageMeta>> ScriptedMailbox::FetchMeta(const std::vector<uint32_t>& uids) {
  Command("FETCH META " + Join(uids));
  return Meta(uids, true);
}

util::Result<std::vector<imap::MessageMeta>> ScriptedMailbox::FetchMetaLight(const std::vector<uint32_t>& uids) {
  Command("FETCH LIGHT " + Join(uids));
  return Meta(uids, false);
}

util::Result<std::vector<imap::MessageMeta>> ScriptedMailbox::FetchMatchMeta(const std::vector<uint32_t>& uids) {
  Command("FETCH MATCH " + Join(uids));
  {
    std::lock_guard lock(folder_.mu_);
    bool too_large = uids.size() > folder_.match_fetch_max_;
    for (uint32_t uid : uids) too_large = too_large || folder_.match_fetch_too_large_.contains(uid);
    if (too_large) {
      return util::Error(util::ErrorKind::kResponseTooLarge, "imap.response_too_large", util::RetryClass::kBackoff,
                         "scripted: the answer passed the response budget");
    }
  }
  auto metas = Meta(uids, false);
  if (!metas.ok()) return metas;
  for (imap::MessageMeta& meta : *metas) {
    std::string field;
    for (size_t at = 0; at < meta.header.size();) {
      size_t end = meta.header.find("\r\n", at);
      if (end == std::string::npos) end = meta.header.size();
      const std::string line = meta.header.substr(at, end - at);
      if (line.size() >= 11 && strncasecmp(line.c_str(), "Message-ID:", 11) == 0) field = line + "\r\n";
      at = end + 2;
    }
    meta.header = field + "\r\n";
  }
  return metas;
}

util::Result<std::string> ScriptedMailbox::FetchSection(uint32_t uid, const std::string& section) {
  return FetchSectionPart(uid, section, 0, UINT32_MAX);
}

util::Result<std::string> ScriptedMailbox::FetchSectionPart(uint32_t uid, const std::string& section, uint32_t offset,
                                                            uint32_t length) {
  Command("FETCH BODY " + std::to_string(uid) + " [" + section + "]");
  std::lock_guard lock(folder_.mu_);
  if (folder_.poisoned_.contains(uid)) {
    return util::Error("imap.scripted_failure", util::RetryClass::kBackoff,
                       "scripted: reading UID " + std::to_string(uid) + " breaks the session");
  }
  if (int& refusals = folder_.refuse_whole_reads_[uid]; section.empty() && refusals > 0) {
    --refusals;
    return util::Error("imap.uid_fetch", util::RetryClass::kBackoff,
                       "uid_fetch failed on the scripted server: server said \"Internal error occurred\"");
  }
  auto it = folder_.messages_.find(uid);
  if (it == folder_.messages_.end()) return Expunged(uid);
  const std::string whole = section.empty() ? it->second.header + it->second.body : it->second.body;
  if (offset >= whole.size()) return std::string();
  return whole.substr(offset, length);
}

util::Result<std::string> ScriptedMailbox::FetchMimeHeaders(uint32_t uid, const std::string& section) {
  Command("FETCH MIME " + std::to_string(uid) + " [" + section + "]");
  return std::string("Content-Type: text/plain; charset=utf-8\r\n\r\n");
}

util::Result<std::optional<std::string>> ScriptedMailbox::FetchBinary(uint32_t uid, const std::string& section) {
  Command("FETCH BINARY " + std::to_string(uid) + " [" + section + "]");
  return std::optional<std::string>();
}

util::Result<std::optional<uint64_t>> ScriptedMailbox::FetchBinarySize(uint32_t uid, const std::string& section) {
  Command("FETCH BINARY.SIZE " + std::to_string(uid) + " [" + section + "]");
  return std::optional<uint64_t>();
}

util::Status ScriptedMailbox::AddFlags(uint32_t uid, const std::vector<std::string>& flags) {
  Command("STORE " + std::to_string(uid));
  std::lock_guard lock(folder_.mu_);
  auto it = folder_.messages_.find(uid);
  if (it == folder_.messages_.end()) return util::Ok();
  for (const std::string& f : flags) {
    it->second.flags.push_back(f);
    if (f == "\\Seen") it->second.seen = true;
  }
  return util::Ok();
}

util::Status ScriptedMailbox::Move(uint32_t uid, const std::string& folder) {
  Command("MOVE " + std::to_string(uid) + " " + folder);
  std::lock_guard lock(folder_.mu_);
  folder_.messages_.erase(uid);
  return util::Ok();
}

util::Result<imap::IdleWake> ScriptedMailbox::Idle(std::chrono::milliseconds max_wait, int) {
  Command("IDLE " + std::to_string(max_wait.count()) + "ms", true);
  std::function<imap::IdleWake()> fn;
  {
    std::lock_guard lock(folder_.mu_);
    fn = folder_.on_idle_;
  }
  return fn ? fn() : imap::IdleWake::kTimeout;
}

util::Status ScriptedMailbox::Noop() {
  Command("NOOP", true);
  std::lock_guard lock(folder_.mu_);
  if (folder_.fail_noops_ == 0) return util::Ok();
  --folder_.fail_noops_;
  return util::Error("imap.noop", util::RetryClass::kBackoff,
                     "noop failed on the scripted server: connection lost or timed out");
}

void ScriptedMailbox::Logout() { Command("LOGOUT"); }

bool ScriptedMailbox::HasCapability(const std::string& name) const {
  std::lock_guard lock(folder_.mu_);
  return folder_.capabilities_.contains(name);
}

util::Result<imap::FolderStatus> ScriptedMailbox::Status(const std::string& folder) {
  Command("STATUS " + folder);
  std::lock_guard lock(folder_.mu_);
  imap::FolderStatus status;
  status.uidvalidity = folder_.uidvalidity_;
  status.uidnext = folder_.next_uid_;
  status.messages = static_cast<uint32_t>(folder_.messages_.size());
  return status;
}

util::Result<std::vector<std::string>> ScriptedMailbox::ListFolders() {
  Command("LIST");
  return std::vector<std::string>{"INBOX"};
}

util::Status ScriptedMailbox::NotifySet(const std::vector<std::string>&) {
  return util::Error("imap.unsupported", util::RetryClass::kNeedsOperator, "the scripted server has no NOTIFY");
}

util::Result<imap::IdleWake> ScriptedMailbox::IdleForEvents(std::chrono::milliseconds, int,
                                                            std::vector<imap::FolderEvent>&) {
  return util::Error("imap.unsupported", util::RetryClass::kNeedsOperator, "the scripted server has no NOTIFY");
}

// --- the fetch pipeline (issue 8) ---

util::Result<std::map<uint32_t, std::string>> ScriptedMailbox::FetchWholeMessages(const std::vector<uint32_t>& uids) {
  Command("FETCH WHOLE " + Join(uids));
  std::lock_guard lock(folder_.mu_);
  std::map<uint32_t, std::string> out;
  for (uint32_t uid : uids) {
    if (folder_.poisoned_.contains(uid)) {
      return util::Error("imap.scripted_failure", util::RetryClass::kBackoff,
                         "scripted: reading UID " + std::to_string(uid) + " breaks the session");
    }
    auto it = folder_.messages_.find(uid);
    if (it != folder_.messages_.end()) out[uid] = it->second.header + it->second.body;  // expunged: absent
  }
  return out;
}

util::Result<std::map<std::string, uint64_t>> ScriptedMailbox::FetchBinarySizes(
    uint32_t uid, const std::vector<std::string>& sections) {
  std::string list;
  for (const std::string& s : sections) list += (list.empty() ? "" : ",") + s;
  Command("FETCH BINARY.SIZES " + std::to_string(uid) + " [" + list + "]");
  return std::map<std::string, uint64_t>();
}

}  // namespace mailhook::daemon::testing
