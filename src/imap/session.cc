#include "imap/session.h"

#include <poll.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <functional>
#include <map>

#include <libetpan/libetpan.h>

#include "imap/bodystructure.h"
#include "imap/etpan_ptr.h"
#include "imap/protocol_trace.h"
#include "imap/raw_fetch.h"
#include "imap/redact.h"
#include "imap/tls_stream.h"
#include "util/log.h"

namespace mailhook::imap {
namespace {

using util::Error;
using util::RetryClass;

// libetpan keeps response codes ([AUTHENTICATIONFAILED], [UNAVAILABLE]...) in
// rsp_atom (RFC 5530).
std::string ResponseCode(const mailimap* imap) {
  if (imap->imap_response_info && imap->imap_response_info->rsp_atom) return imap->imap_response_info->rsp_atom;
  return "";
}

std::string ConnectionName(const SessionOptions& o) { return o.host + ":" + std::to_string(o.port); }

mailimap_section* SectionFor(const std::string& section, bool mime) {
  // "" is the whole message: BODY[] (its MIME header: BODY[HEADER]); the
  // Extractor asks for it to re-parse a doubtful structure itself.
  if (section.empty()) return mime ? mailimap_section_new_header() : mailimap_section_new(nullptr);
  // "1.2.3" -> part list {1,2,3}; IMAP section numbers are 1-based (RFC 3501 §6.4.5).
  clist* ids = clist_new();
  size_t start = 0;
  while (start <= section.size()) {
    size_t dot = section.find('.', start);
    std::string piece = section.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    auto* n = static_cast<uint32_t*>(malloc(sizeof(uint32_t)));
    *n = static_cast<uint32_t>(std::strtoul(piece.c_str(), nullptr, 10));
    clist_append(ids, n);
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  mailimap_section_part* part = mailimap_section_part_new(ids);
  return mime ? mailimap_section_new_part_mime(part) : mailimap_section_new_part(part);
}

// trace = protocol, redacted (STYLE.md): libetpan hands over every chunk it
// sends or receives, in the driver's order; ProtocolTrace makes lines of
// them and cuts the credentials out. DATA_SENT_PRIVATE is what libetpan
// sends while LOGIN or AUTHENTICATE arguments go out.
void TraceProtocol(mailimap*, int log_type, const char* str, size_t size, void* context) {
  auto* trace = static_cast<ProtocolTrace*>(context);
  std::string_view data(str, str ? size : 0);
  switch (log_type) {
    case MAILSTREAM_LOG_TYPE_DATA_RECEIVED: trace->Received(data); break;
    case MAILSTREAM_LOG_TYPE_DATA_SENT: trace->Sent(data, false); break;
    case MAILSTREAM_LOG_TYPE_DATA_SENT_PRIVATE: trace->Sent(data, true); break;
    default: break;
  }
}

}  // namespace

SessionOptions SessionOptions::FromAccount(const config::Account& a, util::Secret password, int stop_fd) {
  SessionOptions o;
  o.account = a.name;
  o.host = a.host;
  o.port = a.port;
  o.tls = a.tls;
  o.tls_verify = a.tls_verify;
  o.ca_file = a.ca_file;
  o.username = a.username;
  o.password = std::move(password);
  o.auth = a.auth;
  o.timeout = a.timeout;
  if (a.liveness_interval.count() > 0) o.answer_deadline = config::LivenessDeadline(a);
  o.stop_fd = stop_fd;
  return o;
}

Session::Session(mailimap* imap, SessionOptions options) : imap_(imap), options_(std::move(options)) {}

void ImapCloser::operator()(mailimap* imap) const {
  // mailimap_free on a live stream sends LOGOUT and waits a full timeout when
  // the peer is gone: close the stream ourselves first (DESIGN.md).
  if (imap->imap_stream) {
    mailstream_close(imap->imap_stream);
    imap->imap_stream = nullptr;
  }
  mailimap_free(imap);
}

Session::~Session() = default;

void Session::BeginCommand(std::string command, std::optional<Budget> budget) {
  NoteAlert();  // of the previous command's response
  command_ = std::move(command);
  budget_ = budget.value_or(Budget{options_.max_response_bytes, options_.max_syntax_bytes});
  if (imap_->imap_stream) StartResponseBudget(imap_->imap_stream, budget_.bytes, budget_.syntax);
}

std::string Session::ServerText() const {
  return CredentialRedactor(options_.username, options_.password)
      .Clean(imap_->imap_response ? imap_->imap_response : "");
}

void Session::NoteAlert() {
  if (!imap_->imap_response_info || !imap_->imap_response_info->rsp_alert) return;
  alerts_.Note(options_.account, ConnectionName(options_),
               CredentialRedactor(options_.username, options_.password).Clean(imap_->imap_response_info->rsp_alert));
}

util::Error Session::CommandError(const std::string& what, int code) {
  NoteAlert();
  if (imap_->imap_stream && ResponseBudgetExceeded(imap_->imap_stream)) return TooLargeError("passed");
  if (imap_->imap_stream && ResponseTooDeep(imap_->imap_stream)) {
    // The same code: for the caller it is the same case (take the message
    // the light way: FetchMetaLight and a local parse, which caps depth).
    return Error(util::ErrorKind::kResponseTooLarge, "imap.response_too_large", RetryClass::kBackoff,
                 "the response to " + command_ + " from " + ConnectionName(options_) + " nests lists deeper than " +
                     std::to_string(kMaxResponseNesting) +
                     " levels; mailhook stopped reading it before libetpan's parser could overflow its stack, "
                     "and drops the session. The message (or the server) is probably hostile or broken");
  }
  std::string server = ServerText();
  const RefusalContext where{what, ConnectionName(options_), server};
  if (code == MAILIMAP_ERROR_STREAM || code == MAILIMAP_ERROR_PARSE || code == MAILIMAP_ERROR_DONT_ACCEPT_CONNECTION) {
    // An untagged BYE before the close (RFC 3501 §7.1.5) is still in what
    // libetpan read of the response: it says why.
    const MMAPString* read = imap_->imap_stream_buffer;
    std::optional<std::string> bye = bye_greeting_;
    if (!bye && read) bye = FindBye(std::string_view(read->str, read->len));
    if (bye) {
      return ErrorForBye(*bye, RefusalContext{what, where.connection,
                                              CredentialRedactor(options_.username, options_.password).Clean(*bye)});
    }
    // A BYE greeting (RFC 3501 §7.1.5) whose line is no longer buffered.
    if (code == MAILIMAP_ERROR_DONT_ACCEPT_CONNECTION) return ErrorForBye(server, where);
  } else if (auto coded = ErrorForResponseCode(ResponseCode(imap_.get()), where)) {
    return *coded;
  }
  std::string msg = what + " failed on " + ConnectionName(options_) + " (libetpan code " + std::to_string(code) + ")";
  // After a lost connection libetpan's last response is an earlier
  // command's reply ("Search completed"): quoting it would mislead.
  if (!server.empty() && code != MAILIMAP_ERROR_STREAM) msg += ": server said \"" + server + "\"";
  if (code == MAILIMAP_ERROR_STREAM) msg += ": connection lost or timed out";
  if (code == MAILIMAP_ERROR_PARSE) msg += ": unparsable server response";
  return Error("imap." + what, RetryClass::kBackoff, msg);
}

util::Result<std::unique_ptr<Session>> Session::Open(const SessionOptions& options) {
  if (options.tls == config::TlsMode::kNone) {
    util::Log(util::Area::kImap)
        .warn("imap.insecure host={} port={} note=\"tls: none, password sent in clear\"", options.host, options.port);
  }
  auto stream = OpenPlainStream(options.host, options.port, options.timeout, options.stop_fd);
  if (!stream.ok()) return stream.error();
  TlsOptions tls{options.host, options.ca_file, options.tls_verify};
  if (options.tls == config::TlsMode::kImplicit) {
    if (auto s = StartTls(stream->get(), tls); !s.ok()) return s.error();
  }

  mailimap* imap = mailimap_new(0, nullptr);
  if (!imap) return Error("imap.oom", RetryClass::kBackoff, "out of memory");
  std::unique_ptr<Session> session(new Session(imap, options));
  mailimap_set_timeout(imap, static_cast<time_t>(std::max<int64_t>(1, options.timeout.count() / 1000)));
  session->budget_ = Budget{options.max_response_bytes, options.max_syntax_bytes};
  session->command_ = "the greeting";
  StartResponseBudget(stream->get(), session->budget_.bytes, session->budget_.syntax);

  if (util::Log(util::Area::kImap).should_log(spdlog::level::trace)) {
    session->trace_ = std::make_unique<ProtocolTrace>(options.account, options.host,
                                                      CredentialRedactor(options.username, options.password));
    mailimap_set_logger(imap, &TraceProtocol, session->trace_.get());
  }
  ScreenByeGreeting(stream->get(), &session->bye_greeting_);
  // mailimap_connect takes ownership of the stream even when it fails.
  int r = mailimap_connect(imap, stream->release());
  if (r != MAILIMAP_NO_ERROR_NON_AUTHENTICATED && r != MAILIMAP_NO_ERROR_AUTHENTICATED) {
    Error e = session->CommandError("greeting", r);
    // A BYE (with or without a response code) means the server spoke IMAP:
    // the TLS mode is right.
    if (e.code() != "imap.greeting") return e;
    if (options.tls == config::TlsMode::kNone || options.tls == config::TlsMode::kStartTls) {
      return e.WithMessage(e.message() + " (if this port speaks implicit TLS, use tls: implicit)");
    }
    return e;
  }

  // libetpan keeps no response info for the greeting: its [ALERT] is read
  // from the greeting line itself.
  if (const MMAPString* greeting = imap->imap_stream_buffer) {
    if (auto alert = FindAlert(std::string_view(greeting->str, greeting->len))) {
      session->alerts_.Note(options.account, ConnectionName(options),
                            CredentialRedactor(options.username, options.password).Clean(*alert));
    }
  }
  if (options.tls == config::TlsMode::kStartTls) {
    if (auto s = session->StartTlsCommand(); !s.ok()) return s.error();
  }

  session->BeginCommand("LOGIN");
  if (auto s = session->Login(); !s.ok()) return s.error();
  // Refresh capabilities: many servers advertise more after login.
  session->BeginCommand("CAPABILITY");
  mailimap_capability_data* caps = nullptr;
  if (mailimap_capability(imap, &caps) == MAILIMAP_NO_ERROR && caps) mailimap_capability_data_free(caps);
  return session;
}

util::Status Session::StartTlsCommand() {
  BeginCommand("STARTTLS");
  int r = mailimap_starttls(imap_.get());
  // Bytes after "OK Begin TLS" were sent in clear, so anyone on the path
  // could have put them there; read after the handshake they would pass for
  // encrypted answers (STARTTLS response injection, CVE-2020-15953; the
  // server-side kin is CVE-2011-0411). A correct server sends nothing before
  // the handshake. Checked before `r`: Debian's libetpan 1.9.4 carries the
  // upstream fix and then fails with a bare MAILIMAP_ERROR_STARTTLS, which
  // would read as "the server refused STARTTLS".
  if (imap_->imap_stream && imap_->imap_stream->read_buffer_len > 0) {
    return Error("imap.starttls_injection", RetryClass::kBackoff,
                 "the server at " + ConnectionName(options_) + " sent " +
                     std::to_string(imap_->imap_stream->read_buffer_len) +
                     " bytes after its answer to STARTTLS, before the TLS handshake; mailhook refuses them "
                     "(a sign of an attacker injecting responses on the path, or a broken server). "
                     "Use tls: implicit on port 993 if the server offers it");
  }
  if (r != MAILIMAP_NO_ERROR) {
    Error e = CommandError("starttls", r);
    return Error("imap.starttls", RetryClass::kNeedsOperator,
                 e.message() + " (the server refused STARTTLS; use tls: implicit on port 993)");
  }
  TlsOptions tls{options_.host, options_.ca_file, options_.tls_verify};
  if (auto s = StartTls(imap_->imap_stream, tls); !s.ok()) return s.error();
  // Capabilities learnt before TLS must not be trusted (RFC 3501 §6.2.1).
  if (imap_->imap_connection_info->imap_capability) {
    mailimap_capability_data_free(imap_->imap_connection_info->imap_capability);
    imap_->imap_connection_info->imap_capability = nullptr;
  }
  return util::Ok();
}

util::Status Session::Login() {
  const std::string& user = options_.username;
  const std::string& pass = options_.password.reveal();
  int r;
  switch (options_.auth) {
    case config::AuthMethod::kPlain:
      // SASL PLAIN (RFC 4616) carries UTF-8 passwords safely, unlike LOGIN.
      r = mailimap_authenticate(imap_.get(), "PLAIN", options_.host.c_str(), nullptr, nullptr, user.c_str(),
                                user.c_str(), pass.c_str(), nullptr);
      break;
    case config::AuthMethod::kXoauth2: r = mailimap_oauth2_authenticate(imap_.get(), user.c_str(), pass.c_str()); break;
    case config::AuthMethod::kOauthbearer: return LoginOauthbearer();
    case config::AuthMethod::kLogin:
    default: r = mailimap_login(imap_.get(), user.c_str(), pass.c_str()); break;
  }
  if (r == MAILIMAP_NO_ERROR) return util::Ok();
  if (r == MAILIMAP_ERROR_STREAM || r == MAILIMAP_ERROR_PARSE) return CommandError("login", r);
  NoteAlert();
  return LoginRefused(ResponseCode(imap_.get()), ServerText());
}

util::Error Session::LoginRefused(const std::string& code, const std::string& server) const {
  // RFC 5530 codes say whether to wait ([UNAVAILABLE]...) or what to fix.
  if (auto coded = ErrorForResponseCode(
          code,
          RefusalContext{"login", ConnectionName(options_) + " for user \"" + options_.username + "\"", server})) {
    // One event for every temporary refusal of a login (docs/troubleshooting.md).
    if (!coded->NeedsOperator()) return Error("imap.login_unavailable", RetryClass::kBackoff, coded->message());
    return *coded;
  }
  return Error("imap.auth", RetryClass::kNeedsOperator,
               "login failed for user \"" + options_.username + "\" on " + ConnectionName(options_) +
                   (code.empty() ? "" : " [" + code + "]") + ": server said \"" + server +
                   "\". Check username and password (password/password_file/password_command); "
                   "providers such as Gmail or Outlook need an app password or auth: xoauth2");
}

bool Session::HasCapability(const std::string& name) const {
  return mailimap_has_extension(imap_.get(), const_cast<char*>(name.c_str())) == 1 ||
         (name == "IDLE" && mailimap_has_idle(imap_.get()) == 1);
}

util::Result<MailboxInfo> Session::Select(const std::string& folder) {
  BeginCommand("SELECT");
  int r = mailimap_select(imap_.get(), folder.c_str());
  if (r != MAILIMAP_NO_ERROR) {
    Error e = CommandError("select", r);
    // [LIMIT], [INUSE]... name their own cause (CommandError).
    if (r == MAILIMAP_ERROR_SELECT && !ErrorForResponseCode(ResponseCode(imap_.get()), {})) {
      return Error("imap.select", RetryClass::kNeedsOperator,
                   "cannot open folder \"" + folder + "\" on " + ConnectionName(options_) + ": server said \"" +
                       ServerText() +
                       "\". Check the folder name in `folders` (names are case-sensitive; some servers "
                       "use \"INBOX.\" prefixes)");
    }
    return e;
  }
  MailboxInfo info;
  if (imap_->imap_selection_info) {
    info.uidvalidity = imap_->imap_selection_info->sel_uidvalidity;
    info.uidnext = imap_->imap_selection_info->sel_uidnext;
    info.exists = imap_->imap_selection_info->sel_exists;
  }
  return info;
}

namespace {
util::Result<std::vector<uint32_t>> RunSearch(mailimap* imap, mailimap_search_key* raw_key, uint32_t min_uid,
                                              const std::function<Error(int)>& error, uint32_t max_uid = UINT32_MAX) {
  SearchKeyPtr key(raw_key);
  clist* raw = nullptr;
  int r = mailimap_uid_search(imap, nullptr, key.get(), &raw);
  SearchResultPtr result(raw);
  if (r != MAILIMAP_NO_ERROR) return error(r);
  std::vector<uint32_t> uids;
  for (clistiter* it = result ? clist_begin(result.get()) : nullptr; it; it = clist_next(it)) {
    uint32_t uid = *static_cast<uint32_t*>(clist_content(it));
    if (uid >= min_uid && uid <= max_uid) uids.push_back(uid);
  }
  std::sort(uids.begin(), uids.end());
  uids.erase(std::unique(uids.begin(), uids.end()), uids.end());
  return uids;
}
}  // namespace

util::Result<std::vector<uint32_t>> Session::SearchUidsFrom(uint32_t from_uid) {
  // 0 is `last_uid + 1` after UID 4294967295, not "from the start" (session.h).
  if (from_uid == 0) return std::vector<uint32_t>();
  BeginCommand("UID SEARCH UID " + std::to_string(from_uid) + ":*");
  return RunSearch(imap_.get(), mailimap_search_key_new_uid(mailimap_set_new_interval(from_uid, 0)), from_uid,
                   [this](int r) { return CommandError("uid_search", r); });
}

util::Result<std::vector<uint32_t>> Session::SearchUidRange(uint32_t lo, uint32_t hi) {
  if (lo == 0 || hi < lo) return std::vector<uint32_t>();
  BeginCommand("UID SEARCH UID " + std::to_string(lo) + ":" + std::to_string(hi));
  return RunSearch(
      imap_.get(), mailimap_search_key_new_uid(mailimap_set_new_interval(lo, hi)), lo,
      [this](int r) { return CommandError("uid_search", r); }, hi);
}

util::Result<std::vector<uint32_t>> Session::SearchUnseen() {
  BeginCommand("UID SEARCH UNSEEN");
  // libetpan has no helper for UNSEEN; every other field of the key is empty.
  mailimap_search_key* key =
      mailimap_search_key_new(MAILIMAP_SEARCH_KEY_UNSEEN, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr,
                              nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, 0, nullptr, nullptr,
                              nullptr, nullptr, nullptr, nullptr, 0, nullptr, nullptr, nullptr);
  return RunSearch(imap_.get(), key, 1, [this](int r) { return CommandError("uid_search", r); });
}

namespace {

std::string FlagName(const mailimap_flag* f) {
  switch (f->fl_type) {
    case MAILIMAP_FLAG_ANSWERED: return "\\Answered";
    case MAILIMAP_FLAG_FLAGGED: return "\\Flagged";
    case MAILIMAP_FLAG_DELETED: return "\\Deleted";
    case MAILIMAP_FLAG_SEEN: return "\\Seen";
    case MAILIMAP_FLAG_DRAFT: return "\\Draft";
    case MAILIMAP_FLAG_KEYWORD: return f->fl_data.fl_keyword ? f->fl_data.fl_keyword : "";
    case MAILIMAP_FLAG_EXTENSION: return f->fl_data.fl_extension ? std::string("\\") + f->fl_data.fl_extension : "";
    default: return "";
  }
}

}  // namespace

namespace {

// One message's items, gathered from every FETCH response about it: RFC 3501
// §7.4.2 lets a server split them, and unsolicited FETCHes (flag changes)
// name the same message by its sequence number.
struct MetaParts {
  MessageMeta meta;
  bool have_structure = false;
};

void ApplyDynamic(const mailimap_msg_att_dynamic* dyn, MessageMeta& meta) {
  // The latest FLAGS wins; `FLAGS ()` parses to a NULL list (not an empty
  // one): a message with no flags, e.g. when another session took \Recent.
  meta.flags.clear();
  clist* flag_list = dyn->att_list;
  for (clistiter* f = flag_list ? clist_begin(flag_list) : nullptr; f; f = clist_next(f)) {
    auto* ff = static_cast<mailimap_flag_fetch*>(clist_content(f));
    // \Recent is per-session (RFC 3501 §2.3.2): leaving it out keeps a
    // replayed event identical to the first one.
    if (ff->fl_type != MAILIMAP_FLAG_FETCH_RECENT && ff->fl_flag) {
      std::string name = FlagName(ff->fl_flag);
      if (!name.empty()) meta.flags.push_back(name);
    }
  }
}

void ApplyStatic(const mailimap_msg_att_static* st, MetaParts& parts) {
  MessageMeta& meta = parts.meta;
  switch (st->att_type) {
    case MAILIMAP_MSG_ATT_UID: meta.uid = st->att_data.att_uid; break;
    case MAILIMAP_MSG_ATT_RFC822_SIZE: meta.size = st->att_data.att_rfc822_size; break;
    case MAILIMAP_MSG_ATT_BODYSTRUCTURE:
      meta.structure = PartTreeFromBodyStructure(st->att_data.att_bodystructure, &meta.structure_cut);
      parts.have_structure = true;
      break;
    case MAILIMAP_MSG_ATT_BODY_SECTION:
      if (st->att_data.att_body_section && st->att_data.att_body_section->sec_body_part) {
        meta.header.assign(st->att_data.att_body_section->sec_body_part, st->att_data.att_body_section->sec_length);
      }
      break;
    default: break;
  }
}

}  // namespace

util::Result<std::vector<MessageMeta>> Session::FetchMeta(const std::vector<uint32_t>& uids) {
  return FetchMetaItems(uids, true);
}

util::Result<std::vector<MessageMeta>> Session::FetchMetaLight(const std::vector<uint32_t>& uids) {
  return FetchMetaItems(uids, false);
}

util::Result<std::vector<MessageMeta>> Session::FetchMatchMeta(const std::vector<uint32_t>& uids) {
  return FetchMetaItems(uids, false, true);
}

util::Result<std::vector<MessageMeta>> Session::FetchMetaItems(const std::vector<uint32_t>& uids, bool structure,
                                                               bool message_id_only) {
  std::vector<MessageMeta> out;
  if (uids.empty()) return out;
  const char* header = message_id_only ? "BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])" : "BODY.PEEK[HEADER])";
  BeginCommand("UID FETCH of " + std::to_string(uids.size()) + " UIDs from " + std::to_string(uids.front()) +
                   (structure ? " (UID FLAGS RFC822.SIZE BODYSTRUCTURE " : " (UID FLAGS RFC822.SIZE ") + header,
               Budget{options_.max_meta_response_bytes, options_.max_meta_syntax_bytes});
  SetPtr set(mailimap_set_new_empty());
  for (uint32_t uid : uids) mailimap_set_add_single(set.get(), uid);
  FetchTypePtr type(mailimap_fetch_type_new_fetch_att_list_empty());
  mailimap_fetch_type_new_fetch_att_list_add(type.get(), mailimap_fetch_att_new_uid());
  mailimap_fetch_type_new_fetch_att_list_add(type.get(), mailimap_fetch_att_new_flags());
  mailimap_fetch_type_new_fetch_att_list_add(type.get(), mailimap_fetch_att_new_rfc822_size());
  if (structure) mailimap_fetch_type_new_fetch_att_list_add(type.get(), mailimap_fetch_att_new_bodystructure());
  mailimap_section* section = nullptr;
  if (message_id_only) {
    clist* names = clist_new();  // owned by the section from here (freed with free())
    clist_append(names, strdup("MESSAGE-ID"));
    section = mailimap_section_new_header_fields(mailimap_header_list_new(names));
  } else {
    section = mailimap_section_new_header();
  }
  mailimap_fetch_type_new_fetch_att_list_add(type.get(), mailimap_fetch_att_new_body_peek_section(section));

  clist* raw = nullptr;
  int r = mailimap_uid_fetch(imap_.get(), set.get(), type.get(), &raw);
  FetchResultPtr result(raw);
  if (r != MAILIMAP_NO_ERROR) return CommandError("uid_fetch", r);

  std::map<uint32_t, MetaParts> by_number;  // message sequence number -> items
  for (clistiter* it = result ? clist_begin(result.get()) : nullptr; it; it = clist_next(it)) {
    auto* att = static_cast<mailimap_msg_att*>(clist_content(it));
    MetaParts& parts = by_number[att->att_number];
    for (clistiter* a = clist_begin(att->att_list); a; a = clist_next(a)) {
      auto* item = static_cast<mailimap_msg_att_item*>(clist_content(a));
      if (item->att_type == MAILIMAP_MSG_ATT_ITEM_DYNAMIC && item->att_data.att_dyn) {
        ApplyDynamic(item->att_data.att_dyn, parts.meta);
      } else if (item->att_type == MAILIMAP_MSG_ATT_ITEM_STATIC && item->att_data.att_static) {
        ApplyStatic(item->att_data.att_static, parts);
      }
    }
  }
  for (auto& [number, parts] : by_number) {
    // Unsolicited FETCH responses (flag changes) carry no UID or structure.
    if (parts.meta.uid == 0 || (structure && !parts.have_structure)) continue;
    if (std::find(uids.begin(), uids.end(), parts.meta.uid) == uids.end()) continue;
    parts.meta.has_structure = structure;
    out.push_back(std::move(parts.meta));
  }
  std::sort(out.begin(), out.end(), [](const MessageMeta& a, const MessageMeta& b) { return a.uid < b.uid; });
  return out;
}

namespace {
/// The UID and the BODY[...] section of each FETCH response, by sequence
/// number: the two may come in separate responses (RFC 3501 §7.4.2), and
/// unsolicited ones (flag changes) carry no body. Points into `result`.
using BodiesByNumber = std::map<uint32_t, std::pair<uint32_t, const mailimap_msg_att_body_section*>>;

BodiesByNumber UidAndBodyByNumber(clist* result) {
  BodiesByNumber by_number;
  for (clistiter* it = result ? clist_begin(result) : nullptr; it; it = clist_next(it)) {
    auto* att = static_cast<mailimap_msg_att*>(clist_content(it));
    auto& [got_uid, body] = by_number[att->att_number];
    for (clistiter* a = clist_begin(att->att_list); a; a = clist_next(a)) {
      auto* item = static_cast<mailimap_msg_att_item*>(clist_content(a));
      if (item->att_type != MAILIMAP_MSG_ATT_ITEM_STATIC || !item->att_data.att_static) continue;
      auto* st = item->att_data.att_static;
      if (st->att_type == MAILIMAP_MSG_ATT_UID) got_uid = st->att_data.att_uid;
      if (st->att_type == MAILIMAP_MSG_ATT_BODY_SECTION) body = st->att_data.att_body_section;
    }
  }
  return by_number;
}

// `body_att` is a BODY.PEEK[...] fetch item; it is owned by the request from
// here. `max_length`: a partial fetch's length; more is refused.
util::Result<std::string> FetchOneSection(mailimap* imap, uint32_t uid, mailimap_fetch_att* body_att,
                                          std::optional<uint32_t> max_length, const std::function<Error(int)>& error) {
  SetPtr set(mailimap_set_new_single(uid));
  FetchTypePtr type(mailimap_fetch_type_new_fetch_att_list_empty());
  mailimap_fetch_type_new_fetch_att_list_add(type.get(), mailimap_fetch_att_new_uid());
  mailimap_fetch_type_new_fetch_att_list_add(type.get(), body_att);
  clist* raw = nullptr;
  int r = mailimap_uid_fetch(imap, set.get(), type.get(), &raw);
  FetchResultPtr result(raw);
  if (r != MAILIMAP_NO_ERROR) return error(r);
  const BodiesByNumber by_number = UidAndBodyByNumber(result.get());
  for (const auto& [number, found] : by_number) {
    const auto& [got_uid, body] = found;
    if (got_uid != uid || !body) continue;
    if (!body->sec_body_part) return std::string();  // NIL: an empty part
    if (max_length && body->sec_length > *max_length) {
      return Error("imap.partial_too_long", RetryClass::kBackoff,
                   "asked for " + std::to_string(*max_length) + " bytes of UID " + std::to_string(uid) +
                       ", the server sent " + std::to_string(body->sec_length) +
                       " (RFC 3501 §6.4.5 allows no more): the server is broken or hostile");
    }
    return std::string(body->sec_body_part, body->sec_length);
  }
  return Error(util::ErrorKind::kVanished, "imap.expunged", RetryClass::kBackoff,
               "message UID " + std::to_string(uid) + " vanished while being read (expunged)");
}
}  // namespace

util::Result<std::string> Session::FetchSection(uint32_t uid, const std::string& section) {
  BeginCommand("UID FETCH " + std::to_string(uid) + " (BODY.PEEK[" + section + "])");
  return FetchOneSection(imap_.get(), uid, mailimap_fetch_att_new_body_peek_section(SectionFor(section, false)),
                         std::nullopt, [this](int r) { return CommandError("uid_fetch", r); });
}

util::Result<std::string> Session::FetchSectionPart(uint32_t uid, const std::string& section, uint32_t offset,
                                                    uint32_t length) {
  BeginCommand("UID FETCH " + std::to_string(uid) + " (BODY.PEEK[" + section + "]<" + std::to_string(offset) + "." +
                   std::to_string(length) + ">)",
               Budget{uint64_t{length} + SessionOptions::kPartialSlack, SessionOptions::kPartialSlack});
  return FetchOneSection(imap_.get(), uid,
                         mailimap_fetch_att_new_body_peek_section_partial(SectionFor(section, false), offset, length),
                         length, [this](int r) { return CommandError("uid_fetch", r); });
}

util::Result<std::string> Session::FetchMimeHeaders(uint32_t uid, const std::string& section) {
  BeginCommand("UID FETCH " + std::to_string(uid) + " (BODY.PEEK[" + section + ".MIME])");
  return FetchOneSection(imap_.get(), uid, mailimap_fetch_att_new_body_peek_section(SectionFor(section, true)),
                         std::nullopt, [this](int r) { return CommandError("uid_fetch", r); });
}

util::Result<std::string> Session::RawCommand(const std::string& what, const std::string& command,
                                              const std::function<util::Status(const std::string&)>& on_line) {
  // Its tag ("mh<n>") cannot clash with libetpan's numeric tags.
  const std::string tag = "mh" + std::to_string(++raw_tag_);
  const std::string line_out = tag + " " + command + "\r\n";
  if (mailstream_write(imap_->imap_stream, line_out.data(), line_out.size()) < 0 ||
      mailstream_flush(imap_->imap_stream) < 0)
    return CommandError(what, MAILIMAP_ERROR_STREAM);
  for (int lines = 0; lines < 10000; ++lines) {
    char* raw = mailimap_read_line(imap_.get());
    if (!raw) return CommandError(what, MAILIMAP_ERROR_STREAM);
    std::string line(raw);
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
    if (line.rfind(tag + " ", 0) == 0) return line.substr(tag.size() + 1);
    if (util::Status s = on_line(line); !s.ok()) return s.error();
  }
  return Error("imap." + what, RetryClass::kBackoff, "no tagged answer to " + command);
}

util::Error Session::TooLargeError(const std::string& why) const {
  std::string bound = std::to_string(budget_.bytes) + " bytes";
  if (budget_.syntax != 0) bound += " (" + std::to_string(budget_.syntax) + " outside literals)";
  return Error(util::ErrorKind::kResponseTooLarge, "imap.response_too_large", RetryClass::kBackoff,
               "the response to " + command_ + " from " + ConnectionName(options_) + " " + why + " " + bound +
                   ", the bound for one command's response; mailhook stopped reading it and drops the "
                   "session. The message (or the server) is probably hostile or broken");
}

util::Status Session::ReadLiteral(uint64_t size, std::string* into) {
  mailstream* stream = imap_->imap_stream;
  // Refused before a byte is read when it cannot fit: what libetpan already
  // buffered was counted, the rest is still to come.
  // (Bytes buffered before this command began were not counted: hence the max.)
  const uint64_t read = ResponseBytesRead(stream);
  const uint64_t used = read - std::min<uint64_t>(read, stream->read_buffer_len);
  if (budget_.bytes != 0 && size > budget_.bytes - std::min(budget_.bytes, used)) {
    return TooLargeError("announced a " + std::to_string(size) + "-byte literal; refusing it, over");
  }
  // The buffer grows as bytes arrive, never from the announced size: a
  // server that announces much and sends little costs nothing.
  char chunk[16384];
  for (uint64_t got = 0; got < size;) {
    ssize_t r = mailstream_read(stream, chunk, static_cast<size_t>(std::min<uint64_t>(sizeof chunk, size - got)));
    if (r <= 0) return CommandError("literal", MAILIMAP_ERROR_STREAM);
    if (into) into->append(chunk, static_cast<size_t>(r));
    got += static_cast<uint64_t>(r);
  }
  return util::Ok();
}

util::Result<std::optional<std::string>> Session::RawFetchItem(uint32_t uid, const std::string& what,
                                                               const std::string& fetch_items, const std::string& item,
                                                               std::string* tagged) {
  // A server may split one message's items over several FETCH responses and
  // put the UID after a literal (RFC 3501 §7.4.2): gather per sequence number
  // and pick ours at the end.
  std::map<uint32_t, uint32_t> uid_of;
  std::map<uint32_t, std::string> value_of;
  std::optional<uint32_t> current;  // the FETCH response the line belongs to
  bool after_literal = false;
  auto on_line = [&](const std::string& line) -> util::Status {
    if (!after_literal) current = rawfetch::FetchNumber(line);
    if (!after_literal && !line.starts_with("* ")) {
      return Error("imap." + what, RetryClass::kBackoff, "unexpected line in a FETCH response");
    }
    if (current) {
      if (auto u = rawfetch::UidItem(line)) uid_of[*current] = *u;
    }
    const size_t value = current ? rawfetch::ItemValue(line, item) : std::string::npos;
    const std::optional<uint64_t> literal = rawfetch::TrailingLiteral(line);
    after_literal = literal.has_value();
    const bool literal_is_ours =
        literal && value != std::string::npos && (line[value] == '{' || line.compare(value, 2, "~{") == 0);
    if (literal) {
      std::string data;
      // An unsolicited literal is read and dropped, to stay in step.
      if (util::Status s = ReadLiteral(*literal, literal_is_ours ? &data : nullptr); !s.ok()) return s;
      if (literal_is_ours) value_of[*current] = std::move(data);
    } else if (value != std::string::npos) {
      std::string_view rest = std::string_view(line).substr(value);
      if (auto quoted = rawfetch::LeadingQuoted(rest)) {
        value_of[*current] = std::move(*quoted);
      } else if (!rest.starts_with("NIL")) {
        value_of[*current] = std::string(rest.substr(0, rest.find_first_of(" )")));
      }
    }
    return util::Ok();
  };
  auto reply = RawCommand(what, "UID FETCH " + std::to_string(uid) + " (" + fetch_items + ")", on_line);
  if (!reply.ok()) return reply.error();
  *tagged = *reply;
  for (auto& [number, value] : value_of) {
    auto u = uid_of.find(number);
    if (u != uid_of.end() && u->second == uid) return std::optional<std::string>(std::move(value));
  }
  return std::optional<std::string>();
}

util::Result<std::optional<uint64_t>> Session::FetchBinarySize(uint32_t uid, const std::string& section) {
  if (!HasCapability("BINARY")) return std::optional<uint64_t>();
  // libetpan 1.9 cannot parse BINARY.SIZE: read by hand.
  const std::string item = "BINARY.SIZE[" + section + "]";
  BeginCommand("UID FETCH " + std::to_string(uid) + " (" + item + ")");
  std::string tagged;
  auto value = RawFetchItem(uid, "binary_size", item, item, &tagged);
  if (!value.ok()) return value.error();
  // NO/BAD: the server could not decode this part (RFC 3516 §4.3
  // UNKNOWN-CTE); the size stays unknown and the caller measures it itself.
  if (!value->has_value()) return std::optional<uint64_t>();
  char* end = nullptr;
  errno = 0;
  uint64_t size = std::strtoull((*value)->c_str(), &end, 10);
  if ((*value)->empty() || *end != '\0' || errno == ERANGE) {
    return Error("imap.binary_size", RetryClass::kBackoff, "unreadable BINARY.SIZE in the server's response");
  }
  return std::optional<uint64_t>(size);
}

util::Result<std::optional<std::string>> Session::FetchBinary(uint32_t uid, const std::string& section) {
  if (!HasCapability("BINARY")) return std::optional<std::string>();
  // libetpan 1.9 cannot parse BINARY[] (its literal8 "~{n}"): read by hand.
  BeginCommand("UID FETCH " + std::to_string(uid) + " (BINARY.PEEK[" + section + "])");
  std::string tagged;
  auto body = RawFetchItem(uid, "binary", "BINARY.PEEK[" + section + "]", "BINARY[" + section + "]", &tagged);
  if (!body.ok()) return body.error();
  // NO/BAD (e.g. [UNKNOWN-CTE], RFC 3516 §4.3): unknown, and the caller
  // falls back to BODY[].
  if (!tagged.starts_with("OK")) return std::optional<std::string>();
  return body;
}

util::Result<std::map<uint32_t, std::string>> Session::FetchWholeMessages(const std::vector<uint32_t>& uids) {
  std::map<uint32_t, std::string> out;
  if (uids.empty()) return out;
  BeginCommand("UID FETCH of " + std::to_string(uids.size()) + " UIDs from " + std::to_string(uids.front()) +
               " (UID BODY.PEEK[])");
  SetPtr set(mailimap_set_new_empty());
  for (uint32_t uid : uids) mailimap_set_add_single(set.get(), uid);
  FetchTypePtr type(mailimap_fetch_type_new_fetch_att_list_empty());
  mailimap_fetch_type_new_fetch_att_list_add(type.get(), mailimap_fetch_att_new_uid());
  mailimap_fetch_type_new_fetch_att_list_add(type.get(),
                                             mailimap_fetch_att_new_body_peek_section(SectionFor("", false)));
  clist* raw = nullptr;
  int r = mailimap_uid_fetch(imap_.get(), set.get(), type.get(), &raw);
  FetchResultPtr result(raw);
  if (r != MAILIMAP_NO_ERROR) return CommandError("uid_fetch", r);
  const BodiesByNumber by_number = UidAndBodyByNumber(result.get());
  for (const auto& [number, found] : by_number) {
    const auto& [got_uid, body] = found;
    if (!body || std::find(uids.begin(), uids.end(), got_uid) == uids.end()) continue;
    out[got_uid] = body->sec_body_part ? std::string(body->sec_body_part, body->sec_length) : std::string();
  }
  return out;
}

util::Result<std::map<std::string, uint64_t>> Session::FetchBinarySizes(uint32_t uid,
                                                                        const std::vector<std::string>& sections) {
  std::map<std::string, uint64_t> out;
  if (sections.empty() || !HasCapability("BINARY")) return out;
  std::string items;
  for (const std::string& s : sections) items += (items.empty() ? "" : " ") + ("BINARY.SIZE[" + s + "]");
  BeginCommand("UID FETCH " + std::to_string(uid) + " (" + items + ")");
  // Values are numbers (atoms); literals are only unsolicited ones, read and
  // dropped to stay in step. Gathered per sequence number (RFC 3501 §7.4.2).
  std::map<uint32_t, uint32_t> uid_of;
  std::map<uint32_t, std::map<std::string, std::string>> values_of;
  std::optional<uint32_t> current;
  bool after_literal = false;
  auto on_line = [&](const std::string& line) -> util::Status {
    if (!after_literal) current = rawfetch::FetchNumber(line);
    if (!after_literal && !line.starts_with("* ")) {
      return Error("imap.binary_size", RetryClass::kBackoff, "unexpected line in a FETCH response");
    }
    if (current) {
      if (auto u = rawfetch::UidItem(line)) uid_of[*current] = *u;
      for (const std::string& s : sections) {
        const size_t at = rawfetch::ItemValue(line, "BINARY.SIZE[" + s + "]");
        if (at == std::string::npos) continue;
        std::string_view rest = std::string_view(line).substr(at);
        values_of[*current][s] = std::string(rest.substr(0, rest.find_first_of(" )")));
      }
    }
    const std::optional<uint64_t> literal = rawfetch::TrailingLiteral(line);
    after_literal = literal.has_value();
    return literal ? ReadLiteral(*literal, nullptr) : util::Ok();
  };
  auto reply = RawCommand("binary_size", "UID FETCH " + std::to_string(uid) + " (" + items + ")", on_line);
  if (!reply.ok()) return reply.error();
  // NO/BAD: some part could not be decoded (RFC 3516 §4.3 UNKNOWN-CTE):
  // none is trusted; the caller asks part by part.
  if (!reply->starts_with("OK")) return out;
  for (const auto& [number, values] : values_of) {
    auto u = uid_of.find(number);
    if (u == uid_of.end() || u->second != uid) continue;
    for (const auto& [section, text] : values) {
      char* end = nullptr;
      errno = 0;
      const uint64_t size = std::strtoull(text.c_str(), &end, 10);
      if (text.empty() || *end != '\0' || errno == ERANGE) continue;  // NIL or unreadable: unknown
      out[section] = size;
    }
  }
  return out;
}

namespace {

bool SessionBroken(int code) {
  return code == MAILIMAP_ERROR_STREAM || code == MAILIMAP_ERROR_PARSE || code == MAILIMAP_ERROR_FATAL ||
         code == MAILIMAP_ERROR_MEMORY;
}

mailimap_flag* MakeFlag(const std::string& name) {
  std::string lower;
  for (char c : name) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower == "\\seen") return mailimap_flag_new_seen();
  if (lower == "\\answered") return mailimap_flag_new_answered();
  if (lower == "\\flagged") return mailimap_flag_new_flagged();
  if (lower == "\\deleted") return mailimap_flag_new_deleted();
  if (lower == "\\draft") return mailimap_flag_new_draft();
  if (!name.empty() && name[0] == '\\') return mailimap_flag_new_flag_extension(strdup(name.c_str() + 1));
  return mailimap_flag_new_flag_keyword(strdup(name.c_str()));
}

}  // namespace

util::Status Session::AddFlags(uint32_t uid, const std::vector<std::string>& flags) {
  if (flags.empty()) return util::Ok();
  mailimap_flag_list* list = mailimap_flag_list_new_empty();
  for (const auto& f : flags) mailimap_flag_list_add(list, MakeFlag(f));
  StoreAttPtr att(mailimap_store_att_flags_new_add_flags_silent(list));
  SetPtr set(mailimap_set_new_single(uid));
  BeginCommand("UID STORE " + std::to_string(uid) + " +FLAGS.SILENT");
  int r = mailimap_uid_store(imap_.get(), set.get(), att.get());
  if (r == MAILIMAP_NO_ERROR) return util::Ok();
  if (SessionBroken(r)) return CommandError("uid_store", r);
  return Error("imap.store_flags", RetryClass::kNeedsOperator,
               "cannot set flags on UID " + std::to_string(uid) + ": server said \"" + ServerText() +
                   "\" (keywords need a server that allows them: check PERMANENTFLAGS)");
}

util::Status Session::Move(uint32_t uid, const std::string& folder) {
  SetPtr set(mailimap_set_new_single(uid));
  BeginCommand("UID MOVE (or COPY) " + std::to_string(uid));
  auto refused = [&](const std::string& what) {
    return Error("imap.move", RetryClass::kNeedsOperator,
                 what + " of UID " + std::to_string(uid) + " to \"" + folder + "\" refused: server said \"" +
                     ServerText() + "\" (does the folder exist? create it or fix on_delivered.move_to)");
  };
  if (HasCapability("MOVE")) {
    int r = mailimap_uid_move(imap_.get(), set.get(), folder.c_str());
    if (r == MAILIMAP_NO_ERROR) return util::Ok();
    if (SessionBroken(r)) return CommandError("uid_move", r);
    return refused("MOVE");
  }
  int r = mailimap_uid_copy(imap_.get(), set.get(), folder.c_str());
  if (r != MAILIMAP_NO_ERROR) return SessionBroken(r) ? CommandError("uid_copy", r) : refused("COPY");
  if (auto s = AddFlags(uid, {"\\Deleted"}); !s.ok()) return s;
  if (mailimap_has_uidplus(imap_.get()) != 1) {
    util::Log(util::Area::kImap)
        .warn(
            "imap.move_without_uidplus uid={} note=\"copied and flagged \\Deleted; not "
            "expunged, since plain EXPUNGE would remove other deleted messages\"",
            uid);
    return util::Ok();
  }
  BeginCommand("UID EXPUNGE " + std::to_string(uid));
  r = mailimap_uid_expunge(imap_.get(), set.get());
  if (r != MAILIMAP_NO_ERROR) return SessionBroken(r) ? CommandError("uid_expunge", r) : refused("UID EXPUNGE");
  return util::Ok();
}

void Session::AwaitLivenessAnswer(bool short_deadline) {
  if (!imap_->imap_stream || options_.answer_deadline.count() <= 0) return;
  SetStreamTimeout(imap_->imap_stream, short_deadline ? options_.answer_deadline : options_.timeout);
}

util::Status Session::Noop() {
  BeginCommand("NOOP");
  AwaitLivenessAnswer(true);
  int r = mailimap_noop(imap_.get());
  if (r != MAILIMAP_NO_ERROR) return CommandError("noop", r);
  AwaitLivenessAnswer(false);
  return util::Ok();
}

util::Result<IdleWake> Session::Idle(std::chrono::milliseconds max_wait, int wake_fd) {
  const int stop_fd = options_.stop_fd;
  if (!HasCapability("IDLE")) {
    // No IDLE (rare): poll with NOOP at max_wait, still interruptible.
    pollfd pfd[2] = {{stop_fd, POLLIN, 0}, {wake_fd, POLLIN, 0}};
    int r = poll(pfd, 2, static_cast<int>(max_wait.count()));
    if (r > 0 && (pfd[0].revents & POLLIN)) return IdleWake::kStopped;
    if (r > 0) return IdleWake::kWoken;
    // Activity only when NOOP brought news: max_wait is now the liveness
    // interval, and a sync each minute per folder would cost far more.
    const uint32_t before = imap_->imap_selection_info ? imap_->imap_selection_info->sel_exists : 0;
    if (auto s = Noop(); !s.ok()) return s.error();
    const bool expunged = imap_->imap_response_info && imap_->imap_response_info->rsp_expunged &&
                          !clist_isempty(imap_->imap_response_info->rsp_expunged);
    const uint32_t after = imap_->imap_selection_info ? imap_->imap_selection_info->sel_exists : 0;
    return after != before || expunged ? IdleWake::kActivity : IdleWake::kTimeout;
  }
  // One budget from IDLE to DONE: what the server announces meanwhile is
  // parsed as DONE's response.
  BeginCommand("IDLE");
  // The continuation ("+ idling") comes at once; a stop in between would
  // leave the connection half way into IDLE and cost it its LOGOUT. The
  // stop is seen by the poll below instead (the fd stays readable), and the
  // command timeout still bounds a server that never answers.
  if (imap_->imap_stream) SetInterruptFd(imap_->imap_stream, -1);
  AwaitLivenessAnswer(true);
  int r = mailimap_idle(imap_.get());
  if (imap_->imap_stream) SetInterruptFd(imap_->imap_stream, stop_fd);
  if (r != MAILIMAP_NO_ERROR) return CommandError("idle", r);
  AwaitLivenessAnswer(false);

  IdleWake wake = IdleWake::kTimeout;
  // Data libetpan or OpenSSL already buffered never wakes poll().
  if (imap_->imap_stream->read_buffer_len > 0 || HasPendingTlsData(imap_->imap_stream)) {
    wake = IdleWake::kActivity;
  } else {
    pollfd fds[3] = {{mailimap_idle_get_fd(imap_.get()), POLLIN, 0}, {stop_fd, POLLIN, 0}, {wake_fd, POLLIN, 0}};
    auto deadline = std::chrono::steady_clock::now() + max_wait;
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      // Negative fds are ignored by poll().
      int n = poll(fds, 3, static_cast<int>(left.count()));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return Error("imap.idle", RetryClass::kBackoff, std::string("poll failed: ") + strerror(errno));
      if (n == 0) break;
      if (stop_fd >= 0 && (fds[1].revents & POLLIN)) {
        wake = IdleWake::kStopped;
      } else if (wake_fd >= 0 && (fds[2].revents & POLLIN) && !fds[0].revents) {
        wake = IdleWake::kWoken;
      } else {
        wake = IdleWake::kActivity;
      }
      break;
    }
  }
  if (wake == IdleWake::kStopped) {
    // Let DONE through although the stop fd fired, but only briefly.
    SetInterruptFd(imap_->imap_stream, -1);
    SetStreamTimeout(imap_->imap_stream, std::chrono::milliseconds(2000));
  } else {
    AwaitLivenessAnswer(true);
  }
  // libetpan parses an EXISTS that comes with DONE's answer into the
  // selection info: without this look it would go unreported.
  const uint32_t exists = imap_->imap_selection_info ? imap_->imap_selection_info->sel_exists : 0;
  r = mailimap_idle_done(imap_.get());
  if (r != MAILIMAP_NO_ERROR) return CommandError("idle_done", r);
  AwaitLivenessAnswer(false);
  if (wake == IdleWake::kTimeout && imap_->imap_selection_info && imap_->imap_selection_info->sel_exists != exists) {
    wake = IdleWake::kActivity;
  }
  return wake;
}

void Session::Logout() {
  if (!imap_ || !imap_->imap_stream) return;
  SetInterruptFd(imap_->imap_stream, -1);
  SetStreamTimeout(imap_->imap_stream, std::chrono::milliseconds(2000));
  BeginCommand("LOGOUT");
  mailimap_logout(imap_.get());
  if (imap_->imap_stream) {
    mailstream_close(imap_->imap_stream);
    imap_->imap_stream = nullptr;
  }
}

// Account-level calls (Status, ListFolders, NotifySet, IdleForEvents): session_notify.cc.

}  // namespace mailhook::imap
