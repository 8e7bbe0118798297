#include "imap_client.h"

#include <libetpan/libetpan.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <functional>
#include <iostream>
#include <memory>
#include <set>
#include <thread>

#include "dovecot_server.h"

namespace mailhook::testsupport {
namespace {

using util::Error;
using util::RetryClass;

// libetpan's mailimap_free sends LOGOUT on a dead session and waits a full
// timeout: close the stream first (DESIGN.md, "IMAP with libetpan").
struct SessionDeleter {
  void operator()(mailimap* imap) const {
    if (imap->imap_stream != nullptr) {
      mailstream_close(imap->imap_stream);
      imap->imap_stream = nullptr;
    }
    mailimap_free(imap);
  }
};
using Session = std::unique_ptr<mailimap, SessionDeleter>;

Error ImapError(mailimap* imap, const std::string& what, int rc) {
  std::string response = imap != nullptr && imap->imap_response != nullptr ? imap->imap_response : "";
  return Error("testimap." + what, RetryClass::kBackoff,
               what + " failed (libetpan code " + std::to_string(rc) + ")" +
                   (response.empty() ? "" : ", server said: " + response));
}

struct FlagListDeleter {
  void operator()(mailimap_flag_list* l) const { mailimap_flag_list_free(l); }
};

// Builds a flag list; system flags by name (RFC 3501 §2.3.2), others as keywords.
std::unique_ptr<mailimap_flag_list, FlagListDeleter> MakeFlagList(const std::vector<std::string>& flags) {
  std::unique_ptr<mailimap_flag_list, FlagListDeleter> list(mailimap_flag_list_new_empty());
  for (const auto& f : flags) {
    mailimap_flag* flag = nullptr;
    if (strcasecmp(f.c_str(), "\\Seen") == 0)
      flag = mailimap_flag_new_seen();
    else if (strcasecmp(f.c_str(), "\\Flagged") == 0)
      flag = mailimap_flag_new_flagged();
    else if (strcasecmp(f.c_str(), "\\Answered") == 0)
      flag = mailimap_flag_new_answered();
    else if (strcasecmp(f.c_str(), "\\Deleted") == 0)
      flag = mailimap_flag_new_deleted();
    else if (strcasecmp(f.c_str(), "\\Draft") == 0)
      flag = mailimap_flag_new_draft();
    else
      flag = mailimap_flag_new_flag_keyword(strdup(f.c_str()));
    mailimap_flag_list_add(list.get(), flag);
  }
  return list;
}

std::string FlagName(const mailimap_flag* f) {
  switch (f->fl_type) {
    case MAILIMAP_FLAG_ANSWERED: return "\\Answered";
    case MAILIMAP_FLAG_FLAGGED: return "\\Flagged";
    case MAILIMAP_FLAG_DELETED: return "\\Deleted";
    case MAILIMAP_FLAG_SEEN: return "\\Seen";
    case MAILIMAP_FLAG_DRAFT: return "\\Draft";
    case MAILIMAP_FLAG_KEYWORD: return f->fl_data.fl_keyword ? f->fl_data.fl_keyword : "";
    case MAILIMAP_FLAG_EXTENSION: return std::string("\\") + (f->fl_data.fl_extension ? f->fl_data.fl_extension : "");
    default: return "";
  }
}

}  // namespace

std::string ToCrlf(const std::string& text) {
  std::string out;
  out.reserve(text.size() + text.size() / 40);
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\n' && (i == 0 || text[i - 1] != '\r')) out += '\r';
    out += text[i];
  }
  return out;
}

ImapClient::ImapClient(const DovecotServer& server) : host_(server.host()), port_(server.imap_port()) {
  for (const auto& u : server.users()) users_.emplace_back(u.name, u.password);
}

ImapClient::ImapClient(std::string host, int port, std::vector<std::pair<std::string, std::string>> users)
    : host_(std::move(host)), port_(port), users_(std::move(users)) {}

std::string ImapClient::PasswordOf(const std::string& user) const {
  for (const auto& [name, password] : users_) {
    if (name == user) return password;
  }
  return "";
}

namespace {

// Connects and logs in; `body` runs on the logged-in session, then LOGOUT.
template <typename T>
util::Result<T> WithSession(const std::string& host, int port, const std::string& user, const std::string& password,
                            const std::function<util::Result<T>(mailimap*)>& body) {
  Session imap(mailimap_new(0, nullptr));
  if (!imap) return Error("testimap.alloc", RetryClass::kNeedsOperator, "mailimap_new failed");
  mailimap_set_timeout(imap.get(), 15);
  int rc = mailimap_socket_connect(imap.get(), host.c_str(), static_cast<uint16_t>(port));
  if (rc != MAILIMAP_NO_ERROR && rc != MAILIMAP_NO_ERROR_NON_AUTHENTICATED && rc != MAILIMAP_NO_ERROR_AUTHENTICATED) {
    return ImapError(imap.get(), "connect to " + host + ":" + std::to_string(port), rc);
  }
  rc = mailimap_login(imap.get(), user.c_str(), password.c_str());
  if (rc != MAILIMAP_NO_ERROR) return ImapError(imap.get(), "LOGIN as " + user, rc);
  util::Result<T> result = body(imap.get());
  mailimap_logout(imap.get());
  return result;
}

util::Status SelectFolder(mailimap* imap, const std::string& folder) {
  int rc = mailimap_select(imap, folder.c_str());
  if (rc != MAILIMAP_NO_ERROR) return ImapError(imap, "SELECT " + folder, rc);
  return util::Ok();
}

struct Unit {};

util::Status ToStatus(const util::Result<Unit>& r) {
  if (r.ok()) return util::Ok();
  return r.error();
}

}  // namespace

util::Result<uint32_t> ImapClient::Append(const std::string& user, const std::string& folder, const std::string& rfc822,
                                          const std::vector<std::string>& flags) const {
  std::string data = ToCrlf(rfc822);
  return WithSession<uint32_t>(host_, port_, user, PasswordOf(user), [&](mailimap* imap) -> util::Result<uint32_t> {
    auto list = MakeFlagList(flags);
    uint32_t uidvalidity = 0, uid = 0;
    int rc = mailimap_uidplus_append(imap, folder.c_str(), list.get(), nullptr, data.data(), data.size(), &uidvalidity,
                                     &uid);
    if (rc != MAILIMAP_NO_ERROR) return ImapError(imap, "APPEND to " + folder, rc);
    if (uid == 0) return Error("testimap.appenduid", RetryClass::kNeedsOperator, "server sent no APPENDUID");
    return uid;
  });
}

util::Result<uint32_t> ImapClient::AppendRetrying(const std::string& user, const std::string& folder,
                                                  const std::string& rfc822, int attempts) const {
  util::Error last("testimap.append", RetryClass::kBackoff, "no attempt made");
  for (int attempt = 1; attempt <= attempts; ++attempt) {
    // UIDNEXT before, to tell afterwards whether a failed APPEND stored the
    // message anyway (the connection broke after the server took it). Right
    // after its sessions were killed the server may refuse new ones for a
    // while (Dovecot throttles a service whose processes died): wait until a
    // session works again, up to 10 s, before counting an attempt.
    auto before = Status(user, folder);
    if (!before.ok()) {
      std::cerr << "ImapClient::AppendRetrying: no session before attempt " << attempt << " ("
                << before.error().ToString() << "); waiting up to 10 s for one\n";
    }
    const auto serving_by = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!before.ok() && std::chrono::steady_clock::now() < serving_by) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      before = Status(user, folder);
    }
    if (!before.ok()) {
      last = before.error();
    } else {
      auto uid = Append(user, folder, rfc822);
      if (uid.ok()) return uid;
      last = uid.error();
      auto after = Status(user, folder);
      if (after.ok() && after->uidnext == before->uidnext + 1) {
        std::cerr << "ImapClient::AppendRetrying: the failed APPEND stored the message as UID " << before->uidnext
                  << " (" << last.ToString() << ")\n";
        return before->uidnext;
      }
      if (after.ok() && after->uidnext != before->uidnext) {
        return Error("testimap.append_unsure", RetryClass::kNeedsOperator,
                     "the APPEND failed (" + last.message() + ") but UIDNEXT moved from " +
                         std::to_string(before->uidnext) + " to " + std::to_string(after->uidnext) +
                         ": the message may be stored; not appending it again");
      }
    }
    std::cerr << "ImapClient::AppendRetrying: attempt " << attempt << " of " << attempts
              << " failed: " << last.ToString() << "\n";
  }
  return last;
}

util::Status ImapClient::CreateFolder(const std::string& user, const std::string& folder) const {
  return ToStatus(WithSession<Unit>(host_, port_, user, PasswordOf(user), [&](mailimap* imap) -> util::Result<Unit> {
    int rc = mailimap_create(imap, folder.c_str());
    if (rc != MAILIMAP_NO_ERROR) return ImapError(imap, "CREATE " + folder, rc);
    return Unit{};
  }));
}

util::Status ImapClient::DeleteFolder(const std::string& user, const std::string& folder) const {
  return ToStatus(WithSession<Unit>(host_, port_, user, PasswordOf(user), [&](mailimap* imap) -> util::Result<Unit> {
    int rc = mailimap_delete(imap, folder.c_str());
    if (rc != MAILIMAP_NO_ERROR) return ImapError(imap, "DELETE " + folder, rc);
    return Unit{};
  }));
}

util::Result<std::vector<std::string>> ImapClient::ListFolders(const std::string& user) const {
  using Out = std::vector<std::string>;
  return WithSession<Out>(host_, port_, user, PasswordOf(user), [&](mailimap* imap) -> util::Result<Out> {
    clist* list = nullptr;
    int rc = mailimap_list(imap, "", "*", &list);
    if (rc != MAILIMAP_NO_ERROR) return ImapError(imap, "LIST", rc);
    Out out;
    for (clistiter* it = clist_begin(list); it != nullptr; it = clist_next(it)) {
      auto* mb = static_cast<mailimap_mailbox_list*>(clist_content(it));
      if (mb->mb_name != nullptr) out.emplace_back(mb->mb_name);
    }
    mailimap_list_result_free(list);
    std::sort(out.begin(), out.end());
    return out;
  });
}

util::Result<std::vector<uint32_t>> ImapClient::ListUids(const std::string& user, const std::string& folder) const {
  using Out = std::vector<uint32_t>;
  return WithSession<Out>(host_, port_, user, PasswordOf(user), [&](mailimap* imap) -> util::Result<Out> {
    auto s = SelectFolder(imap, folder);
    if (!s.ok()) return s.error();
    mailimap_search_key* key = mailimap_search_key_new_all();
    clist* result = nullptr;
    int rc = mailimap_uid_search(imap, nullptr, key, &result);
    mailimap_search_key_free(key);
    if (rc != MAILIMAP_NO_ERROR) return ImapError(imap, "UID SEARCH ALL", rc);
    Out out;
    for (clistiter* it = clist_begin(result); it != nullptr; it = clist_next(it)) {
      out.push_back(*static_cast<uint32_t*>(clist_content(it)));
    }
    mailimap_search_result_free(result);
    std::sort(out.begin(), out.end());
    return out;
  });
}

namespace {

// UID FETCH <uid> with one attribute; calls `visit` for each item of the
// message whose UID is exactly `uid`. Error if the server returned none.
util::Status FetchOne(mailimap* imap, uint32_t uid, mailimap_fetch_att* att,
                      const std::function<void(mailimap_msg_att_item*)>& visit) {
  mailimap_set* set = mailimap_set_new_single(uid);
  mailimap_fetch_type* type = mailimap_fetch_type_new_fetch_att(att);
  clist* result = nullptr;
  int rc = mailimap_uid_fetch(imap, set, type, &result);
  mailimap_fetch_type_free(type);
  mailimap_set_free(set);
  if (rc != MAILIMAP_NO_ERROR) return ImapError(imap, "UID FETCH " + std::to_string(uid), rc);
  bool found = false;
  for (clistiter* it = clist_begin(result); it != nullptr; it = clist_next(it)) {
    auto* msg = static_cast<mailimap_msg_att*>(clist_content(it));
    uint32_t msg_uid = 0;
    for (clistiter* a = clist_begin(msg->att_list); a != nullptr; a = clist_next(a)) {
      auto* item = static_cast<mailimap_msg_att_item*>(clist_content(a));
      if (item->att_type == MAILIMAP_MSG_ATT_ITEM_STATIC &&
          item->att_data.att_static->att_type == MAILIMAP_MSG_ATT_UID) {
        msg_uid = item->att_data.att_static->att_data.att_uid;
      }
    }
    if (msg_uid != uid) continue;
    found = true;
    for (clistiter* a = clist_begin(msg->att_list); a != nullptr; a = clist_next(a)) {
      visit(static_cast<mailimap_msg_att_item*>(clist_content(a)));
    }
  }
  mailimap_fetch_list_free(result);
  if (!found) {
    return Error("testimap.no_such_uid", RetryClass::kNeedsOperator, "UID " + std::to_string(uid) + " not found");
  }
  return util::Ok();
}

}  // namespace

util::Result<std::vector<std::string>> ImapClient::Flags(const std::string& user, const std::string& folder,
                                                         uint32_t uid) const {
  using Out = std::vector<std::string>;
  return WithSession<Out>(host_, port_, user, PasswordOf(user), [&](mailimap* imap) -> util::Result<Out> {
    auto s = SelectFolder(imap, folder);
    if (!s.ok()) return s.error();
    Out out;
    s = FetchOne(imap, uid, mailimap_fetch_att_new_flags(), [&](mailimap_msg_att_item* item) {
      if (item->att_type != MAILIMAP_MSG_ATT_ITEM_DYNAMIC || item->att_data.att_dyn->att_list == nullptr) return;
      for (clistiter* f = clist_begin(item->att_data.att_dyn->att_list); f != nullptr; f = clist_next(f)) {
        auto* ff = static_cast<mailimap_flag_fetch*>(clist_content(f));
        if (ff->fl_type == MAILIMAP_FLAG_FETCH_RECENT)
          out.emplace_back("\\Recent");
        else if (ff->fl_flag != nullptr)
          out.push_back(FlagName(ff->fl_flag));
      }
    });
    if (!s.ok()) return s.error();
    return out;
  });
}

util::Status ImapClient::AddFlags(const std::string& user, const std::string& folder, uint32_t uid,
                                  const std::vector<std::string>& flags) const {
  return ToStatus(WithSession<Unit>(host_, port_, user, PasswordOf(user), [&](mailimap* imap) -> util::Result<Unit> {
    auto s = SelectFolder(imap, folder);
    if (!s.ok()) return s.error();
    mailimap_set* set = mailimap_set_new_single(uid);
    mailimap_store_att_flags* att = mailimap_store_att_flags_new_add_flags(MakeFlagList(flags).release());
    int rc = mailimap_uid_store(imap, set, att);
    mailimap_store_att_flags_free(att);
    mailimap_set_free(set);
    if (rc != MAILIMAP_NO_ERROR) return ImapError(imap, "UID STORE", rc);
    return Unit{};
  }));
}

util::Result<std::string> ImapClient::Fetch(const std::string& user, const std::string& folder, uint32_t uid) const {
  return WithSession<std::string>(
      host_, port_, user, PasswordOf(user), [&](mailimap* imap) -> util::Result<std::string> {
        auto s = SelectFolder(imap, folder);
        if (!s.ok()) return s.error();
        std::string out;
        mailimap_fetch_att* att = mailimap_fetch_att_new_body_peek_section(mailimap_section_new(nullptr));
        s = FetchOne(imap, uid, att, [&](mailimap_msg_att_item* item) {
          if (item->att_type == MAILIMAP_MSG_ATT_ITEM_STATIC &&
              item->att_data.att_static->att_type == MAILIMAP_MSG_ATT_BODY_SECTION) {
            auto* sec = item->att_data.att_static->att_data.att_body_section;
            if (sec->sec_body_part != nullptr) out.assign(sec->sec_body_part, sec->sec_length);
          }
        });
        if (!s.ok()) return s.error();
        return out;
      });
}

util::Status ImapClient::Expunge(const std::string& user, const std::string& folder, uint32_t uid) const {
  return ToStatus(WithSession<Unit>(host_, port_, user, PasswordOf(user), [&](mailimap* imap) -> util::Result<Unit> {
    auto s = SelectFolder(imap, folder);
    if (!s.ok()) return s.error();
    mailimap_set* set = mailimap_set_new_single(uid);
    mailimap_store_att_flags* att = mailimap_store_att_flags_new_add_flags(MakeFlagList({"\\Deleted"}).release());
    int rc = mailimap_uid_store(imap, set, att);
    mailimap_store_att_flags_free(att);
    mailimap_set_free(set);
    if (rc != MAILIMAP_NO_ERROR) return ImapError(imap, "UID STORE +FLAGS \\Deleted", rc);
    rc = mailimap_expunge(imap);
    if (rc != MAILIMAP_NO_ERROR) return ImapError(imap, "EXPUNGE", rc);
    return Unit{};
  }));
}

util::Result<FolderStatus> ImapClient::Status(const std::string& user, const std::string& folder) const {
  return WithSession<FolderStatus>(
      host_, port_, user, PasswordOf(user), [&](mailimap* imap) -> util::Result<FolderStatus> {
        mailimap_status_att_list* atts = mailimap_status_att_list_new_empty();
        mailimap_status_att_list_add(atts, MAILIMAP_STATUS_ATT_UIDVALIDITY);
        mailimap_status_att_list_add(atts, MAILIMAP_STATUS_ATT_UIDNEXT);
        mailimap_status_att_list_add(atts, MAILIMAP_STATUS_ATT_MESSAGES);
        mailimap_mailbox_data_status* result = nullptr;
        int rc = mailimap_status(imap, folder.c_str(), atts, &result);
        mailimap_status_att_list_free(atts);
        if (rc != MAILIMAP_NO_ERROR) return ImapError(imap, "STATUS " + folder, rc);
        FolderStatus out;
        for (clistiter* it = clist_begin(result->st_info_list); it != nullptr; it = clist_next(it)) {
          auto* info = static_cast<mailimap_status_info*>(clist_content(it));
          if (info->st_att == MAILIMAP_STATUS_ATT_UIDVALIDITY) out.uidvalidity = info->st_value;
          if (info->st_att == MAILIMAP_STATUS_ATT_UIDNEXT) out.uidnext = info->st_value;
          if (info->st_att == MAILIMAP_STATUS_ATT_MESSAGES) out.messages = info->st_value;
        }
        mailimap_mailbox_data_status_free(result);
        return out;
      });
}

}  // namespace mailhook::testsupport

namespace mailhook::testsupport {

util::Result<std::vector<std::string>> ImapClient::FindMessages(
    const std::string& user, const std::string& folder, const std::function<bool(const std::string&)>& match) const {
  auto uids = ListUids(user, folder);
  if (!uids.ok()) return uids.error();
  std::vector<std::string> found;
  for (uint32_t uid : *uids) {
    auto text = Fetch(user, folder, uid);
    if (!text.ok()) return text.error();
    if (match(*text)) found.push_back(std::move(*text));
  }
  return found;
}

util::Result<std::string> ImapClient::WaitForMessage(const std::string& user, const std::string& folder,
                                                     const std::function<bool(const std::string&)>& match,
                                                     std::chrono::milliseconds timeout) const {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::set<uint32_t> checked;  // UIDs are never reused in a folder (RFC 3501 2.3.1.1)
  std::string last_error = "no message matched";
  for (;;) {
    auto uids = ListUids(user, folder);
    if (uids.ok()) {
      for (uint32_t uid : *uids) {
        if (checked.count(uid) != 0) continue;
        auto text = Fetch(user, folder, uid);
        if (!text.ok()) {
          last_error = text.error().ToString();
          break;
        }
        checked.insert(uid);
        if (match(*text)) return std::move(*text);
      }
    } else {
      last_error = uids.error().ToString();
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      return util::Error("imap_client.wait", util::RetryClass::kBackoff,
                         "no matching message in " + user + "/" + folder + " after " + std::to_string(timeout.count()) +
                             " ms (" + std::to_string(checked.size()) + " checked; last: " + last_error + ")");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

}  // namespace mailhook::testsupport
