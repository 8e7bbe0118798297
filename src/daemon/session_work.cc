#include "daemon/session_work.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <iterator>
#include <map>
#include <stdexcept>
#include <string_view>
#include <thread>
#include <tuple>
#include <utility>

#include "daemon/imap_section_source.h"
#include "daemon/whole_message_source.h"
#include "mime/event.h"
#include "mime/extractor.h"
#include "mime/mime_parser.h"
#include "util/base64.h"

namespace mailhook::daemon {
namespace {

using std::chrono::milliseconds;

// UIDs per SEARCH window: an answer of ~800 KB, well inside a response's budget.
constexpr uint32_t kSearchWindow = 100000;

}  // namespace

util::Status FolderWatcher::SessionWork::Start() {
  auto mark = store_.watermarks().Get(w_.account_.name, w_.folder_);
  if (!mark.ok()) return mark.error();
  auto attempts = store_.attempts().List(w_.account_.name, w_.folder_, info_.uidvalidity);
  if (!attempts.ok()) return attempts.error();
  for (store::Attempt& a : *attempts) attempts_[a.uid] = std::move(a);
  const StartKind kind = ClassifyStart(*mark, info_.uidvalidity);
  auto plan = kind == StartKind::kUidValidityChanged ? PlanAfterChange(**mark) : Plan(*mark, kind);
  if (!plan.ok()) return plan.error();
  auto other = store_.fingerprints().HasOther(w_.account_.name, w_.folder_, info_.uidvalidity);
  if (!other.ok()) return other.error();
  old_generation_ = *other;
  committer_.emplace(store_, w_.account_.name, w_.folder_, plan->mark, w_.on_committed_, CommitLimits());
  if (w_.fault_first_pass_commits_ > 0) {
    committer_->SetAfterCommit([this](uint32_t up_to, bool wrote_mark, bool stored_events) {
      // A crash inside the first pass: its events stored, its watermark not.
      if (!wrote_mark && stored_events && w_.fault_first_pass_commits_ > 0 && --w_.fault_first_pass_commits_ == 0) {
        Fault(up_to);
      }
    });
  }
  if (plan->store_mark_now) {
    // A folder's first watermark is uncovered up to its baseline, which
    // CoverHandled (after the catch-up) fingerprints.
    if (auto s = store_.watermarks().Set(w_.account_.name, w_.folder_, plan->mark); !s.ok()) return s;
  } else if (!plan->first_pass.empty()) {
    w_.state_ = WatchState::kCatchingUp;
    if (auto s = Process(plan->first_pass, plan->first_pass_end, true); !s.ok()) return s;
  }
  return w_.synced_once_ ? util::Ok() : PruneFingerprints();
}

util::Result<StartPlan> FolderWatcher::SessionWork::Plan(const std::optional<store::Watermark>& stored,
                                                         StartKind kind) {
  const config::Account& account = w_.account_;
  ServerStatus server{info_.uidvalidity, info_.uidnext, std::nullopt, {}};
  if (NeedsHighestUid(kind, info_.uidnext)) {
    auto all = session_.SearchUidsFrom(1);
    if (!all.ok()) return all.error();
    if (!all->empty()) server.highest_uid = all->back();
  }
  if (NeedsUnseen(kind, account.start_from)) {
    auto unseen = session_.SearchUnseen();
    if (!unseen.ok()) return unseen.error();
    server.unseen = std::move(*unseen);
  }
  StartPlan plan = PlanStart(stored, server, account.start_from);
  if (kind != StartKind::kResume) {
    log_->info("imap.baseline account={} folder={} start_from={} last_uid={} unseen={}", account.name, w_.folder_,
               StartFromName(account.start_from), plan.first_pass_end, server.unseen.size());
  }
  return plan;
}

util::Status FolderWatcher::SessionWork::CatchUp() {
  // Always resync by UID: EXISTS counts and notifications are not trusted
  // (DESIGN.md, libetpan 1.9.4 IDLE bug). At the top UID nothing can follow
  // (RFC 3501 §2.3.1.1: the server must change UIDVALIDITY first), and
  // last_uid + 1 would wrap.
  while (!w_.stop_.fired() && committer_->mark().last_uid < UINT32_MAX) {
    auto uids = SearchNew();
    if (!uids.ok()) return uids.error();
    if (uids->empty()) break;
    log_->debug("imap.catch_up account={} folder={} from_uid={} count={}", w_.account_.name, w_.folder_,
                committer_->mark().last_uid + 1, uids->size());
    if (auto s = Process(*uids, 0, false); !s.ok()) return s;
    found_new_ = true;
    // Messages that arrived while we fetched: search again until a search
    // finds nothing new, so none waits for the next notification.
  }
  if (w_.HasPostActions() && !w_.stop_.fired()) {
    if (auto s = w_.ApplyPostActions(session_, store_, info_.uidvalidity); !s.ok()) return s;
  }
  return util::Ok();
}

util::Result<std::vector<uint32_t>> FolderWatcher::SessionWork::SearchNew() {
  // Below the UIDNEXT that SELECT reported, search in windows: the answer to
  // `UID SEARCH UID n:*` in a folder of millions (start_from: all, a long
  // outage) would be larger than one response may be. No message can ever
  // appear in an empty window below UIDNEXT (RFC 3501 §2.3.1.1: new UIDs
  // are at least UIDNEXT), so the watermark moves past it.
  const auto last = [this] { return committer_->mark().last_uid; };
  while (info_.uidnext > 0 && last() < info_.uidnext - 1 && info_.uidnext - 1 - last() > kSearchWindow) {
    const uint32_t lo = last() + 1;
    const uint32_t hi = lo + kSearchWindow - 1;
    auto uids = session_.SearchUidRange(lo, hi);
    if (!uids.ok() || !uids->empty()) return uids;
    if (auto s = committer_->SkipTo(hi); !s.ok()) return s.error();
  }
  return session_.SearchUidsFrom(last() + 1);
}

util::Status FolderWatcher::SessionWork::Process(const std::vector<uint32_t>& uids, uint32_t final_mark,
                                                 bool first_pass) {
  committer_->BeginPass(first_pass, final_mark);
  const auto failed_before = [this](uint32_t uid) { return attempts_.contains(uid); };
  for (size_t i = 0; i < uids.size();) {
    std::vector<uint32_t> batch = committer_->NextBatch(uids, i, failed_before);
    i += batch.size();
    if (auto s = ProcessBatch(batch, i >= uids.size()); !s.ok()) {
      // Best effort: a shutdown or a full disk must not count against the
      // messages (three restarts would make a healthy message unprocessable).
      if (NotTheMessages(s.error())) (void)store_.attempts().Refund(w_.account_.name, w_.folder_, batch);
      return s;
    }
  }
  return util::Ok();
}

util::Status FolderWatcher::SessionWork::ProcessBatch(const std::vector<uint32_t>& batch, bool last) {
  const config::Account& account = w_.account_;
  // Count the attempt before it starts: a message that crashes or hangs the
  // process is counted too. A batch only marks its messages, so that after a
  // failure the next session takes them one at a time and counts only those
  // attempts: one poison message never dooms its neighbours.
  if (auto s = store_.attempts().Begin(account.name, w_.folder_, info_.uidvalidity, batch); !s.ok()) return s;
  for (uint32_t uid : batch) {
    store::Attempt& a = attempts_[uid];
    a.uid = uid;
    if (batch.size() == 1) ++a.count;
  }
  const store::Attempt& first = attempts_[batch.front()];
  if (batch.size() == 1 && first.count > account.limits.max_attempts) {
    if (auto s = GatherUnprocessable(batch.front(), first); !s.ok()) return s;
  } else if (batch.size() == 1 && first.last_code == "imap.response_too_large") {  // read back from the store
    // Its structure alone was more than a meta fetch may read (a part bomb):
    // read the message whole and parse it here, under the part cap.
    if (auto s = GatherWhole(batch.front()); !s.ok()) return Blame(batch.front(), s.error(), false);
  } else if (auto s = GatherBatch(batch); !s.ok()) {
    return s;
  }
  for (uint32_t uid : batch) attempts_.erase(uid);  // committed below, or vanished
  return committer_->BatchDone(batch.back(), last);
}

util::Status FolderWatcher::SessionWork::GatherBatch(const std::vector<uint32_t>& batch) {
  auto metas = session_.FetchMeta(batch);
  if (!metas.ok()) return batch.size() == 1 ? Blame(batch.front(), metas.error(), false) : metas.error();
  if (auto s = SkipHandledBefore(*metas); !s.ok()) return s;
  std::vector<uint32_t> asked;
  auto whole = FetchSmallWhole(*metas, asked);
  // Like the meta fetch: a failure of several messages' command blames none;
  // the next session takes them one at a time.
  if (!whole.ok()) return batch.size() == 1 ? Blame(batch.front(), whole.error(), false) : whole.error();
  for (const imap::MessageMeta& meta : *metas) {
    auto bytes = whole->extract(meta.uid);  // freed once its message is gathered
    if (!bytes && std::binary_search(asked.begin(), asked.end(), meta.uid)) {
      // Absent from the BODY.PEEK[] answer: expunged since the meta fetch.
      log_->warn("imap.message_vanished account={} folder={} uid={}", w_.account_.name, w_.folder_, meta.uid);
    } else if (auto s = Gather(meta, bytes ? &bytes.mapped() : nullptr); !s.ok()) {
      return Blame(meta.uid, s.error(), batch.size() > 1);
    }
    if (auto s = committer_->MessageDone(meta.uid); !s.ok()) return s;
  }
  return util::Ok();
}

uint64_t FolderWatcher::SessionWork::WholeFetchMaxBytes() {
  const char* v = std::getenv("MAILHOOK_TEST_WHOLE_FETCH_MAX_BYTES");
  if (v == nullptr || *v == '\0') return kWholeFetchMaxBytes;
  return std::strtoull(v, nullptr, 10);
}

BatchCommitter::Limits FolderWatcher::SessionWork::CommitLimits() {
  BatchCommitter::Limits limits;
  const char* v = std::getenv("MAILHOOK_TEST_COMMIT_MAX_BYTES");
  if (v != nullptr && *v != '\0') limits.max_bytes = std::strtoull(v, nullptr, 10);
  return limits;
}

util::Result<std::map<uint32_t, std::string>> FolderWatcher::SessionWork::FetchSmallWhole(
    const std::vector<imap::MessageMeta>& metas, std::vector<uint32_t>& asked) {
  std::map<uint32_t, std::string> out;
  const uint64_t max = std::min(whole_fetch_max_, w_.extract_options_.max_whole_fetch_bytes);
  std::vector<uint32_t> command;
  uint64_t command_bytes = 0;
  const auto send = [&]() -> util::Status {
    if (command.empty()) return util::Ok();
    auto got = session_.FetchWholeMessages(command);
    if (!got.ok()) return got.error();
    out.merge(*got);
    command.clear();
    command_bytes = 0;
    return util::Ok();
  };
  for (const imap::MessageMeta& meta : metas) {
    // A structure cut short makes the server path flag omitted parts, which
    // a local parse would not: such a message keeps the server path.
    if (meta.size >= max || meta.structure_cut || !meta.has_structure) continue;
    if (command_bytes + meta.size > kWholeFetchCommandBytes) {
      if (auto s = send(); !s.ok()) return s.error();
    }
    command.push_back(meta.uid);
    asked.push_back(meta.uid);
    command_bytes += meta.size;
  }
  if (auto s = send(); !s.ok()) return s.error();
  std::sort(asked.begin(), asked.end());
  if (!asked.empty()) {
    log_->debug("imap.fetch_whole account={} folder={} messages={} of={}", w_.account_.name, w_.folder_, asked.size(),
                metas.size());
  }
  return out;
}

util::Status FolderWatcher::SessionWork::Blame(uint32_t uid, const util::Error& error, bool in_batch) {
  if (NotTheMessages(error)) return error;  // Process() takes the attempt back
  store::Attempt& a = attempts_[uid];
  if (in_batch) ++a.count;  // known to be this message's, though attempts().Begin did not count it
  a.last_code = error.code();
  a.last_error = error.message();
  log_->warn("imap.message_failed account={} folder={} uid={} attempt={} of={} cause=\"{}\"", w_.account_.name,
             w_.folder_, uid, a.count, w_.account_.limits.max_attempts, error.message());
  w_.metrics_.message_failures.Inc();
  // Best effort: the count is what matters, and it is already durable.
  (void)store_.attempts().RecordFailure(w_.account_.name, w_.folder_, uid, error.code(), error.message(), in_batch);
  return error;
}

util::Status FolderWatcher::SessionWork::Gather(const imap::MessageMeta& meta, std::string* whole) {
  try {
    if (!w_.fault_subject_.empty() && meta.header.find(w_.fault_subject_) != std::string::npos) Fault(meta.uid);
    return whole ? GatherLocal(meta, std::move(*whole)) : GatherUnguarded(meta);
  } catch (const std::exception& e) {
    return util::Error("daemon.exception", util::RetryClass::kBackoff,
                       std::string("extracting the message failed: ") + e.what());
  }
}

util::Status FolderWatcher::SessionWork::GatherWhole(uint32_t uid) {
  auto metas = session_.FetchMetaLight({uid});
  if (!metas.ok()) return metas.error();
  if (auto s = SkipHandledBefore(*metas); !s.ok()) return s;
  if (metas->empty()) return util::Ok();  // expunged meanwhile, or handled before a UIDVALIDITY change
  const imap::MessageMeta& meta = metas->front();
  mime::ExtractOptions options = w_.extract_options_;
  options.message_size = meta.size;
  if (meta.size > options.max_whole_fetch_bytes) {
    return util::Error("daemon.too_large", util::RetryClass::kBackoff,
                       "the message's structure is too large to read and the message (" +
                           std::to_string(meta.size >> 20) + " MiB) too large to parse here (over " +
                           std::to_string(options.max_whole_fetch_bytes >> 20) + " MiB)");
  }
  log_->info("imap.message_read_whole account={} folder={} uid={} size={} cause=\"structure too large\"",
             w_.account_.name, w_.folder_, uid, meta.size);
  std::string bytes;
  ImapSectionSource source(session_, uid);
  if (auto s = source.StreamBody("",
                                 [&](std::string_view piece) {
                                   if (bytes.size() + piece.size() > options.max_whole_fetch_bytes) {
                                     return util::Status(
                                         util::Error("daemon.too_large", util::RetryClass::kBackoff,
                                                     "the message grew past its RFC822.SIZE while being read"));
                                   }
                                   bytes.append(piece);
                                   return util::Ok();
                                 });
      !s.ok()) {
    return Skipped(uid, s.error());
  }
  auto content = mime::ExtractWhole(std::move(bytes), options);
  if (!content.ok()) return Skipped(uid, content.error());
  return AddEvent(meta, *content);
}

void FolderWatcher::SessionWork::Fault(uint32_t uid) {
  const std::string& action = w_.fault_action_;
  log_->warn("test.fault account={} folder={} uid={} action={}", w_.account_.name, w_.folder_, uid, action);
  if (action == "abort") std::abort();
  if (action == "transient_once") {
    inject_transient_ = !w_.transient_fault_fired_;
    w_.transient_fault_fired_ = true;
    return;
  }
  if (action.starts_with("sleep:")) {
    std::this_thread::sleep_for(milliseconds(std::atoll(action.c_str() + 6)));
    return;
  }
  throw std::runtime_error("injected fault (MAILHOOK_TEST_FAULT_SUBJECT)");
}

util::Status FolderWatcher::SessionWork::Skipped(uint32_t uid, const util::Error& error) {
  if (!error.IsVanished()) return error;
  log_->warn("imap.message_vanished account={} folder={} uid={}", w_.account_.name, w_.folder_, uid);
  return util::Ok();
}

std::optional<util::Error> FolderWatcher::SessionWork::TakeInjectedError() {
  if (!std::exchange(inject_transient_, false)) return std::nullopt;
  return util::Error(util::ErrorKind::kStore, "store.busy", util::RetryClass::kRetryNow,
                     "injected transient fault (MAILHOOK_TEST_FAULT_ACTION)");
}

// Turns one message into its events (one per matching target) in the committer.
// The extracted content ends with this call; attachment contents live on in
// the items' pieces until they are committed.
util::Status FolderWatcher::SessionWork::GatherUnguarded(const imap::MessageMeta& meta) {
  ImapSectionSource source(session_, meta.uid);
  mime::ExtractOptions options = w_.extract_options_;
  options.message_size = meta.size;
  std::optional<util::Error> injected = TakeInjectedError();
  auto content = injected ? util::Result<mime::MessageContent>(*injected)
                          : mime::Extract(meta.header, meta.structure, source, options);
  if (!content.ok()) return Skipped(meta.uid, content.error());
  if (meta.structure_cut) {
    // The server's structure was deeper or larger than we convert: say so.
    if (!content->truncated) content->truncated.emplace();
    content->truncated->attachments_omitted = std::max<uint64_t>(content->truncated->attachments_omitted, 1);
  }
  return AddEvent(meta, *content);
}

util::Status FolderWatcher::SessionWork::GatherLocal(const imap::MessageMeta& meta, std::string whole) {
  mime::ExtractOptions options = w_.extract_options_;
  options.message_size = meta.size;
  if (std::optional<util::Error> injected = TakeInjectedError()) return *injected;
  // Parsed and extracted as `mailhook parse` does (mime::ExtractWhole),
  // with raw bodies checked against the server (WholeMessageSource).
  const mime::ParsedMessage parsed = mime::ParseMessage(std::move(whole), options.max_parts);
  WholeMessageSource source(parsed, session_, meta.uid);
  auto content = mime::Extract(parsed.header_block, parsed.root, source, options);
  if (!content.ok()) return Skipped(meta.uid, content.error());
  return AddEvent(meta, *content, &parsed.data);
}

util::Status FolderWatcher::SessionWork::AddEvent(const imap::MessageMeta& meta, const mime::MessageContent& content,
                                                  const std::string* whole) {
  mime::EventMeta em{w_.account_.name, w_.folder_, info_.uidvalidity, meta.uid,
                     meta.flags,       meta.size,  mime::NowRfc3339()};
  const std::string event_id = mime::EventId(w_.account_.name, w_.folder_, info_.uidvalidity, meta.uid);
  const std::vector<Route> routes = w_.Routes(&content);
  // The original's bytes only when a forward attaches them: read (or
  // encoded) once per message, one shared piece in each such event.
  mime::EventOriginal original;
  if (std::any_of(routes.begin(), routes.end(), [](const Route& r) { return r.original_message; })) {
    auto base64 = OriginalBase64(meta, whole);
    if (base64.ok()) {
      original.base64 = std::move(*base64);
    } else if (OriginalUnreadable(meta.uid, base64.error())) {
      original.omitted = "unreadable";  // only the forwards lose it; every route gets its event
    } else {
      return Skipped(meta.uid, base64.error());
    }
  }
  // One event per attachment mode (and content limit), shared by the routes
  // that want the same: a hostile body escaped to JSON is large, and it is
  // built once, not once per target. Pieces: the attachment contents are
  // shared too and written to the store as they are, never joined here.
  using Pieces = std::vector<std::shared_ptr<const std::string>>;
  std::map<std::tuple<config::AttachmentMode, uint64_t, bool, bool>, Pieces> built;
  AddItems(event_id, meta.uid, routes, [&](const Route& r) {
    const uint64_t limit = r.attachments == config::AttachmentMode::kContent ? r.max_attachment_bytes : 0;
    auto [it, fresh] = built.try_emplace({r.attachments, limit, r.auto_reply_headers, r.original_message});
    if (fresh) {
      it->second = mime::EventPieces(em, content, r.attachments, r.max_attachment_bytes, r.auto_reply_headers,
                                     r.original_message ? &original : nullptr);
    }
    return it->second;
  });
  w_.metrics_.messages.Inc();
  return util::Ok();
}

util::Result<std::shared_ptr<const std::string>> FolderWatcher::SessionWork::OriginalBase64(
    const imap::MessageMeta& meta, const std::string* whole) {
  if (whole) {
    if (whole->size() > mime::kMaxOriginalBytes) return std::shared_ptr<const std::string>();
    return std::make_shared<const std::string>(util::Base64Encode(*whole));
  }
  // Not read whole (the server path): BODY.PEEK[] in pieces, encoded as
  // they come, so the raw message is never held; never more than the limit.
  if (meta.size > mime::kMaxOriginalBytes) return std::shared_ptr<const std::string>();
  auto out = std::make_shared<std::string>();
  out->reserve((meta.size + 2) / 3 * 4);
  util::Base64Encoder encoder;
  uint64_t read = 0;
  bool over = false;
  ImapSectionSource source(session_, meta.uid);
  auto s = source.StreamBody("", [&](std::string_view piece) {
    read += piece.size();
    if (read > mime::kMaxOriginalBytes) {
      over = true;  // grew past its RFC822.SIZE: stop reading, attach nothing
      return util::Status(util::Error("daemon.original_too_large", util::RetryClass::kBackoff, "over the limit"));
    }
    encoder.Add(piece, *out);
    return util::Ok();
  });
  if (over) return std::shared_ptr<const std::string>();
  if (!s.ok()) return s.error();
  encoder.Finish(*out);
  return std::shared_ptr<const std::string>(std::move(out));
}

bool FolderWatcher::SessionWork::OriginalUnreadable(uint32_t uid, const util::Error& error) {
  // Not the message's: a shutdown, the store, an expunge (skipped), a
  // response over the budget (the session is dropped), or a server that
  // says it is busy or going away. These are tried again as before.
  if (NotTheMessages(error) || error.IsVanished() || error.IsResponseTooLarge()) return false;
  static constexpr std::string_view kTransient[] = {"imap.unavailable", "imap.limit", "imap.inuse", "imap.bye"};
  if (std::find(std::begin(kTransient), std::end(kTransient), error.code()) != std::end(kTransient)) return false;
  // A refusal may be momentary ([SERVERBUG] during a disk hiccup, a read
  // that timed out): the message is tried again as any other failure, and
  // only its last allowed attempt goes out without the original instead of
  // becoming message.unprocessable for every route.
  const auto it = attempts_.find(uid);
  if (it == attempts_.end() || it->second.count < w_.account_.limits.max_attempts) return false;
  // A lost connection fails the NOOP too; a refusal of this message's
  // BODY.PEEK[] leaves the session answering.
  if (!session_.Noop().ok()) return false;
  log_->warn(
      "imap.original_unreadable account={} folder={} uid={} cause=\"{}\" note=\"the forwards that attach the "
      "original go out without it; every route gets its event\"",
      w_.account_.name, w_.folder_, uid, error.message());
  return true;
}

util::Status FolderWatcher::SessionWork::GatherUnprocessable(uint32_t uid, const store::Attempt& attempt) {
  const std::string reason = attempt.last_error.empty()
                                 ? "the process stopped while extracting this message (crash or kill)"
                                 : attempt.last_error;
  const int attempts = attempt.count - 1;  // the one just counted is not made
  log_->error(
      "imap.message_unprocessable account={} folder={} uid={} attempts={} cause=\"{}\" note=\"sent as "
      "message.unprocessable; the folder moves on\"",
      w_.account_.name, w_.folder_, uid, attempts, reason);
  // What can still be read cheaply: the header (bounded) for the envelope.
  mime::EventMeta em{w_.account_.name, w_.folder_, info_.uidvalidity, uid, {}, 0, mime::NowRfc3339()};
  // This path must not fail because of the message, or the folder would be
  // stuck again: a header the server cannot send within the budget, or that
  // throws, leaves the envelope null. A broken session is retried as usual.
  std::string header;
  auto light = session_.FetchMetaLight({uid});  // no BODYSTRUCTURE; bounded
  if (light.ok()) {
    if (auto s = SkipHandledBefore(*light); !s.ok()) return s;
  }
  if (light.ok() && light->empty()) return util::Ok();  // expunged meanwhile (or handled): nothing to report
  if (light.ok()) {
    em.size = light->front().size;
    em.flags = light->front().flags;
    header = std::move(light->front().header);
  } else if (!light.error().IsResponseTooLarge()) {
    return light.error();
  }
  mime::MessageContent partial;
  std::shared_ptr<const std::string> payload;
  try {
    // The header's fields, for routes that match on from/subject: a multipart
    // without children makes the Extractor read nothing but the header.
    mime::Part empty_root;
    empty_root.type = "multipart";
    empty_root.subtype = "mixed";
    ImapSectionSource unused(session_, uid);
    if (auto parsed = mime::Extract(header, empty_root, unused, w_.extract_options_); parsed.ok()) {
      partial = std::move(*parsed);
    }
    payload = std::make_shared<const std::string>(mime::UnprocessableEventJson(em, header, reason, attempts));
  } catch (const std::exception& e) {
    partial = mime::MessageContent{};
    payload = std::make_shared<const std::string>(mime::UnprocessableEventJson(em, "", reason, attempts));
  }
  const std::string event_id = mime::EventId(w_.account_.name, w_.folder_, info_.uidvalidity, uid);
  AddItems(event_id, uid, w_.Routes(&partial), [&](const Route&) { return std::vector{payload}; });
  w_.metrics_.unprocessable.Inc();
  return util::Ok();
}

void FolderWatcher::SessionWork::AddItems(
    const std::string& event_id, uint32_t uid, const std::vector<Route>& routes,
    const std::function<std::vector<std::shared_ptr<const std::string>>(const Route&)>& payload) {
  size_t added = 0;
  for (const Route& r : routes) {
    store::OutboxItem item{event_id, r.target.ToString(), w_.account_.name, w_.folder_, info_.uidvalidity, uid, {}, {}};
    item.pieces = payload(r);
    committer_->Add(std::move(item));
    ++added;
  }
  // Only a message that went somewhere is marked or moved afterwards.
  if (w_.HasPostActions() && added > 0) {
    committer_->AddPostAction(store::PostAction{event_id, w_.account_.name, w_.folder_, info_.uidvalidity, uid});
  }
  log_->debug("imap.message account={} folder={} uid={} event={} targets={}", w_.account_.name, w_.folder_, uid,
              event_id, added);
}

}  // namespace mailhook::daemon
