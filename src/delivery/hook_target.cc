#include "delivery/hook_target.h"

#include <string.h>

#include <chrono>
#include <cstdint>

#include "util/log.h"
#include "util/subprocess.h"

namespace mailhook::delivery {
namespace {

// Hooks may be chatty; stderr beyond this is read and discarded so a runaway
// command cannot grow the daemon's memory. Only the tail is reported anyway.
constexpr size_t kMaxCapture = 64 * 1024;

// The last `n` bytes of stderr as one printable line: the end of stderr is
// where a failing script says why; control characters would break log lines.
// The hook's own `env:` values (tokens) are redacted first: a `set -x` or a
// `curl -v` prints them, and this text goes to the log and the dead letters.
std::string StderrTail(const util::ProcessResult& r, const std::vector<std::pair<std::string, util::Secret>>& env) {
  std::string err = r.stderr_data;
  for (const auto& [name, value] : env) {
    const std::string& secret = value.reveal();
    if (secret.size() < 4) continue;  // too short to tell from ordinary text
    for (size_t at = err.find(secret); at != std::string::npos; at = err.find(secret, at + 10)) {
      err.replace(at, secret.size(), "<redacted>");
    }
  }
  std::string_view tail(err);
  bool cut = r.stderr_truncated;
  if (tail.size() > HookTarget::kStderrTail) {
    tail.remove_prefix(tail.size() - HookTarget::kStderrTail);
    cut = true;
  }
  std::string out;
  for (char c : tail) out += static_cast<unsigned char>(c) < 0x20 || c == 0x7f ? ' ' : c;
  while (!out.empty() && out.back() == ' ') out.pop_back();
  size_t start = out.find_first_not_of(' ');
  out = start == std::string::npos ? "" : out.substr(start);
  if (out.empty()) return "stderr: (empty)";
  return std::string("stderr: ") + (cut ? "..." : "") + out;
}

std::string SignalName(int sig) {
  const char* abbrev = sigabbrev_np(sig);
  return abbrev != nullptr ? std::string("SIG") + abbrev : std::to_string(sig);
}

}  // namespace

util::Result<std::unique_ptr<HookTarget>> HookTarget::Create(const config::Hook& hook) {
  Env env;
  for (const auto& [name, ref] : hook.env) {
    auto value = ref.Resolve();
    if (!value.ok()) {
      return value.error().WithMessage("hooks." + hook.name + ": " + value.error().message());
    }
    env.emplace_back(name, std::move(*value));
  }
  return std::make_unique<HookTarget>(hook, std::move(env));
}

HookTarget::HookTarget(config::Hook hook, Env env) : hook_(std::move(hook)), env_(std::move(env)) {}

HookTarget::~HookTarget() = default;

Outcome HookTarget::Deliver(const store::Delivery& delivery, const util::CancelToken& cancel) {
  Outcome outcome;
  const std::string where = "hooks." + hook_.name;
  if (cancel.cancelled()) {
    util::ProcessResult not_started;
    not_started.cancelled = true;
    return FromProcessResult(not_started);
  }

  util::ProcessSpec spec;
  spec.argv = hook_.command;
  spec.stdin_data = delivery.item.payload;
  // The hook's own env: first, so the contract's variables always win; the
  // rest of the daemon's environment stays out (util::RunProcess).
  for (const auto& [name, value] : env_) spec.env.emplace_back(name, value.reveal());
  spec.env.insert(spec.env.end(), {{"MAILHOOK_EVENT_ID", delivery.item.event_id},
                                   {"MAILHOOK_ACCOUNT", delivery.item.account},
                                   {"MAILHOOK_MAILBOX", delivery.item.folder},
                                   {"MAILHOOK_UID", std::to_string(delivery.item.uid)}});
  spec.pass_env = hook_.pass_env;
  spec.timeout = hook_.timeout;
  spec.max_output = kMaxCapture;

  // The caller's token, polled with the child's pipes: a token that fired
  // before the child started kills it at the first poll.
  spec.cancel_fd = cancel.fd();
  // trace = protocol: the command's start and end, never its arguments,
  // environment or input (they may carry secrets and the message).
  spdlog::logger& log = util::Log(util::Area::kDelivery);
  const bool trace = log.should_log(spdlog::level::trace);
  const auto started = trace ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point();
  if (trace)
    log.trace("hook.start hook={} program={} event_id={}", hook_.name, spec.argv.empty() ? "-" : spec.argv[0],
              delivery.item.event_id);
  auto run = util::RunProcess(spec);
  if (trace) {
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
    log.trace("hook.exit hook={} exit={} timed_out={} ms={}", hook_.name,
              run.ok() ? std::to_string(run->exit_code) : std::string("not_started"), run.ok() && run->timed_out,
              ms.count());
  }

  if (!run.ok()) {
    const util::Error& e = run.error();
    if (e.IsSystem()) {
      // pipe/fork failed: a resource shortage in the daemon, not the hook's fault.
      outcome.kind = OutcomeKind::kRetry;
      outcome.error = where + ": " + e.message();
    } else {
      // Missing or non-executable program: retrying cannot help until a
      // person fixes the config or the file.
      outcome.kind = OutcomeKind::kPermanent;
      outcome.error = where + ": " + e.message() + "; fix " + where +
                      ".command (an existing executable file; chmod +x), then run "
                      "`mailhook deadletters replay`";
    }
    return outcome;
  }

  return FromProcessResult(*run);
}

Outcome HookTarget::FromProcessResult(const util::ProcessResult& r) const {
  Outcome outcome;
  const std::string where = "hooks." + hook_.name;
  if (r.cancelled) {
    outcome.cancelled = true;
    outcome.kind = OutcomeKind::kRetry;
    outcome.error = where + ": stopped by shutdown";
    return outcome;
  }
  if (r.timed_out) {
    outcome.kind = OutcomeKind::kRetry;
    outcome.error = where + ": still running after its timeout of " + std::to_string(hook_.timeout.count()) +
                    " ms; killed with its whole process group (raise " + where + ".timeout if it needs longer); " +
                    StderrTail(r, env_);
    return outcome;
  }
  if (r.exit_code == 0) {
    outcome.kind = OutcomeKind::kSuccess;
    return outcome;
  }
  if (r.exit_code == kExitTempFail) {
    outcome.kind = OutcomeKind::kRetry;
    outcome.error = where + ": exit code 75 (EX_TEMPFAIL, retry later); " + StderrTail(r, env_);
    return outcome;
  }
  outcome.kind = OutcomeKind::kPermanent;
  if (r.exit_code < 0) {
    outcome.error = where + ": killed by signal " + SignalName(-r.exit_code) +
                    " (permanent; a hook that wants a retry exits 75); " + StderrTail(r, env_);
  } else {
    outcome.error = where + ": exit code " + std::to_string(r.exit_code) +
                    " (permanent; a hook that wants a retry exits 75); " + StderrTail(r, env_);
  }
  return outcome;
}

}  // namespace mailhook::delivery
